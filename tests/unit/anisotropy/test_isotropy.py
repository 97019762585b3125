"""Self-similarity / isotropy on constructed vectors with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.anisotropy.isotropy import (
    PER_SEQUENCE_MEAN,
    POOLED,
    SelfSimilarity,
    cosine_matrix_sums,
    cosine_sums,
)


def orthonormal(n: int, d: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, n)))
    return q.T  # (n, d), orthonormal rows


def test_identical_vectors_self_similarity_one_isotropy_zero():
    h = np.tile(np.array([0.3, -1.2, 2.0, 0.5]), (7, 1)) * np.arange(1, 8)[:, None]  # same direction, any norm
    acc = SelfSimilarity()
    acc.update(h)
    assert acc.pooled() == pytest.approx(1.0, abs=1e-12)
    assert acc.isotropy() == pytest.approx(0.0, abs=1e-12)
    assert acc.per_sequence_mean() == pytest.approx(1.0, abs=1e-12)


def test_orthonormal_vectors_self_similarity_zero_isotropy_one():
    acc = SelfSimilarity()
    acc.update(orthonormal(6, 16) * 5.0)
    acc.update(orthonormal(3, 16, seed=1))
    assert acc.pooled() == pytest.approx(0.0, abs=1e-12)
    assert acc.isotropy() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("c,sigma,expected", [(1.0, 1.0, 0.5), (3 ** 0.5, 1.0, 0.75), (1.0, 3.0, 0.1)])
def test_common_component_plus_orthogonal_noise_equal_norms(c, sigma, expected):
    basis = orthonormal(9, 12)
    u, noise = basis[0], basis[1:]             # the noise directions are orthogonal to u and to each other
    h = c * u + sigma * noise                   # cos(h_i, h_j) = c^2 / (c^2 + sigma^2) for every i != j
    acc = SelfSimilarity()
    acc.update(h)
    assert acc.pooled() == pytest.approx(expected, abs=1e-12)
    assert acc.isotropy() == pytest.approx(1 - expected, abs=1e-12)


def test_common_component_plus_orthogonal_noise_of_unequal_norms():
    basis = orthonormal(4, 8)
    c, sigmas = 2.0, np.array([1.0, 2.0, 3.0])
    h = c * basis[0] + sigmas[:, None] * basis[1:]
    norms2 = c ** 2 + sigmas ** 2
    # sum over ordered pairs i != j of c^2 / sqrt(|h_i|^2 |h_j|^2)
    s = sum(c ** 2 / np.sqrt(norms2[i] * norms2[j]) for i in range(3) for j in range(3) if i != j)
    sums, pairs = cosine_sums(h)
    assert sums[0] == pytest.approx(s, abs=1e-12) and pairs[0] == 6
    assert SelfSimilarity.from_sums(sums, pairs).pooled() == pytest.approx(s / 6, abs=1e-12)


def test_common_component_plus_random_noise_matches_its_expected_cosine():
    rng = np.random.default_rng(0)
    d, a, sigma = 4096, 1.0, 1.5
    u = np.zeros(d)
    u[0] = 1.0
    h = a * u + sigma * rng.normal(size=(40, d)) / np.sqrt(d)   # noise of norm ~ sigma, nearly orthogonal
    acc = SelfSimilarity()
    acc.update(h)
    assert acc.pooled() == pytest.approx(a ** 2 / (a ** 2 + sigma ** 2), abs=0.02)


def test_fast_sum_equals_the_papers_cosine_matrix():
    h = np.random.default_rng(1).normal(size=(11, 5)) + 0.7
    for excl in (False, True):
        s, p = cosine_matrix_sums(h, exclude_first=excl)
        fast_s, fast_p = cosine_sums(h, exclude_first=excl)
        assert fast_s[0] == pytest.approx(s, abs=1e-10) and fast_p[0] == p


def test_pooled_and_per_sequence_mean_differ_on_unequal_lengths():
    # A: 2 identical tokens -> S = 2, pairs = 2 (cos 1); B: 3 orthonormal tokens -> S = 0, pairs = 6 (cos 0);
    # C: one token -> 0 / 0, nothing to either number
    acc = SelfSimilarity()
    acc.update(np.array([[1.0, 0, 0], [2.0, 0, 0]]))
    acc.update(np.eye(3))
    acc.update(np.array([[0.0, 1.0, 0.0]]))
    assert acc.sums.tolist() == pytest.approx([2, 0, 0], abs=1e-12) and acc.pairs.tolist() == [2, 6, 0]
    assert acc.pooled() == pytest.approx(2 / 8)                  # the paper's number: pairs pooled
    assert acc.per_sequence_mean() == pytest.approx((1 + 0) / 2)  # the mean of per-sequence means
    assert acc.value(POOLED) == acc.pooled() and acc.value(PER_SEQUENCE_MEAN) == acc.per_sequence_mean()
    assert acc.tokens.tolist() == [2, 3, 1] and acc.n_sequences == 3


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("exclude_first", [False, True])
def test_padded_batch_equals_each_sequence_alone(side, exclude_first):
    rng = np.random.default_rng(2)
    lengths, d = [5, 1, 9, 3], 7
    seqs = [rng.normal(size=(n, d)) + 0.5 for n in lengths]
    T = max(lengths)
    batch = rng.normal(size=(len(seqs), T, d)) * 100      # padding holds garbage ...
    batch[0, -1] = 0.0                                     # ... even zero vectors
    mask = np.zeros((len(seqs), T), dtype=np.int64)
    for b, s in enumerate(seqs):
        sl = slice(0, len(s)) if side == "right" else slice(T - len(s), T)
        batch[b, sl], mask[b, sl] = s, 1
    sums, pairs = cosine_sums(batch, mask, exclude_first=exclude_first)
    for b, s in enumerate(seqs):
        alone_s, alone_p = cosine_sums(s, exclude_first=exclude_first)
        assert sums[b] == pytest.approx(alone_s[0], abs=1e-10) and pairs[b] == alone_p[0]
    padded, alone = SelfSimilarity(exclude_first=exclude_first), SelfSimilarity(exclude_first=exclude_first)
    padded.update(torch.tensor(batch, dtype=torch.float64), torch.tensor(mask))
    for s in seqs:
        alone.update(s)
    assert padded.pooled() == pytest.approx(alone.pooled(), abs=1e-12)


def test_exclude_first_drops_position_zero():
    # position 0 points elsewhere (an attention-sink BOS); positions 1..3 are identical
    h = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 2.0, 0], [0, 3.0, 0]])
    with_first, without = SelfSimilarity(), SelfSimilarity(exclude_first=True)
    with_first.update(h)
    without.update(h)
    assert with_first.pooled() == pytest.approx(6 / 12)           # 3*2 identical ordered pairs of 4*3
    assert without.pooled() == pytest.approx(1.0)
    assert without.pairs.tolist() == [6] and without.tokens.tolist() == [3]
    # with left padding, the first *token* is dropped, not the first column
    padded = np.concatenate([np.zeros((2, 3)), h])[None]
    s, p = cosine_sums(padded, np.array([[0, 0, 1, 1, 1, 1]]), exclude_first=True)
    assert s[0] == pytest.approx(6.0) and p[0] == 6


def test_bootstrap_ci_contains_the_value_and_shrinks_with_n():
    rng = np.random.default_rng(3)
    basis = orthonormal(33, 40)

    def sequences(n):
        out = []
        for _ in range(n):
            t = int(rng.integers(2, 12))
            c = rng.uniform(0.5, 2.0)                   # a per-sequence common component: real spread
            out.append(c * basis[0] + basis[1:t + 1])
        return out

    widths = {}
    for n in (20, 400):
        acc = SelfSimilarity()
        for s in sequences(n):
            acc.update(s)
        for kind in (POOLED, PER_SEQUENCE_MEAN):
            lo, hi = acc.ci(kind, n_boot=500, seed=0)
            assert lo < acc.value(kind) < hi
            assert acc.ci(kind, n_boot=500, seed=0) == (lo, hi)               # seeded
            ilo, ihi = acc.isotropy_ci(kind, n_boot=500, seed=0)
            assert (ilo, ihi) == pytest.approx((1 - hi, 1 - lo))
            widths[n, kind] = hi - lo
    for kind in (POOLED, PER_SEQUENCE_MEAN):
        assert widths[400, kind] < widths[20, kind] / 2.5          # ~ 1 / sqrt(n): sqrt(20) = 4.5


def test_summary_row():
    acc = SelfSimilarity(exclude_first=True)
    acc.update(np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 0]]))
    acc.update(np.eye(3) + 0.1)
    row = acc.summary(n_boot=50, seed=0)
    assert row["n_sequences"] == 2 and row["n_tokens"] == 4 and row["n_pairs"] == 4 and row["exclude_first"]
    assert row["isotropy_pooled"] == pytest.approx(1 - row["self_similarity_pooled"])
    assert row["isotropy_pooled_ci_low"] == pytest.approx(1 - row["self_similarity_pooled_ci_high"])
    assert row["self_similarity_per_sequence_mean"] == pytest.approx(acc.per_sequence_mean())


def test_errors():
    acc = SelfSimilarity()
    acc.update(np.ones((1, 4)))
    with pytest.raises(ValueError, match="no token pairs"):
        acc.pooled()
    with pytest.raises(ValueError, match="norm 0"):
        cosine_sums(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="mask shape"):
        cosine_sums(np.ones((2, 3, 4)), np.ones((2, 4)))
    acc.update(np.eye(2))
    with pytest.raises(ValueError, match="kind must be one of"):
        acc.value("mean")
