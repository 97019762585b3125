"""The anisotropy manifest: cross-field config checks, the seed overlay, the claims wiring."""
import shlex

import pytest

from experiments.anisotropy.manifest import MANIFEST, check_config, claims_args, claims_inputs, with_seed
from tests.helpers import mini_section


def test_mini_section_passes_and_wires_the_claims():
    s = mini_section("anisotropy")
    check_config(s, {})
    assert set(claims_inputs(s)) == {"isotropy", "decoding", "per_prompt"}
    args = shlex.split(claims_args(s, {}))
    assert args[args.index("--samplers") + 1: args.index("--contrastive")] == ["top_k50", "nucleus095", "typical095"]
    assert with_seed(s, 2) == {"train_seed": 2}
    assert with_seed({**s, "tiny": {"languages": []}}, 2) == {}
    assert [f.name for f in MANIFEST.figures] == ["isotropy_by_language", "isotropy_by_depth", "decoding"]


@pytest.mark.parametrize("edit, match", [
    (lambda s: s["decoding"].update(scorer=dict(s["decoding"]["generator"])), "must not be the generator"),
    (lambda s: s["models"][0].update(langs=["xx"]), "not in anisotropy.texts.languages"),
    (lambda s: s["texts"].update(source="wit", path="x.json"), "needs texts.source fortunes"),
    (lambda s: s["decoding"].update(methods=[m for m in s["decoding"]["methods"] if m["kind"] != "contrastive"]),
     "exactly one contrastive"),
    (lambda s: s["decoding"].update(n_prompts=s["texts"]["n_prompts"] + 1), "n_prompts"),
])
def test_bad_sections_fail_before_any_job(edit, match):
    s = mini_section("anisotropy")
    edit(s)
    with pytest.raises(ValueError, match=match):
        check_config(s, {})


def test_missing_scorer_language_fails_early_naming_the_package(monkeypatch):
    """The mini scorer is the tiny GPT-2 trained on the en fortunes: without that package, a clear error
    naming it and how to get it, before any job (the other tiny languages just give not-run rows)."""
    import experiments.anisotropy.manifest as M

    s = mini_section("anisotropy")
    assert s["decoding"]["scorer"]["spec"] == f"dir:{M.tiny_model_dir('en')}"
    monkeypatch.setattr(M, "available_tiny_languages", lambda sec: ["de", "ru"])
    with pytest.raises(ValueError, match=r"decoding\.scorer .* en fortunes.*apt-get install fortunes"):
        check_config(s, {})
    monkeypatch.setattr(M, "available_tiny_languages", lambda sec: ["en"])  # de / ru missing: not run rows only
    check_config(s, {})
