"""How concentrated each group's job distribution is (notes §1 "Diversity metrics", §2 "Concentration").

Per unit (one prompt group; and pools of groups: a continent's names, an intersection per gender, all
prompts of a type per gender), from job mentions (frequency.py; the variant decides what a mention is):

  n50, n90          number of top jobs covering 50% / 90% of mentions: the smallest n whose cumulative
                    share of the n most-mentioned jobs is >= the target
  gini              statsdirect formula G = sum_i (2i - n - 1) x_i / (n sum_i x_i), x sorted ascending,
                    i = 1..n.  faithful: x = the share vector over ALL job columns of the prompt type's
                    matrix (jobs seen anywhere in that model's identity, resp. name, completions; zero-count
                    jobs included) with 1e-7 added to every entry, as the original.  clean: x = the unit's
                    counts over the jobs it mentions (zeros dropped), no epsilon.
  gini_rel_base_man 100 * gini / gini(identity "man") of the same model and variant (the paper's scale; for
                    name prompts the faithful Gini's zero-padded vocabulary is the name matrix's, not the
                    identity matrix's, as the original kept the two matrices apart)
  n_completions, n_rows (rows of the variant's matrix: faithful sum max(k^2, 1), cf. the notes' 255,093 rows
                    for 196,000 completions), n_mentions, n_jobs_observed, no_job_share (share of completions
                    with no job)

Bootstrap CIs (percentile) for n50, n90, gini, gini_rel_base_man resample completions with replacement
within each group. These metrics depend on a group's completions only through its per-job mention counts,
and a completion's contribution to those counts depends only on its list of jobs, so resampling n
completions is *exactly* a multinomial(n, p) draw over the distinct job lists ("signatures") of the group,
p = their observed frequencies; counts = draws @ (signature x job contributions). That is what is done here
(vectorised, no per-completion loop). Pools sum their groups' resampled counts. Each group's draws are seeded
from (seed, model, prompt type, group), so faithful and clean see the same resampled completions and a
group's CI does not depend on which other groups are in the input.
"""
from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pandas as pd
import scipy.sparse as sp

from experiments.occupational_bias.frequency import VARIANTS, _check_variant, _table, job_long

GROUP_KEYS = ("gender", "category", "category_value", "group")
LEVELS = ("group", "category_value", "category", "prompt_type")  # finest to coarsest
BOOTSTRAPPED = ("n50", "n90", "gini", "gini_rel_base_man")
EPSILON = 1e-7


# --------------------------------------------------------------------------- metrics on count vectors
def gini(x, epsilon: float = 0.0, axis: int = -1):
    """statsdirect Gini of each vector along `axis` (epsilon added to every entry first).

    G = sum_i (2i - n - 1) x_(i) / (n sum x), x_(1) <= ... <= x_(n). NaN where sum x == 0.
    """
    x = np.sort(np.asarray(x, dtype=float) + epsilon, axis=axis)
    x = np.moveaxis(x, axis, -1)
    n = x.shape[-1]
    w = 2.0 * np.arange(1, n + 1) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (x * w).sum(-1) / (n * x.sum(-1))
    return g if g.ndim else float(g)


def gini_observed(x, axis: int = -1):
    """statsdirect Gini over the strictly positive entries of each vector (zero entries dropped)."""
    x = np.moveaxis(np.sort(np.asarray(x, dtype=float), axis=axis), axis, -1)
    if np.any(x < 0):
        raise ValueError("counts must be >= 0")
    big_v = x.shape[-1]
    z = (x == 0).sum(-1, keepdims=True)  # zeros sort first; the positives have ranks pos - z
    n = big_v - z
    pos = np.arange(1, big_v + 1)
    w = 2.0 * (pos - z) - n - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (x * w).sum(-1) / (n[..., 0] * x.sum(-1))
    return g if g.ndim else float(g)


def coverage_n(counts, target: float, axis: int = -1):
    """Smallest n such that the n largest entries hold >= `target` of the total (0 if the total is 0).

    A relative tolerance of 1e-9 absorbs float error (shares 0.7 + 0.2 == 0.8999999999999999 in binary).
    """
    if not 0 < target <= 1:
        raise ValueError("target must be in (0, 1]")
    c = np.moveaxis(np.asarray(counts, dtype=float), axis, -1)
    if c.shape[-1] == 0:  # no job at all (e.g. a random-init model): nothing to cover
        n = np.zeros(c.shape[:-1], dtype=int)
        return n if n.ndim else 0
    c = -np.sort(-c, axis=-1)
    cum = np.cumsum(c, axis=-1)
    total = cum[..., -1:] if c.shape[-1] else np.zeros(c.shape[:-1] + (1,))
    reached = cum >= target * total * (1 - 1e-9)
    n = np.argmax(reached, axis=-1) + 1
    n = np.where(total[..., 0] > 0, n, 0)
    return n if n.ndim else int(n)


# --------------------------------------------------------------------------- per-unit counts and draws
def _seed_for(seed: int, *parts: str) -> np.random.Generator:
    key = zlib.crc32("\x1f".join(parts).encode("utf-8"))
    return np.random.default_rng([int(seed), key])


@dataclass
class _Unit:
    keys: dict
    members: tuple  # group keys (gender, category, category_value, group) pooled
    counts: np.ndarray  # (V,) observed mentions
    draws: np.ndarray | None  # (B, V) resampled mentions, or None without bootstrap
    n_completions: int = 0
    n_no_job: int = 0
    n_rows: int = 0  # rows of the variant's row-level matrix (faithful: sum max(k^2, 1))
    metrics: dict = field(default_factory=dict)  # name -> (value, draws or None)


def _group_units(df: pd.DataFrame, variant: str, vocab: list[str], n_boot: int, seed: int,
                 model_id: str, prompt_type: str) -> Iterator[_Unit]:
    """Observed and bootstrap-resampled mention counts over `vocab`, one unit per prompt group (generator,
    in sorted group-key order, so only one group's (B, V) draws need to be alive at a time)."""
    _check_variant(variant)
    # signature of a completion: its sorted job multiset ("" = no job); its contributions depend only on
    # it (faithful: k x occurrences; clean: 1 per distinct job). Computed per distinct `jobs` string.
    jobs_code, jobs_uniq = pd.factorize(df["jobs"].to_numpy())
    lists = [sorted(j.strip() for j in u.split("|") if j.strip()) for u in jobs_uniq]
    sig_code_of_uniq, sig_uniques = pd.factorize(np.array(["|".join(x) for x in lists], dtype=object))
    sig_code = sig_code_of_uniq[jobs_code]
    sig_lists = [None] * len(sig_uniques)
    for x, c in zip(lists, sig_code_of_uniq):
        sig_lists[c] = x
    col = {j: i for i, j in enumerate(vocab)}
    r_idx, c_idx, vals = [], [], []
    for r, x in enumerate(sig_lists):
        for j, cnt in Counter(x).items():
            r_idx.append(r), c_idx.append(col[j]), vals.append(len(x) * cnt if variant == "faithful" else 1)
    contrib = sp.csr_matrix((np.asarray(vals, dtype=float), (r_idx, c_idx)), shape=(len(sig_uniques), len(vocab)))
    k = np.array([len(x) for x in sig_lists], dtype=np.int64)[sig_code]
    for key, idx in df.groupby(list(GROUP_KEYS), sort=True).indices.items():
        codes, n_per = np.unique(sig_code[idx], return_counts=True)
        t = contrib[codes]
        counts = np.asarray(t.T @ n_per.astype(float)).ravel()
        draws = None
        if n_boot > 0:
            rng = _seed_for(seed, model_id, prompt_type, *key)
            d = rng.multinomial(len(idx), n_per / len(idx), size=n_boot).astype(float)  # (B, n_sigs)
            draws = np.asarray((t.T @ d.T).T)
        yield _Unit(dict(zip(GROUP_KEYS, key), level="group"), (key,), counts, draws,
                    n_completions=len(idx), n_no_job=int((k[idx] == 0).sum()),
                    n_rows=int(np.maximum(k[idx] ** 2, 1).sum()) if variant == "faithful" else len(idx))


def _pool_specs(group_keys: list[tuple]) -> list[tuple[dict, frozenset]]:
    """(keys, member group keys) of the pools: >= 2 groups sharing the fixed columns of a coarser level;
    identical member sets keep the coarsest level (e.g. one continent per name -> "prompt_type")."""
    by_members: dict[frozenset, dict] = {}
    for level in LEVELS[1:]:  # finest first, so a coarser level with the same members overwrites
        fixed = {"category_value": ("gender", "category", "category_value"),
                 "category": ("gender", "category"), "prompt_type": ("gender",)}[level]
        buckets: dict[tuple, list[tuple]] = {}
        for key in group_keys:
            d = dict(zip(GROUP_KEYS, key))
            buckets.setdefault(tuple(d[c] for c in fixed), []).append(key)
        for fixed_vals, members in buckets.items():
            if len(members) >= 2:
                keys = {c: "all" for c in GROUP_KEYS} | dict(zip(fixed, fixed_vals)) | {"level": level}
                by_members[frozenset(members)] = keys
    return [(keys, members) for members, keys in by_members.items()]


def _units_with_pools(df: pd.DataFrame, variant: str, vocab: list[str], n_boot: int, seed: int, model_id: str,
                      prompt_type: str, epsilon: float, targets: dict[str, float]) -> list[_Unit]:
    """Every group and pool of one prompt type with its metrics computed (and its (B, V) draws freed)."""
    group_keys = sorted(df.groupby(list(GROUP_KEYS), sort=True).indices)
    pools = [_Unit(keys, tuple(sorted(members)), np.zeros(len(vocab)),
                   None if n_boot <= 0 else np.zeros((n_boot, len(vocab))))
             for keys, members in _pool_specs(group_keys)]
    pools_of = {key: [p for p in pools if key in p.members] for key in group_keys}
    out = []
    for u in _group_units(df, variant, vocab, n_boot, seed, model_id, prompt_type):
        for p in pools_of[u.members[0]]:
            p.counts += u.counts
            p.n_completions += u.n_completions
            p.n_no_job += u.n_no_job
            p.n_rows += u.n_rows
            if u.draws is not None:
                p.draws += u.draws
        _compute_metrics(u, variant, epsilon, targets)
        u.draws = None
        out.append(u)
    for p in pools:
        _compute_metrics(p, variant, epsilon, targets)
        p.draws = None
        out.append(p)
    return out


def _gini_for(variant: str, counts: np.ndarray, epsilon: float) -> np.ndarray:
    if variant == "faithful":
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = counts / counts.sum(-1, keepdims=True)
        return gini(shares, epsilon=epsilon)
    return gini_observed(counts)


def _compute_metrics(u: _Unit, variant: str, epsilon: float, targets: dict[str, float]) -> None:
    n_mentions = float(u.counts.sum())
    u.metrics.update(n_completions=(float(u.n_completions), None), n_rows=(float(u.n_rows), None),
                     n_mentions=(n_mentions, None),
                     n_jobs_observed=(float((u.counts > 0).sum()), None),
                     no_job_share=(u.n_no_job / u.n_completions if u.n_completions else np.nan, None))
    for name, t in targets.items():
        u.metrics[name] = (float(coverage_n(u.counts, t)) if n_mentions else np.nan,
                           None if u.draws is None else np.where(u.draws.sum(1) > 0, coverage_n(u.draws, t),
                                                                 np.nan))
    u.metrics["gini"] = (float(_gini_for(variant, u.counts, epsilon)),
                         None if u.draws is None else _gini_for(variant, u.draws, epsilon))


# --------------------------------------------------------------------------- the table
def diversity_table(completions: pd.DataFrame, variants=VARIANTS, n_boot: int = 1000, seed: int = 0,
                    ci_level: float = 0.95, epsilon: float = EPSILON,
                    targets: dict[str, float] | None = None) -> pd.DataFrame:
    """Tidy diversity metrics for every model, variant, prompt type, and unit.

    Columns: model_id, variant, prompt_type, level (group | category_value | category | prompt_type),
    gender, category, category_value, group ("all" where pooled over), metric, value, ci_low, ci_high,
    n_boot. ci_low/ci_high are NaN for the count metrics (never bootstrapped) and when n_boot == 0.
    Metric rows whose value is undefined (a unit with no mentions) are left out; its n_mentions = 0 row
    says why.
    """
    targets = targets or {"n50": 0.5, "n90": 0.9}
    df = _table(completions)
    q = ((1 - ci_level) / 2, 1 - (1 - ci_level) / 2)
    rows = []
    for model_id, dm in df.groupby("model_id", sort=True):
        for variant in variants:
            units: list[tuple[str, _Unit]] = []
            for prompt_type, dp in dm.groupby("prompt_type", sort=True):
                dp = dp.reset_index(drop=True)
                vocab = sorted(job_long(dp)["job"].unique())
                for u in _units_with_pools(dp, variant, vocab, n_boot, seed, str(model_id), str(prompt_type),
                                           epsilon, targets):
                    units.append((str(prompt_type), u))
            ref = next((u for pt, u in units if pt == "identity" and u.keys["level"] == "group"
                        and u.keys["category"] == "base" and u.keys["gender"] == "man"), None)
            for pt, u in units:
                if ref is not None and ref.metrics["gini"][0] > 0:
                    g, gd = u.metrics["gini"]
                    rg, rgd = ref.metrics["gini"]
                    with np.errstate(invalid="ignore", divide="ignore"):  # resampled base-man Gini can be 0
                        rel_draws = None if gd is None else np.where(rgd > 0, 100 * gd / rgd, np.nan)
                    u.metrics["gini_rel_base_man"] = (100 * g / rg, rel_draws)
                for metric, (value, draws) in u.metrics.items():
                    if not np.isfinite(value):
                        continue
                    lo = hi = np.nan
                    if draws is not None and metric in BOOTSTRAPPED and np.isfinite(draws).any():
                        lo, hi = np.nanquantile(draws, q)
                    rows.append(dict(model_id=model_id, variant=variant, prompt_type=pt, level=u.keys["level"],
                                     **{c: u.keys[c] for c in GROUP_KEYS}, metric=metric, value=float(value),
                                     ci_low=float(lo), ci_high=float(hi),
                                     n_boot=n_boot if metric in BOOTSTRAPPED else 0))
    return pd.DataFrame(rows, columns=["model_id", "variant", "prompt_type", "level", *GROUP_KEYS, "metric",
                                       "value", "ci_low", "ci_high", "n_boot"])
