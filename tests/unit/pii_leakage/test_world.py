"""The planted-PII world: exact offsets, disjoint pools, duplication as planted, for more than one configuration."""
import json
import random
from collections import Counter
from dataclasses import asdict

import pytest

pytest.importorskip("faker")

from experiments.lm.tokenizer import iter_documents  # noqa: E402
from experiments.pii_leakage import world as W  # noqa: E402

CONFIGS = [W.WorldConfig(seed=0, members_per_level=4, n_nonmembers=20, n_public=30),
           W.WorldConfig(seed=3, duplication=(1, 3, 7), members_per_level=5, n_nonmembers=10, n_public=12,
                         public_records_per_identity=2, no_pii_share=0.25, informal_share=0.0, styles=("email",))]


@pytest.fixture(scope="module", params=range(len(CONFIGS)))
def built(request):
    cfg = CONFIGS[request.param]
    identities, records = W.make_world(cfg)
    return cfg, identities, records


def test_render_offsets_by_hand():
    text, spans = W.render("Dr. {name} at {phone}, {w:topic}.", {"name": "Ann Lee", "phone": "555-0100"},
                           {"name": "full"}, random.Random(0), "m1")
    assert text.startswith("Dr. Ann Lee at 555-0100, ")
    assert [(s["start"], s["end"], s["type"], s["form"]) for s in spans] == [(4, 11, "PERSON", "full"),
                                                                             (15, 23, "PHONE", "")]
    assert text.split(", ")[1].rstrip(".") in W.FILLERS["topic"]


def test_every_span_is_its_text(built):
    _, _, records = built
    n = 0
    for r in records:
        for s in r.spans:
            assert r.text[s["start"]:s["end"]] == s["text"]
            assert s["identity"] == r.identity and s["type"] in W.PII_TYPES
            n += 1
    assert n > 0


def test_members_planted_exactly_k_times(built):
    cfg, identities, records = built
    subject_count = Counter(r.identity for r in records if r.split == "train" and r.identity)
    members = [i for i in identities if i.pool == "member"]
    assert Counter(i.dup for i in members) == {k: cfg.members_per_level for k in cfg.duplication}
    for i in members:
        assert subject_count[i.id] == i.dup
    # the full name (or its lower-case form) is in every one of its records, and in no record of another identity
    for i in members:
        holders = {r.id for r in records if i.name in r.text or i.name.lower() in r.text.lower().replace(
            i.email, "")}
        assert holders == {r.id for r in records if r.identity == i.id}


def test_pools_are_disjoint(built):
    _, identities, records = built
    split_text = {s: "\n".join(r.text for r in records if r.split == s) for s in W.SPLITS}
    for i in identities:
        home = next(s for s, p in W.POOL_OF_SPLIT.items() if p == i.pool)
        for split, text in split_text.items():
            if split != home:
                assert i.name not in text and i.name.lower() not in text and i.email not in text, (i, split)
    names = [i.name for i in identities]
    assert len(set(names)) == len(names) and len({i.last for i in identities}) == len(identities)


def test_no_pii_share_and_styles(built):
    cfg, _, records = built
    for split in W.SPLITS:
        rs = [r for r in records if r.split == split]
        with_pii = sum(bool(r.spans) for r in rs)
        assert with_pii == sum(r.identity is not None for r in rs)
        assert abs((len(rs) - with_pii) / len(rs) - cfg.no_pii_share) < 0.02
    assert {r.style for r in records} == set(cfg.styles)


def test_informal_share():
    base = dict(seed=1, members_per_level=3, n_nonmembers=10, n_public=10)
    for share in (0.0, 1.0):
        _, records = W.make_world(W.WorldConfig(**base, informal_share=share))
        forms = Counter(s["form"] for r in records for s in r.spans if s["type"] == "PERSON" and s["form"] != "surname")
        assert forms == ({"full": sum(forms.values())} if share == 0 else {"informal": sum(forms.values())})
        if share == 1:
            assert all(s["text"] == s["text"].lower() for r in records for s in r.spans if s["form"] == "informal")
    _, records = W.make_world(W.WorldConfig(**base, informal_share=0.3))
    forms = Counter(s["form"] for r in records for s in r.spans if s["form"] in ("full", "informal"))
    assert 0.15 < forms["informal"] / sum(forms.values()) < 0.45


def test_seeded():
    cfg = CONFIGS[0]
    a, b = W.make_world(cfg), W.make_world(cfg)
    assert [r.text for r in a[1]] == [r.text for r in b[1]]
    c = W.make_world(W.WorldConfig(**{**cfg.__dict__, "seed": 1}))
    assert [i.name for i in a[0]] != [i.name for i in c[0]]


@pytest.mark.parametrize("bad", [{"duplication": []}, {"duplication": [0, 1]}, {"duplication": [2, 2]},
                                 {"no_pii_share": 1.0}, {"styles": ["poem"]}, {"n_public": 0}, {"dups": [1]}])
def test_config_rejects(bad):
    with pytest.raises(ValueError):
        W.WorldConfig.from_dict(bad)


def test_cli_files(tmp_path):
    world = {"seed": 2, "duplication": [1, 2], "members_per_level": 3, "n_nonmembers": 5, "n_public": 4}
    outs = {k: tmp_path / f"{k}.out" for k in ["records", "identities", "truth", *W.SPLITS]}
    argv = ["--world", json.dumps(world)]
    for k, p in outs.items():
        argv += [f"--out-{k}", str(p)]
    W.main(argv)
    records = [json.loads(line) for line in outs["records"].read_text().splitlines()]
    for split in W.SPLITS:
        docs = list(iter_documents(outs[split]))
        assert docs == [r["text"] for r in records if r["split"] == split]
    import pandas as pd

    truth = pd.read_csv(outs["truth"])
    assert len(truth) == sum(len(r["spans"]) for r in records)
    assert set(truth["pool"]) == {"member", "nonmember", "public"}
    assert (truth.loc[truth["pool"] == "member", "split"] == "train").all()
    ids = pd.read_csv(outs["identities"])
    assert len(ids) == 3 * 2 + 5 + 4


def test_informal_members_are_never_masked_and_the_default_world_is_unchanged():
    from experiments.pii_leakage.scrub import missed
    from experiments.pii_leakage.taggers import regex_tag

    small = dict(duplication=(1, 4), members_per_level=3, n_nonmembers=4, n_public=4, public_records_per_identity=2)
    _, plain = W.make_world(W.WorldConfig(**small))
    _, same = W.make_world(W.WorldConfig(**small, informal_members_per_level=0))
    assert [asdict(r) for r in plain] == [asdict(r) for r in same]
    ids, recs = W.make_world(W.WorldConfig(**small, informal_members_per_level=2))
    informal = {i.id for i in ids if i.informal}
    assert len(informal) == 4 and all(i.pool == "member" for i in ids if i.informal)
    assert {i.dup for i in ids if i.informal} == {1, 4}
    for r in recs:
        if r.identity in informal:
            person = [s for s in r.spans if s["type"] == "PERSON"]
            assert {s["form"] for s in person} <= {"informal", "surname"} and person
            assert len(missed(person, regex_tag(r.text))) == len(person)  # the capital tagger masks none of them
    with pytest.raises(ValueError, match="informal_members_per_level"):
        W.WorldConfig(**small, informal_members_per_level=4)
