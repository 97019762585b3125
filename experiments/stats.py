"""Shared statistics: percentile bootstrap, ratio-of-sums bootstrap, Wilson interval, paired differences.

Every result computes its confidence intervals here, so one definition serves all of them:

    lo, hi = bootstrap_ci(losses)                        # CI of the mean, resampling the values
    rate, (lo, hi) = ratio_ci(num, den, n_boot=1000)      # sum(num) / sum(den), resampling units
    lo, hi = wilson(k, n)                                 # binomial proportion k / n
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                 stat: Callable = np.mean) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) confidence interval of stat(values).

    Resamples are drawn as rng.integers(0, n, size=(n_boot, n)) with rng = np.random.default_rng(seed);
    `stat` is called with axis=1 on the (n_boot, n) resamples if it accepts `axis`, else row by row.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty 1-d array, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    resamples = values[rng.integers(0, len(values), size=(n_boot, len(values)))]
    try:
        stats = np.asarray(stat(resamples, axis=1), dtype=float)
    except TypeError:
        stats = np.array([stat(r) for r in resamples], dtype=float)
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def ratio_ci(num, den, n_boot: int, seed: int = 0, alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """sum(num) / sum(den) with a percentile bootstrap CI that resamples units (ratio of sums, not a mean
    of ratios). NaN (and a NaN CI) when sum(den) == 0."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if den.sum() == 0:
        return float("nan"), (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), (n_boot, len(num)))
    boots = num[idx].sum(1) / np.maximum(den[idx].sum(1), 1e-12)
    lo, hi = np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(num.sum() / den.sum()), (float(lo), float(hi))


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n; (nan, nan) when n == 0."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (float(c - h), float(c + h))


def familywise_factor(k: int, level: float = 0.95) -> float:
    """How much wider (per side, normal approximation) each of k intervals at `level` must be for all k to cover
    their values with probability >= level (Bonferroni: each at 1 - (1 - level) / k)."""
    if k <= 1:
        return 1.0
    import scipy.stats as st

    a = 1 - level
    return float(st.norm.ppf(1 - a / (2 * k)) / st.norm.ppf(1 - a / 2))


def normal_ci(value: float, se: float, z: float = Z95) -> tuple[float, float]:
    """value -/+ z * se."""
    return (float(value - z * se), float(value + z * se))


def t_ci(values, alpha: float = 0.05) -> tuple[float, float]:
    """Student-t interval of the mean of a few independent replicates (e.g. training seeds); needs n >= 2."""
    from scipy import stats as st

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        raise ValueError(f"a t interval needs at least 2 replicates, got {len(x)}")
    half = st.t.ppf(1 - alpha / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))
