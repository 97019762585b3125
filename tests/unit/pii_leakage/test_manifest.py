"""The PII manifest: defense roles by what a defense is (never by its id), per-defense training configs, and the
config checks that fail before any job."""
import copy

import pytest
import yaml

from experiments.pii_leakage import manifest as M
from experiments.pii_leakage import world
from tests.helpers import ROOT

MINI = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["pii_leakage"]


def test_data_outputs_are_the_world_cli_outputs():
    assert list(M.PII_OUTPUTS) == world.OUTPUTS


def test_roles_come_from_scrub_and_dp_not_from_ids():
    s = {"defenses": [{"id": "a"}, {"id": "b", "scrub": True}, {"id": "c", "dp_epsilon": 3.0},
                      {"id": "d", "scrub": True, "dp_epsilon": 3.0}, {"id": "e", "dp_epsilon": 1.0}]}
    assert M.defense_roles(s) == {"a": "undefended", "b": "scrubbed", "c": "dp", "d": "dp_scrubbed"}
    assert M.model_ids(s) == ["base", "a", "b", "c", "d", "e"]


def test_record_config_takes_the_defense_overrides():
    s = {"finetune": {"epochs": 4, "batch_size": 32, "lr": 1e-3},
         "defenses": [{"id": "u"}, {"id": "dp", "dp_epsilon": 8.0, "batch_size": 64}]}
    assert M.record_config(s, "u") == {"epochs": 4, "batch_size": 32, "lr": 1e-3, "dp_epsilon": None}
    assert M.record_config(s, "dp") == {"epochs": 4, "batch_size": 64, "lr": 1e-3, "dp_epsilon": 8.0}


def test_reconstruction_models():
    s = {"defenses": [{"id": "u"}, {"id": "s", "scrub": True}], "reconstruction": {"defenses": ["s"]}}
    assert M.reconstruction_models(s) == ["s"]
    assert M.reconstruction_models({**s, "reconstruction": {}}) == ["base", "u", "s"]


def _mini(**changes):
    s = copy.deepcopy(MINI)
    s.setdefault("seed", 0)
    s.setdefault("inference", {}).setdefault("pools", ["member", "nonmember"])
    for path, value in changes.items():
        node = s
        *head, last = path.split(".")
        for k in head:
            node = node[k]
        node[last] = value
    return s


def test_the_mini_section_passes():
    M.check_config(_mini(), {})


@pytest.mark.parametrize("changes,message", [
    ({"defenses": [{"id": "scrubbed", "scrub": True}]}, "undefended"),
    ({"defenses": [{"id": "base"}]}, "base model's id"),
    ({"inference.sizes": [10, 101]}, "C = 101"),
    ({"reconstruction.defenses": ["nope"]}, "nope"),
    ({"base": {"kind": "pretrained"}}, "needs spec"),
    ({"data.source": "echr"}, "world's public corpus"),
])
def test_bad_sections_fail(changes, message):
    with pytest.raises(ValueError, match=message):
        M.check_config(_mini(**changes), {})
