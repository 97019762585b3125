"""The paper's MCQ datasets as items: IOI and Greater-than generators, the LD / ARC / CSQA row converters, balancing."""
import json

import numpy as np
import pytest

from experiments.anchored_bias import datasets as D
from experiments.anchored_bias.items import LETTERS
from experiments.errors import MissingArtifactError


def test_ioi_items_put_the_subject_in_a_and_the_indirect_object_in_b():
    df = D.ioi_items(40, seed=0)
    assert (df["gold"] == "B").all() and (df["n_options"] == 2).all()
    for r in df.itertuples():
        opts = json.loads(r.options)
        assert opts == [r.s, r.io] and r.s != r.io
        assert r.ioi_text.count(r.s) == 2 and r.ioi_text.count(r.io) == 1  # S repeated, IO once
        assert r.prompt == f"Question: {r.ioi_text}? Answer Choices: A: {r.s} B: {r.io} Answer:"
        first = min(r.ioi_text.index(r.s), r.ioi_text.index(r.io))
        assert r.order == ("ABBA" if r.ioi_text.index(r.io) == first else "BABA")
    assert set(df["order"]) == {"ABBA", "BABA"}
    sw = D.ioi_items(40, seed=0, swapped=True)
    assert (sw["gold"] == "A").all()
    assert (sw["ioi_text"] == df["ioi_text"]).all()  # the same sentences, options swapped
    assert [json.loads(o) for o in sw["options"]] == [json.loads(o)[::-1] for o in df["options"]]


def test_greater_items_have_exactly_one_larger_ending():
    df = D.greater_items(200, seed=1)
    for r in df.itertuples():
        opts = [int(o) for o in json.loads(r.options)]
        gold = opts[LETTERS.index(r.gold)]
        assert gold > r.start_yy and sum(o > r.start_yy for o in opts) == 1 and len(set(opts)) == 4
        assert f"{r.start_yy:02d} to the year" in r.question
    assert set(df["gold"]) == set("ABCD")


BBH = [{"input": "The following paragraphs each describe a set of three objects arranged in a fixed order. On a "
                 "shelf, there are three books: a red book, a blue book, and a green book. The red book is the "
                 "leftmost.\nOptions:\n(A) The red book is the leftmost\n(B) The blue book is the leftmost\n"
                 "(C) The green book is the leftmost", "target": "(A)"}]


def test_ld_rows_parse_options_and_target():
    df = D.ld_items(BBH)
    r = df.iloc[0]
    assert json.loads(r["options"]) == ["The red book is the leftmost", "The blue book is the leftmost",
                                        "The green book is the leftmost"]
    assert r["gold"] == "A" and r["n_options"] == 3 and "Options" not in r["question"]
    with pytest.raises(ValueError, match="parsable"):
        D.ld_items([{"input": "no options here", "target": "(A)"}])


def test_choice_rows_keep_items_with_the_asked_number_of_choices():
    rows = [{"id": "q1", "question": "What  melts ice?", "answerKey": "C",
             "choices": {"label": ["A", "B", "C", "D"], "text": ["rock", "wood", "heat", "sand"]}},
            {"id": "q2", "question": "Odd one", "answerKey": "2",
             "choices": {"label": ["1", "2", "3"], "text": ["a", "b", "c"]}},
            {"id": "q3", "question": "Numeric labels", "answerKey": "4",
             "choices": {"label": ["1", "2", "3", "4"], "text": ["w", "x", "y", "z"]}}]
    df = D.choice_items(rows, "arc", 4)
    assert list(df["source_id"]) == ["q1", "q3"]
    assert list(df["gold"]) == ["C", "D"] and df.iloc[0]["question"] == "What melts ice?"
    with pytest.raises(ValueError, match="exactly 5"):
        D.choice_items(rows, "csqa", 5)


@pytest.mark.parametrize("source", ["A", "D"])
def test_balance_gold_cycles_positions_and_keeps_distractor_order(source):
    rows = [{"id": str(i), "question": f"q{i}", "answerKey": source,
             "choices": {"label": list("ABCD"), "text": [f"o{i}{j}" for j in range(4)]}} for i in range(8)]
    df = D.balance_gold(D.choice_items(rows, "arc", 4))
    assert list(df["gold"]) == list("ABCDABCD") and set(df["gold_source"]) == {source}
    src = LETTERS.index(source)
    for i, r in enumerate(df.itertuples()):
        opts = json.loads(r.options)
        assert opts[LETTERS.index(r.gold)] == f"o{i}{src}"  # the gold option moved, text unchanged
        assert [o for o in opts if o != f"o{i}{src}"] == [f"o{i}{j}" for j in range(4) if j != src]
        assert r.prompt.startswith(f"Question: q{i} Answer Choices: A: {opts[0]} ")


def test_split_locate_eval_disjoint_and_balanced():
    df = D.greater_items(100, seed=2)
    loc, ev = D.split_locate_eval(df, 40, 48, seed=0)
    assert len(loc) == 40 and len(ev) == 48
    assert not set(loc["question"] + loc["options"]) & set(ev["question"] + ev["options"])
    assert (ev["gold"] == "A").mean() == pytest.approx(np.mean(1 / ev["n_options"]))  # 48 = 12 whole cycles
    assert set(loc["split"]) == {"locate"} and ev["item"].iloc[0] == "eval00000"
    with pytest.raises(ValueError, match="dataset has 100"):
        D.split_locate_eval(df, 60, 60, seed=0)


def test_hub_items_fail_early_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingArtifactError, match="tau/commonsense_qa"):
        D.hub_items("csqa")
