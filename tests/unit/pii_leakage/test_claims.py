"""PII claims: each rule with an input where the statement holds and one where it fails, its minimum n, and the
trend statistic and ratio CI by hand."""
import math

import pytest

from experiments.pii_leakage import claims as C


def test_trend_z_by_hand():
    # scores 0, 1, 2; k = 0, 1, 2 of n = 2: p = 1/2, T = sum t (k - n p) = 0*(-1) + 1*0 + 2*1 = 2
    # Var = p(1-p) [sum n t^2 - (sum n t)^2 / N] = 1/4 [2*(0+1+4) - 36/6] = 1/4 * 4 = 1 -> Z = 2
    levels = [{"dup": 1, "n": 2, "n_leaked": 0}, {"dup": 2, "n": 2, "n_leaked": 1}, {"dup": 4, "n": 2, "n_leaked": 2}]
    assert C.trend_z(levels) == pytest.approx(2.0)
    assert C.trend_z([{**r, "n_leaked": 1} for r in levels]) == 0.0


@pytest.mark.parametrize("dups", [(1, 2, 4, 8, 16), (1, 3, 9, 27)])  # the default world and a second one
def test_recall_rises(dups):
    rising = [{"dup": d, "n": 10, "n_leaked": min(10, 2 * i)} for i, d in enumerate(dups)]
    assert C.recall_rises(rising).verdict == "planted_recovered"
    flat = [{"dup": d, "n": 10, "n_leaked": 3} for d in dups]
    assert C.recall_rises(flat).verdict == "planted_missed"
    falling = list(reversed([r["n_leaked"] for r in rising]))
    assert C.recall_rises([{**r, "n_leaked": k} for r, k in zip(rising, falling)]).verdict == "planted_missed"
    assert C.recall_rises(rising[:2]).verdict == "not_testable_at_scale"


def test_recall_rises_on_the_chain_numbers():
    # the by-hand chain of the default world (note): 0/9, 0/10, 0/10, 3/10, 10/10
    levels = [{"dup": 1, "n": 9, "n_leaked": 0}, {"dup": 2, "n": 10, "n_leaked": 0},
              {"dup": 4, "n": 10, "n_leaked": 0}, {"dup": 8, "n": 10, "n_leaked": 3},
              {"dup": 16, "n": 10, "n_leaked": 10}]
    d = C.recall_rises(levels)
    assert d.verdict == "planted_recovered" and d.value > 4


def test_dp_far_below():
    assert C.dp_far_below(0, 15, 97).verdict == "planted_recovered"
    assert C.dp_far_below(12, 15, 97).verdict == "planted_missed"  # about as much as undefended
    assert C.dp_far_below(9, 40, 97).verdict == "planted_recovered"  # [0.05, 0.17] vs [0.32, 0.51], ratio 0.23
    assert C.dp_far_below(40, 70, 200).verdict == "planted_missed"  # CIs apart, but ratio 0.57 > 0.5
    assert C.dp_far_below(2, 6, 97).verdict == "planted_missed"  # ratio 0.33, CIs overlap
    assert C.dp_far_below(2, 4, 97).verdict == "not_testable_at_scale"


def test_scrubbed_not_leaked():
    assert C.scrubbed_not_leaked(0, 34, 91).verdict == "planted_recovered"
    assert C.scrubbed_not_leaked(1, 25, 72).verdict == "planted_recovered"  # the informal-members world
    assert C.scrubbed_not_leaked(20, 34, 91).verdict == "planted_missed"
    assert C.scrubbed_not_leaked(6, 60, 91).verdict == "planted_missed"  # far below undefended, but 6.6% > 5%
    assert C.scrubbed_not_leaked(0, 2, 91).verdict == "not_testable_at_scale"  # nothing to stop
    assert C.scrubbed_not_leaked(0, 5, 10).verdict == "not_testable_at_scale"  # too few masked names


def test_scrubbed_leaks_missed():
    assert C.scrubbed_leaks_missed(8, 19, 0, 91, und_missed_hit=9).verdict == "planted_recovered"
    assert C.scrubbed_leaks_missed(1, 19, 2, 91, und_missed_hit=9).verdict == "planted_missed"
    assert C.scrubbed_leaks_missed(0, 19, 0, 91, und_missed_hit=0).verdict == "not_testable_at_scale"


@pytest.mark.parametrize("size", [10, 40])
def test_base_at_chance(size):
    n = 49
    assert C.base_at_chance(round(n / size), n, size).verdict == "planted_recovered"
    assert C.base_at_chance(20, n, size).verdict == "planted_missed"  # the public+train tokenizer's confound
    assert C.base_at_chance(2, 20, size).verdict == "not_testable_at_scale"


def test_more_than_existing_and_ratio_ci():
    r, (lo, hi) = C.log_ratio_ci(20, 100, 10, 100)
    se = math.sqrt(1 / 20 - 1 / 100 + 1 / 10 - 1 / 100)
    assert r == pytest.approx(2.0) and lo == pytest.approx(2 * math.exp(-C.Z95 * se))
    assert hi == pytest.approx(2 * math.exp(C.Z95 * se))
    assert C.more_than_existing(30, 5, 100).verdict == "reproduced"
    assert C.more_than_existing(50, 5, 100).verdict == "reproduced"  # the abstract's own 10x
    assert C.more_than_existing(8, 4, 49).verdict == "not_reproduced"  # 2x, CI includes 1
    assert C.more_than_existing(5, 5, 100).verdict == "not_reproduced"
    assert C.more_than_existing(0, 10, 100).verdict == "not_reproduced"
    # fewer than 10 successes together bound no ratio: 1 vs 0 is "3x [0.1, 72]"
    assert C.more_than_existing(1, 0, 50).verdict == "not_testable_at_scale"
    assert C.more_than_existing(6, 3, 49).verdict == "not_testable_at_scale"
    assert C.more_than_existing(5, 1, 10).verdict == "not_testable_at_scale"


def test_dp_still_leaks():
    assert C.dp_still_leaks(30, 1000).verdict == "reproduced"  # 3%
    assert C.dp_still_leaks(0, 1000).verdict == "not_reproduced"  # nothing leaks
    assert C.dp_still_leaks(300, 1000).verdict == "not_reproduced"  # 30%: far more than "about 3%"
    assert C.dp_still_leaks(0, 97).verdict == "not_testable_at_scale"
