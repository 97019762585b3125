"""Shared statistics checked against hand-computed cases."""
import numpy as np
import pytest

from experiments.stats import bootstrap_ci, normal_ci, ratio_ci, t_ci, wilson


def test_bootstrap_ci_by_hand():
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    # mean of 2 draws from {0, 1} is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    assert bootstrap_ci([0.0, 1.0], n_boot=4000) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], n_boot=4000, alpha=0.6) == (0.5, 0.5)


def test_bootstrap_ci_matches_a_loop():
    values = np.random.default_rng(1).normal(size=50)
    rng = np.random.default_rng(7)
    means = [values[rng.integers(0, 50, size=50)].mean() for _ in range(300)]
    expected = tuple(np.quantile(means, [0.05, 0.95]))
    assert bootstrap_ci(values, n_boot=300, seed=7, alpha=0.1) == pytest.approx(expected)
    # a stat without an `axis` argument is applied per resample
    assert bootstrap_ci(values, n_boot=300, seed=7, alpha=0.1, stat=lambda x: float(np.mean(x))) == pytest.approx(
        expected
    )
    low, high = bootstrap_ci(values, seed=7)
    assert low < values.mean() < high


def test_ratio_ci_is_a_ratio_of_sums():
    value, (lo, hi) = ratio_ci(np.array([1.0, 3.0]), np.array([2.0, 2.0]), n_boot=2000)
    assert value == 1.0  # (1 + 3) / (2 + 2), not the mean of 0.5 and 1.5 (which is also 1 here) ...
    value, _ = ratio_ci(np.array([1.0, 9.0]), np.array([1.0, 9.0 * 3]), n_boot=10)
    assert value == pytest.approx(10 / 28)  # ... and here differs from mean(1, 1/3) = 2/3
    assert lo == 0.5 and hi == 1.5  # resamples: both units the first (0.5), both the second (1.5)
    assert np.isnan(ratio_ci(np.array([1.0]), np.array([0.0]), n_boot=10)[0])


def test_wilson_by_hand():
    # k = 0, n = 10, z = 1.96: upper bound z^2 / (n + z^2) = 3.8415 / 13.8415
    lo, hi = wilson(0, 10)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(3.8415 / 13.8415, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(1 - hi) and 0.23 < lo < 0.24
    assert np.isnan(wilson(0, 0)[0])


def test_normal_and_t_intervals():
    assert normal_ci(1.0, 0.5) == pytest.approx((1 - 0.98, 1 + 0.98), abs=1e-3)
    # t with 2 df at 97.5%: 4.303; mean 2, sd 1, n 3 -> half width 4.303 / sqrt(3) = 2.484
    assert t_ci([1.0, 2.0, 3.0]) == pytest.approx((2 - 2.484, 2 + 2.484), abs=1e-3)
    with pytest.raises(ValueError):
        t_ci([1.0])
