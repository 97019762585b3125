"""Paper-scale ECHR records in the world's format: flattening, the positional 45/10/45 split, identities by pool and
duplication from the NER's PERSON spans, and rows every later step reads (queries are built from them)."""
import pytest

from experiments.pii_leakage import echr, world
from experiments.pii_leakage.queries import build_queries


def test_flatten_and_split_by_position():
    cases = [{"facts": ["a", " ", "b"]}, {"facts": ["c", "d", "", "e", "f", "g", "h", "i", "j"]}]
    paras = echr.flatten(cases)
    assert paras == list("abcdefghij")
    parts = echr.split_records(paras, (0.45, 0.10, 0.45), seed=42)
    assert [len(parts[s]) for s in ("train", "test", "public")] == [4, 1, 5]  # round(4.5) = 4 (banker's), then 1
    assert sorted(parts["train"] + parts["test"] + parts["public"]) == paras
    assert parts == echr.split_records(paras, (0.45, 0.10, 0.45), seed=42)
    assert parts != echr.split_records(paras, (0.45, 0.10, 0.45), seed=1)


def span(text, name, kind="PERSON"):
    i = text.index(name)
    return {"start": i, "end": i + len(name), "type": kind, "text": name}


def test_identities_pools_and_duplication():
    by_split = {"train": ["Ann Lee met Bo Wu in Paris.", "Ann Lee left.", "Nobody here."],
                "test": ["Cy Dee and Ann Lee."], "public": ["Ed Fox spoke."]}
    spans = {"train": [[span(by_split["train"][0], "Ann Lee"), span(by_split["train"][0], "Bo Wu"),
                        span(by_split["train"][0], "Paris", "GPE")], [span(by_split["train"][1], "Ann Lee")], []],
             "test": [[span(by_split["test"][0], "Cy Dee"), span(by_split["test"][0], "Ann Lee")]],
             "public": [[span(by_split["public"][0], "Ed Fox")]]}
    identities, records = echr.build(by_split, spans)
    got = {i["name"]: (i["pool"], i["dup"], i["last"]) for i in identities}
    assert got == {"Ann Lee": ("member", 2, "Lee"), "Bo Wu": ("member", 1, "Wu"), "Cy Dee": ("nonmember", 0, "Dee"),
                   "Ed Fox": ("public", 0, "Fox")}
    truth = world.truth_rows(records, identities)
    gpe = [t for t in truth if t["type"] == "GPE"]
    assert gpe and gpe[0]["identity"] is None and gpe[0]["pool"] == ""
    assert {r["split"] for r in records} == {"train", "test", "public"}
    for r in records:
        for s in r["spans"]:
            assert r["text"][s["start"]:s["end"]] == s["text"]
    # the queries step runs on them: a record's first PERSON is its target, one query per member identity
    # (Bo Wu is never first in a record)
    q = build_queries(records, identities, seed=0)
    assert [(x["target"], x["dup"], x["prefix"]) for x in q] == [("Ann Lee", 2, "")]


def test_flair_missing_names_the_package(monkeypatch):
    import importlib.util

    from experiments.errors import MissingArtifactError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "flair" else real(n, *a))
    with pytest.raises(MissingArtifactError, match="flair"):
        echr.flair_tagger("cpu")
