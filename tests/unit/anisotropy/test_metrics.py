"""rep-n, diversity and the per-prefix tables as SimCTG's evaluation code computes them, on hand-counted texts."""
import numpy as np
import pandas as pd
import pytest

from experiments.anisotropy.metrics import (
    CONTROL,
    diversity_from_counts,
    diversity_of,
    diversity_of_sums,
    mismatched_control,
    ngram_counts,
    per_prompt_table,
    prompt_arrays,
    rep_n,
    repetition_and_diversity,
    summary_table,
)


def test_ngram_loop_drops_the_last_ngram_as_simctg():
    # "a b c a b c": SimCTG's while end_idx < len counts (a b) (b c) (c a) (a b), not the final (b c)
    assert ngram_counts("a b c a b c", 2) == (3, 4)
    assert ngram_counts("a b c a b c", 3) == (3, 3)
    assert ngram_counts("a b c a b c", 4) == (2, 2)
    assert ngram_counts("a b", 2) == (0, 0) and ngram_counts("", 2) == (0, 0)


def test_rep_and_diversity_hand_counted():
    got = repetition_and_diversity(["a b c a b c"])
    assert got["rep_2"] == pytest.approx(25.0) and got["rep_3"] == 0.0 and got["rep_4"] == 0.0
    assert got["diversity"] == pytest.approx(75.0)
    # a looping text: "x y x y x y x y" -> 2-grams 6 total, 2 unique; 3-grams 5 / 2; 4-grams 4 / 2
    loop = repetition_and_diversity(["x y x y x y x y"])
    assert loop["rep_2"] == pytest.approx(100 * 4 / 6)
    assert loop["diversity"] == pytest.approx(100 * (2 / 6) * (2 / 5) * (2 / 4))


def test_unique_ngrams_are_counted_per_text_then_summed():
    # SimCTG sums each text's unique count: the same text twice is not a repetition
    one = repetition_and_diversity(["p q r s t u"])
    two = repetition_and_diversity(["p q r s t u", "p q r s t u"])
    assert one == two and two["diversity"] == 100.0


def test_char_units_for_unspaced_scripts():
    assert ngram_counts("我们我们我们", 2, unit="char") == (2, 4)
    assert ngram_counts("我们我们我们", 2, unit="word") == (0, 0)  # one whitespace "word": no 2-gram


def test_vectorised_diversity_equals_the_dict_form():
    counts = {2: (30.0, 40.0), 3: (25.0, 36.0), 4: (20.0, 32.0)}
    sums = np.array([[[10, 15], [8, 12], [5, 10]], [[20, 25], [17, 24], [15, 22]]], float)
    assert diversity_of_sums(sums) == pytest.approx(diversity_from_counts(counts))
    assert rep_n(0, 0) == 0.0


def _gen():
    rows = []
    for j, (pre, human) in enumerate([("P0", "one two three four five six"), ("P1", "red green blue red green")]):
        rows.append(dict(method="human", kind="human", seed=-1, prompt_id=f"p{j}", prefix=pre, continuation=human,
                         reference=human, n_new_tokens=6, ended_eos=False))
        rows.append(dict(method="greedy", kind="greedy", seed=-1, prompt_id=f"p{j}", prefix=pre,
                         continuation="a b a b a b", reference=human, n_new_tokens=6, ended_eos=False))
        for s in (0, 1):
            rows.append(dict(method="top_k", kind="sample", seed=s, prompt_id=f"p{j}", prefix=pre,
                             continuation=f"w{s} x{j} y z", reference=human, n_new_tokens=4, ended_eos=s == 1))
    return pd.DataFrame(rows)


def test_mismatched_control_shifts_prefixes_cyclically():
    ctl = mismatched_control(_gen())
    assert list(ctl.method) == [CONTROL, CONTROL] and list(ctl.prefix) == ["P1", "P0"]
    assert list(ctl.continuation) == list(_gen().query("method == 'human'").continuation)


def test_summary_pools_seeds_and_prefixes():
    gen = _gen()
    per = per_prompt_table(gen, "word")
    per["coherence"] = np.where(per.method == "greedy", -1.0, -2.0)
    s = summary_table(per, unit="word", scorer="x", n_boot=200, seed=0).set_index("method")
    assert s.loc["top_k", "n_seeds"] == 2 and s.loc["top_k", "n_generations"] == 4
    assert s.loc["greedy", "diversity"] == pytest.approx(diversity_of(per[per.method == "greedy"]))
    assert s.loc["greedy", "coherence"] == -1.0 and s.loc["top_k", "eos_rate"] == 0.5
    lo, hi = s.loc["human", ["diversity_ci_low", "diversity_ci_high"]]
    assert lo <= s.loc["human", "diversity"] <= hi
    ids, sums, coh = prompt_arrays(per[per.method == "top_k"])
    assert list(ids) == ["p0", "p1"] and sums.shape == (2, 3, 2) and list(coh) == [-2.0, -2.0]
