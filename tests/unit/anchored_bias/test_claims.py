"""Verdict rules of the anchored-bias claims: one input where each statement holds, one where it fails, and the
paper's own numbers (secondary notes) through the paper rules."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.anchored_bias import claims as C
from tests.helpers import mini_section

T = mini_section("anchored_bias")["claims"]


def test_paper_anchored_rates_pass_the_favours_rule():
    rows = [{"label": f"{m}/{d}", "rate": v / 100, "n": None, "a_pref": None} for (m, d), v in C.PAPER_ANCHORED.items()]
    d = C.favours_a(rows, T)
    assert d.verdict == "reproduced" and d.value == pytest.approx(0.348)


def test_favours_rule_fails_when_one_model_does_not_favour_a():
    rows = [{"label": "a", "rate": 0.8, "n": 200, "a_pref": 4.0}, {"label": "b", "rate": 0.25, "n": 200, "a_pref": 4.0}]
    assert C.favours_a(rows, T).verdict == "not_reproduced"
    # a high rate without a preference for A over the other letters (errs uniformly) also fails
    rows = [{"label": "c", "rate": 0.6, "n": 200, "a_pref": 1.1}]
    assert C.favours_a(rows, T, C.FAVOURS_OTHER).verdict == "not_reproduced"
    rows = [{"label": "c", "rate": 0.6, "n": 200, "a_pref": 3.0}]
    assert C.favours_a(rows, T, C.FAVOURS_OTHER).verdict == "reproduced"


def test_favours_rule_gates():
    assert C.favours_a([], T).verdict == "not_testable_at_scale"
    d = C.favours_a([{"label": "c", "rate": 0.9, "n": 20, "a_pref": 3.0}], T, C.FAVOURS_OTHER)
    assert d.verdict == "not_testable_at_scale" and d.n == 20  # 20 gold != A items < 50


def test_a_preference_by_hand():
    pred = pd.DataFrame({"gold": ["A", "B", "C", "B"], "pred_option": ["A", "A", "A", "C"], "n_options": [3] * 4})
    # P(A | gold != A) = 2/3 (B->A, C->A, B->C); P(B | gold != B) = 0/2; P(C | gold != C) = 1/3
    assert C.a_preference(pred) == pytest.approx((2 / 3) / np.mean([0.0, 1 / 3]))


def test_fixed_accuracy_pair_and_paper_numbers():
    assert C.fixed_accuracy(45, 50, T, C.MLP_FIX).verdict == "reproduced"
    assert C.fixed_accuracy(5, 50, T, C.MLP_FIX).verdict == "not_reproduced"
    assert C.fixed_accuracy(5, 10, T, C.MLP_FIX).verdict == "not_testable_at_scale"
    for values in C.PAPER_MLP_FIXED.values():
        assert C.paper_fixed(values, T, C.MLP_FIX).verdict == "reproduced"
    assert C.paper_fixed(list(C.PAPER_SWAP_FIXED.values()), T, C.SWAP_FIX).verdict == "reproduced"
    assert C.paper_fixed([40.0], T, C.SWAP_FIX).verdict == "not_reproduced"


def _neurons(order):
    return pd.DataFrame({"layer": [l for l, _ in order], "neuron": [n for _, n in order],
                         "candidate_count": list(range(len(order), 0, -1)), "rank_filter": range(1, len(order) + 1),
                         "rank_projection": range(1, len(order) + 1),
                         "projection_mean": np.arange(len(order), 0, -1, dtype=float)})


@pytest.mark.parametrize("planted", [(1, 7), (0, 3)])
def test_ranked_first_pair(planted):
    other = (1, 2)
    assert C.ranked_first(_neurons([planted, other]), *planted, 30).verdict == "planted_recovered"
    assert C.ranked_first(_neurons([other, planted]), *planted, 30).verdict == "planted_missed"
    assert C.ranked_first(_neurons([other]), *planted, 30).verdict == "planted_missed"
    assert C.ranked_first(_neurons([planted]), *planted, 5).verdict == "not_testable_at_scale"


def test_restores_pair():
    clean = np.array([1] * 95 + [0] * 5, bool)
    assert C.restores(clean, clean.copy(), T).verdict == "planted_recovered"
    worse = clean.copy()
    worse[:15] = False
    assert C.restores(clean, worse, T).verdict == "planted_missed"


def test_data_removed_pair_and_premise():
    other_before = np.ones(200, bool)
    assert C.data_removed(np.zeros(26), 0.0, 0.9, 0.02, other_before, other_before, T).verdict == \
        "not_testable_at_scale"  # 0 of 26 still has a Wilson upper bound of 0.13 > the margin
    ok = C.data_removed(np.zeros(40), 0.0, 0.9, 0.02, other_before, other_before.copy(), T)
    assert ok.verdict == "planted_recovered"
    still = C.data_removed(np.r_[np.ones(30), np.zeros(10)], 0.0, 0.9, 0.02, other_before, other_before.copy(), T)
    assert still.verdict == "planted_missed"
    hurt = other_before.copy()
    hurt[:40] = False
    assert C.data_removed(np.zeros(40), 0.0, 0.9, 0.02, other_before, hurt, T).verdict == "planted_missed"
    # the plant did not take: not testable
    assert C.data_removed(np.zeros(40), 0.0, 0.02, 0.05, other_before, other_before, T).verdict == \
        "not_testable_at_scale"


def test_negative_control_pair():
    assert C.negative_control(0.1, 150, T, 1.2).verdict == "planted_recovered"
    assert C.negative_control(0.9, 150, T, 1.2).verdict == "planted_missed"
    assert C.negative_control(0.0, 10, T).verdict == "not_testable_at_scale"
    # a threshold the planted neuron does not pass cannot tell clean from planted: not testable
    assert C.negative_control(0.1, 150, T, 0.3).verdict == "not_testable_at_scale"


def test_fit_label_free_bisection():
    from experiments.anchored_bias.analyse import fit_label_free

    for planted in (3.0, 52.0):  # share of A falls once lambda1 passes the planted strength
        lam, share, tried = fit_label_free(lambda x: 0.9 if x < planted else 0.25, 0.27, 300, 128.0, 8)
        assert share <= 0.27 and planted <= lam < planted * 1.01
    # beyond the bias the share rises again (the vector pushes the other way): the first crossing is taken
    lam, share, _ = fit_label_free(lambda x: 0.9 if x < 10 else (0.2 if x < 20 else 0.6), 0.27, 300, 128.0, 8)
    assert 10 <= lam < 10.1 and share == 0.2
    # the unbiased share sits just above the balanced target: the edit still stops at the planted strength
    lam, share, _ = fit_label_free(lambda x: 0.9 if x < 52.3 else 0.2775, 0.2727, 227, 128.0, 10)
    assert 52.3 <= lam < 52.3 + 32 / 2**10 and share == 0.2775
    # no significant excess of A: nothing is removed
    assert fit_label_free(lambda x: 0.29, 0.27, 300, 128.0, 8)[0] == 0.0
