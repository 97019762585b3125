"""Self-similarity and isotropy of token representations, as Su & Collier's code computes them.

For one sequence with T token vectors h_1..h_T (``isotropy_analysis/compute_language_model_isotropy.py``):

    S = sum_{i != j} cos(h_i, h_j)      (the T x T cosine matrix minus its diagonal of T ones)
    pairs = T (T - 1)

    self_similarity (pooled, the paper's number) = sum_seq S / sum_seq pairs
    isotropy                                     = 1 - self_similarity (the code rounds it to 2 decimals)

Pooling over pairs weighs a sequence by about T^2. The per-sequence mean, mean_seq S / pairs over sequences with
at least two tokens, is the other reading (the formula remembered from the paper and SimCTG); it is kept under its
own name, ``per_sequence_mean``, and never mixed with the pooled value. A one-token sequence adds 0 / 0 to the
pooled sums (harmless, as in the paper's code) and is left out of the per-sequence mean.

S is computed as ||sum_i u_i||^2 - T with u_i = h_i / ||h_i|| (the same number as the matrix sum, in O(T d)),
in float64. Padded batches pass a mask (1 = token, 0 = padding; left or right padding), and every sequence then
gives the same S and pairs as on its own. ``exclude_first`` drops each sequence's first token (position 0 after
any padding: the BOS or attention-sink position) before the pairs are formed.

    acc = SelfSimilarity()
    acc.update(h, mask)                       # h (B, T, d) or (T, d), numpy or torch; mask (B, T) or None
    acc.pooled(), acc.per_sequence_mean(), acc.isotropy()
    lo, hi = acc.ci(n_boot=1000, seed=0)      # bootstrap over sequences of the pooled ratio
"""
from __future__ import annotations

from typing import Any

import numpy as np

from experiments.stats import bootstrap_ci, ratio_ci

# the layer label of the last layer after the final norm (experiments.anisotropy.represent); defined here, in a
# module without torch, so that the tables (measure.COLUMNS, collect) can name it cheaply
FINAL = "final_norm"
POOLED = "pooled"
PER_SEQUENCE_MEAN = "per_sequence_mean"
KINDS = (POOLED, PER_SEQUENCE_MEAN)


def _as_float64(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (any dtype, any device)
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _mask(mask: Any, shape: tuple[int, int], exclude_first: bool) -> np.ndarray:
    m = np.ones(shape, dtype=bool) if mask is None else _as_float64(mask) != 0
    if m.shape != shape:
        raise ValueError(f"mask shape {m.shape} does not match the (batch, positions) of h {shape}")
    if exclude_first:
        m = m & (np.cumsum(m, axis=1) > 1)
    return m


def cosine_sums(h: Any, mask: Any = None, *, exclude_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence: (S = sum_{i != j} cos(h_i, h_j) over its tokens, pairs = T (T - 1)) as two (B,) arrays.

    h: (T, d) for one sequence or (B, T, d); mask: (B, T) with 1 for tokens and 0 for padding (None: all tokens).
    A token vector of norm 0 has no direction: ValueError.
    """
    sums, t = _sums_and_tokens(h, mask, exclude_first)
    return sums, t * (t - 1)


def _sums_and_tokens(h: Any, mask: Any, exclude_first: bool) -> tuple[np.ndarray, np.ndarray]:
    h = _as_float64(h)
    if h.ndim == 2:
        h = h[None]
        mask = None if mask is None else _as_float64(mask).reshape(1, -1)
    if h.ndim != 3:
        raise ValueError(f"h must be (T, d) or (B, T, d), got shape {h.shape}")
    m = _mask(mask, h.shape[:2], exclude_first)
    norms = np.linalg.norm(h, axis=-1)
    if np.any(m & ~(norms > 0)):
        raise ValueError("a token vector has norm 0 (or is not finite): its cosine is undefined")
    u = np.where(m[..., None], h / np.where(m, norms, 1.0)[..., None], 0.0)
    t = m.sum(axis=1).astype(np.float64)
    total = u.sum(axis=1)
    sums = np.einsum("bd,bd->b", total, total) - t
    return np.where(t > 1, sums, 0.0), t


def cosine_matrix_sums(h: Any, *, exclude_first: bool = False) -> tuple[float, int]:
    """Reference for one sequence (T, d), literally as the paper's code: the T x T cosine matrix, summed, minus T."""
    h = _as_float64(h)[1 if exclude_first else 0:]
    u = h / np.linalg.norm(h, axis=1, keepdims=True)
    t = len(h)
    return float((u @ u.T).sum() - t), t * (t - 1)


class SelfSimilarity:
    """Accumulates per-sequence (S, pairs, tokens) and answers the pooled and per-sequence self-similarity."""

    def __init__(self, *, exclude_first: bool = False):
        self.exclude_first = exclude_first
        self._sums: list[np.ndarray] = []
        self._pairs: list[np.ndarray] = []
        self._tokens: list[np.ndarray] = []

    @classmethod
    def from_sums(cls, sums, pairs, tokens=None, *, exclude_first: bool = False) -> "SelfSimilarity":
        acc = cls(exclude_first=exclude_first)
        acc.extend(sums, pairs, tokens)
        return acc

    def update(self, h: Any, mask: Any = None) -> None:
        """Add the sequences of h ((T, d) or (B, T, d)) with their padding mask."""
        sums, t = _sums_and_tokens(h, mask, self.exclude_first)
        self.extend(sums, t * (t - 1), t)

    def extend(self, sums, pairs, tokens=None) -> None:
        """Add per-sequence sums and pairs (tokens: per sequence; None derives them from pairs = T (T - 1),
        counting a one-token sequence as 0)."""
        sums, pairs = np.atleast_1d(_as_float64(sums)), np.atleast_1d(_as_float64(pairs))
        if sums.shape != pairs.shape or sums.ndim != 1:
            raise ValueError(f"sums {sums.shape} and pairs {pairs.shape} must be equal 1-d shapes")
        if not np.all(np.isfinite(sums)):
            raise ValueError("non-finite cosine sum")
        if tokens is None:
            tokens = np.round((1 + np.sqrt(1 + 4 * pairs)) / 2) * (pairs > 0)
        self._sums.append(sums)
        self._pairs.append(pairs)
        self._tokens.append(np.atleast_1d(_as_float64(tokens)))

    @property
    def sums(self) -> np.ndarray:
        return np.concatenate(self._sums) if self._sums else np.zeros(0)

    @property
    def pairs(self) -> np.ndarray:
        return np.concatenate(self._pairs) if self._pairs else np.zeros(0)

    @property
    def tokens(self) -> np.ndarray:
        """Tokens per sequence (after exclude_first)."""
        return np.concatenate(self._tokens) if self._tokens else np.zeros(0)

    @property
    def n_sequences(self) -> int:
        return int(sum(len(s) for s in self._sums))

    def _check(self) -> None:
        if self.pairs.sum() == 0:
            raise ValueError("no token pairs: every sequence has fewer than two tokens")

    def pooled(self) -> float:
        """sum_seq S / sum_seq T(T-1): the paper's self-similarity."""
        self._check()
        return float(self.sums.sum() / self.pairs.sum())

    def per_sequence_values(self) -> np.ndarray:
        """S / T(T-1) of each sequence with at least two tokens."""
        keep = self.pairs > 0
        return self.sums[keep] / self.pairs[keep]

    def per_sequence_mean(self) -> float:
        """mean over sequences (with >= 2 tokens) of S / T(T-1): not the paper's pooled number."""
        self._check()
        return float(self.per_sequence_values().mean())

    def value(self, kind: str = POOLED) -> float:
        if kind == POOLED:
            return self.pooled()
        if kind == PER_SEQUENCE_MEAN:
            return self.per_sequence_mean()
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def isotropy(self, kind: str = POOLED) -> float:
        return 1.0 - self.value(kind)

    def ci(self, kind: str = POOLED, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
        """Percentile bootstrap CI of the self-similarity, resampling sequences (seeded): for "pooled" the ratio
        of sums is recomputed on each resample (experiments.stats.ratio_ci), for "per_sequence_mean" the mean."""
        self._check()
        if kind == POOLED:
            return ratio_ci(self.sums, self.pairs, n_boot=n_boot, seed=seed, alpha=alpha)[1]
        if kind == PER_SEQUENCE_MEAN:
            return bootstrap_ci(self.per_sequence_values(), n_boot=n_boot, seed=seed, alpha=alpha)
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def isotropy_ci(self, kind: str = POOLED, **kwargs) -> tuple[float, float]:
        lo, hi = self.ci(kind, **kwargs)
        return 1.0 - hi, 1.0 - lo

    def summary(self, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
        """One tidy row: counts, both self-similarities with CIs, and the pooled isotropy with its CI."""
        row: dict[str, float] = dict(
            n_sequences=self.n_sequences, n_tokens=int(self.tokens.sum()), n_pairs=int(self.pairs.sum()),
            exclude_first=self.exclude_first,
        )
        for kind in KINDS:
            lo, hi = self.ci(kind, n_boot=n_boot, seed=seed, alpha=alpha)
            row.update({f"self_similarity_{kind}": self.value(kind), f"self_similarity_{kind}_ci_low": lo,
                        f"self_similarity_{kind}_ci_high": hi})
        row.update(isotropy_pooled=1.0 - row["self_similarity_pooled"],
                   isotropy_pooled_ci_low=1.0 - row["self_similarity_pooled_ci_high"],
                   isotropy_pooled_ci_high=1.0 - row["self_similarity_pooled_ci_low"])
        return row
