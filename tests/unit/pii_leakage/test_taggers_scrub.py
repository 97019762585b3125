"""Taggers, scrubbing and the extraction scores on hand-made cases, and the regex tagger on the planted world."""
import math

import pytest

from experiments.pii_leakage import extraction_metrics as X
from experiments.pii_leakage.scrub import MASK, missed, scrub
from experiments.pii_leakage.taggers import Gazetteer, regex_tag

TEXT = ("From: Ann Lee <ann.lee7@example.org>. Call 555-201-3344 on 3 May 2001; ann lee lives at 12 Oak Hill Road."
        " Lee paid.")


def test_regex_tagger_by_hand():
    got = [(s["type"], s["text"]) for s in regex_tag(TEXT)]
    assert got == [("PERSON", "Ann Lee"), ("EMAIL", "ann.lee7@example.org"), ("PHONE", "555-201-3344"),
                   ("DATE", "3 May 2001"), ("ADDRESS", "12 Oak Hill Road"), ("PERSON", "Lee")]
    # "ann lee" (lower case) missed; "Lee" alone tagged because "Ann Lee" was; "lee7" inside the e-mail is not
    for s in regex_tag(TEXT):
        assert TEXT[s["start"]:s["end"]] == s["text"]
    assert regex_tag("The Court met. Hi Team.") == []  # a stopword opener leaves one word: not a name


def test_gazetteer_exact_case_and_word_boundaries():
    g = Gazetteer(["Ann Lee", "Ann Leeds", "Bo Li"])
    text = "Ann Leeds met Ann Lee, not ann lee nor Ann Leex or XBo Li."
    assert [s["text"] for s in g(text)] == ["Ann Leeds", "Ann Lee"]
    with pytest.raises(ValueError):
        Gazetteer([])


def test_scrub_removes_every_tagged_span_and_reports_the_missed():
    spans = regex_tag(TEXT)
    out = scrub(TEXT, spans)
    assert out.count(MASK) == len(spans) == 6
    for s in spans:
        assert s["text"] not in out
    assert "ann lee" in out
    truth = spans + [{"start": TEXT.index("ann lee"), "end": TEXT.index("ann lee") + 7, "type": "PERSON",
                      "text": "ann lee"}]
    assert [t["text"] for t in missed(truth, spans)] == ["ann lee"]
    with pytest.raises(ValueError):
        scrub("abcdef", [{"start": 0, "end": 3}, {"start": 2, "end": 4}])


def test_extraction_scores_by_hand():
    # training mentions: A x3, B x1, C x1 (5 mentions, 3 unique); target generates A, B, Z; base generates B
    leaked = X.leaked_set(["A", "B", "Z", "A"], ["B"])
    assert leaked == {"A", "Z"}
    s = X.extraction_scores(leaked, ["A", "A", "A", "B", "C"])
    assert (s["n_hit"], s["precision"], s["recall_unique"], s["recall_mentions"]) == (1, 0.5, 1 / 3, 1 / 5)
    empty = X.extraction_scores(set(), ["A"])
    assert math.isnan(empty["precision"]) and empty["recall_unique"] == 0


def test_recall_by_level_by_hand():
    rows = X.recall_by_level({"A", "B", "C"}, {"A": 1, "B": 4, "C": 4, "D": 4, "E": 1, "F": 1})
    assert [(r["dup"], r["n"], r["n_leaked"]) for r in rows] == [(1, 3, 1), (4, 3, 2)]
    assert rows[0]["recall"] == pytest.approx(1 / 3) and rows[0]["ci_low"] < 1 / 3 < rows[0]["ci_high"]


def test_regex_tagger_on_the_world_misses_exactly_the_lowercase_mentions():
    pytest.importorskip("faker")
    from experiments.pii_leakage import world as W

    _, records = W.make_world(W.WorldConfig(seed=0, members_per_level=3, n_nonmembers=20, n_public=20,
                                            informal_share=0.3))
    missed_forms, caught_forms = set(), set()
    n_missed = 0
    for r in records:
        tagged = regex_tag(r.text)
        truth_person = [s for s in r.spans if s["type"] == "PERSON"]
        m = missed(truth_person, tagged)
        n_missed += len(m)
        informal_record = any(s["form"] == "informal" for s in truth_person)
        # a surname alone is found through the record's capitalised full name; with that in lower case, both miss
        missed_forms |= {"surname-of-informal" if s["form"] == "surname" and informal_record else s["form"] for s in m}
        caught_forms |= {s["form"] for s in truth_person if s not in m}
        assert MASK not in r.text and all(s["text"] not in scrub(r.text, tagged) for s in tagged)
    assert missed_forms == {"informal", "surname-of-informal"} and {"full", "surname"} <= caught_forms and n_missed > 0


@pytest.mark.parametrize("tagger", ["oracle", "regex"])
def test_scrub_cli_on_the_world(tmp_path, tagger):
    pytest.importorskip("faker")
    import json

    import pandas as pd

    from experiments.lm.tokenizer import iter_documents
    from experiments.pii_leakage import scrub as S
    from experiments.pii_leakage import world as W

    _, records = W.make_world(W.WorldConfig(seed=4, members_per_level=3, n_nonmembers=5, n_public=5,
                                            informal_share=0.4))
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(W.asdict(r)) + "\n" for r in records))
    S.main(["--records", str(path), "--split", "train", "--tagger", tagger,
            "--out-text", str(tmp_path / "t.txt"), "--out-missed", str(tmp_path / "m.csv")])
    docs = list(iter_documents(tmp_path / "t.txt"))
    train = [r for r in records if r.split == "train"]
    assert len(docs) == len(train)
    missed_rows = pd.read_csv(tmp_path / "m.csv")
    if tagger == "oracle":
        assert missed_rows.empty
        assert all(s["text"] not in d for r, d in zip(train, docs) for s in r.spans)
    else:
        assert set(missed_rows["form"]) <= {"informal", "surname"} and len(missed_rows) > 0
        for r, d in zip(train, docs):  # what the tagger missed is still there verbatim; the rest is masked
            mine = missed_rows[missed_rows["record"] == r.id]
            kept = set(mine["text"])
            assert all(t in d for t in kept)
            for s in r.spans:
                if s["start"] not in set(mine["start"]) and s["text"] not in kept:
                    assert s["text"] not in d, (r.id, s)
