"""Job-mention tables from extracted completions (notes §1, "Frequency matrix and two quirks").

Input: the completions table of the data contract, one row per completion, with `jobs` = the canonical
job of each extracted title, "|"-joined in title order ("" if none; duplicates kept, so `n_jobs` = its
length). Two variants, always labelled in every output:

  faithful  the original code's matrix: explode each completion's titles, one-hot them, then merge the
            dummies back on the (now duplicated) index. A completion with k jobs becomes k*k rows, row
            (a, b) holding a one at its b-th job, so each of its jobs is counted k times (quirk 1); a
            completion with no job stays as one all-zero row (quirk 2).
  clean     one row per completion, multi-hot: y_j = 1 if job j is among its jobs (a job named twice
            in one completion counts once).

"Mentions" of job j in a set of completions = the column sum of j in that variant's row-level matrix:
faithful sum_c k_c * (times j occurs in c), clean = number of completions naming j.

Everything downstream needs only counts, so mention_counts() and unit_totals() work on the long
(completion, job) list and never build the matrix; design_frame() builds the literal row-level matrix
(for small inputs, tests, and as the reference the fast counts are checked against).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

VARIANTS = ("faithful", "clean")
UNIT_KEYS = ("model_id", "prompt_type", "gender", "category", "category_value", "group")
REQUIRED_COLUMNS = UNIT_KEYS + ("jobs",)
SEP = "|"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: one of {VARIANTS}")


def validate_completions(df: pd.DataFrame) -> pd.DataFrame:
    """Check the contract's columns; return a copy with a RangeIndex and `jobs` as str ("" = no job).

    Warns when an `n_jobs` column disagrees with the number of "|"-separated jobs (the faithful
    variant's k is taken from `jobs`, which the extractor writes one-per-title).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"completions table lacks column(s) {missing}; has {list(df.columns)}")
    out = df.reset_index(drop=True).copy()
    out["jobs"] = out["jobs"].fillna("").astype(str)
    for c in UNIT_KEYS:
        out[c] = out[c].astype(str)
    for c, allowed in (("gender", {"man", "woman"}), ("prompt_type", {"identity", "name"})):
        bad = set(out[c].unique()) - allowed
        if bad:
            raise ValueError(f"column {c!r} has values {sorted(bad)} outside {sorted(allowed)}")
    if "n_jobs" in out.columns:
        k = job_counts_per_completion(out)
        n_bad = int((k != out["n_jobs"].to_numpy()).sum())
        if n_bad:
            warnings.warn(f"{n_bad} completions have n_jobs != number of '|'-separated jobs; using the jobs column",
                          stacklevel=2)
    return out


def _table(df: pd.DataFrame) -> pd.DataFrame:
    """`df` itself when already in validated form (RangeIndex, str jobs), else validate_completions(df)."""
    if (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
            and all(c in df.columns for c in REQUIRED_COLUMNS) and df["jobs"].map(type).eq(str).all()):
        return df
    return validate_completions(df)


def read_completions(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read one or more completions CSVs (empty fields stay "", so a name like "Nan" is not NaN)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[], dtype={c: str for c in REQUIRED_COLUMNS})
              for p in paths]
    if not frames:
        raise ValueError("no completions files given")
    return validate_completions(pd.concat(frames, ignore_index=True))


def job_long(completions: pd.DataFrame) -> pd.DataFrame:
    """One row per listed job occurrence: completion (row position in `completions`), job.

    Duplicates within a completion are kept, in order. Completions with no job have no row.
    Vectorised over the distinct `jobs` strings (few at any scale), then expanded with numpy.
    """
    jobs = completions["jobs"].fillna("").astype(str).to_numpy()
    codes, uniq = pd.factorize(jobs)
    parts = [[j.strip() for j in u.split(SEP) if j.strip()] for u in uniq]
    lens = np.array([len(p) for p in parts], dtype=np.int64)
    flat = np.array([j for p in parts for j in p], dtype=object)
    starts = np.cumsum(lens) - lens
    row_lens = lens[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    completion = np.repeat(np.arange(len(jobs), dtype=np.int64), row_lens)
    within = np.arange(len(completion)) - np.repeat(np.cumsum(row_lens) - row_lens, row_lens)
    job = flat[starts[codes[completion]] + within] if len(completion) else np.zeros(0, dtype=object)
    return pd.DataFrame({"completion": completion, "job": job})


def job_counts_per_completion(completions: pd.DataFrame) -> np.ndarray:
    """k: number of listed jobs of each completion (duplicates counted), shape (n_completions,)."""
    return np.bincount(job_long(completions)["completion"].to_numpy(), minlength=len(completions))


def completion_job_weights(completions: pd.DataFrame, variant: str) -> pd.DataFrame:
    """Each completion's contribution to each job's mentions: completion, job, weight.

    faithful: weight = k * (occurrences of the job in the completion); clean: weight = 1 per distinct job.
    Sum of `weight` over a set of completions = that set's mentions (column sums of design_frame).
    """
    _check_variant(variant)
    long = job_long(completions)
    if variant == "clean":
        long = long.drop_duplicates(["completion", "job"])
        return long.assign(weight=np.ones(len(long), dtype=np.int64)).reset_index(drop=True)
    k = np.bincount(long["completion"].to_numpy(), minlength=len(completions))
    w = long.groupby(["completion", "job"], sort=False).size().rename("weight").reset_index()
    w["weight"] = w["weight"].to_numpy(dtype=np.int64) * k[w["completion"].to_numpy()]
    return w


def design_frame(completions: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The row-level matrix: unit keys, `completion` (row position), then one 0/1 int8 column per job.

    faithful is built literally as the original code did (explode -> get_dummies -> merge on the
    duplicated index): k*k rows for a completion with k >= 1 jobs, one all-zero row for k = 0.
    clean has one row per completion, multi-hot. Memory is rows x jobs bytes: meant for small inputs.
    """
    _check_variant(variant)
    df = _table(completions)
    meta = df[list(UNIT_KEYS)].assign(completion=np.arange(len(df)))
    long = job_long(df)
    jobs = sorted(long["job"].unique())
    clash = set(jobs) & set(meta.columns)
    if clash:
        raise ValueError(f"job labels {sorted(clash)} collide with key columns")
    if variant == "faithful":
        lists = pd.Series([[] for _ in range(len(df))], dtype=object)
        grouped = long.groupby("completion")["job"].agg(list)
        lists.iloc[grouped.index.to_numpy()] = grouped.to_numpy()
        exploded = meta.assign(title=lists.to_numpy()).explode("title")  # [] -> NaN, index duplicated
        dummies = pd.get_dummies(exploded["title"], dtype=np.int8).reindex(columns=jobs, fill_value=0)
        out = exploded.drop(columns="title").merge(dummies, left_index=True, right_index=True)
        return out.reset_index(drop=True)
    y = np.zeros((len(df), len(jobs)), dtype=np.int8)
    if len(long):
        code = pd.Index(jobs).get_indexer(long["job"])
        y[long["completion"].to_numpy(), code] = 1
    return pd.concat([meta, pd.DataFrame(y, columns=jobs)], axis=1)


def _unit_codes(df: pd.DataFrame, by: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """(code per completion, table of the distinct units in code order, sorted by `by`)."""
    g = df.groupby(list(by), sort=True)
    return g.ngroup().to_numpy(dtype=np.int64), g.size().reset_index()[list(by)]


def mention_counts(completions: pd.DataFrame, variant: str, by: Sequence[str] = UNIT_KEYS) -> pd.DataFrame:
    """Long table: the `by` columns, job, mentions (only jobs with mentions > 0 appear)."""
    df = _table(completions)
    w = completion_job_weights(df, variant)
    codes, units = _unit_codes(df, by)
    w["unit"] = codes[w["completion"].to_numpy()]
    agg = w.groupby(["unit", "job"], sort=True)["weight"].sum().rename("mentions").reset_index()
    out = units.iloc[agg["unit"].to_numpy()].reset_index(drop=True)
    out["job"] = agg["job"].to_numpy()
    out["mentions"] = agg["mentions"].to_numpy(dtype=np.int64)
    return out


def count_matrix(completions: pd.DataFrame, variant: str, by: Sequence[str] = UNIT_KEYS,
                 jobs: Sequence[str] | None = None) -> pd.DataFrame:
    """Wide mentions table: index = units (`by`), one column per job (all observed jobs, or `jobs`)."""
    long = mention_counts(completions, variant, by)
    wide = long.pivot_table(index=list(by), columns="job", values="mentions", aggfunc="sum", fill_value=0)
    units = _unit_codes(_table(completions), by)[1]
    wide = wide.reindex(pd.MultiIndex.from_frame(units), fill_value=0)
    if jobs is not None:
        wide = wide.reindex(columns=list(jobs), fill_value=0)
    wide.columns.name = None
    return wide.astype(np.int64)


def unit_totals(completions: pd.DataFrame, variant: str, by: Sequence[str] = UNIT_KEYS) -> pd.DataFrame:
    """Per unit: n_completions, n_no_job (completions with no job), n_rows (rows of the variant's
    row-level matrix: faithful sum max(k^2, 1), clean n_completions) and n_mentions."""
    _check_variant(variant)
    df = _table(completions)
    codes, units = _unit_codes(df, by)
    k = job_counts_per_completion(df)
    n_units = len(units)
    rows = np.maximum(k * k, 1) if variant == "faithful" else np.ones_like(k)
    w = completion_job_weights(df, variant)
    out = units.copy()
    out["n_completions"] = np.bincount(codes, minlength=n_units)
    out["n_no_job"] = np.bincount(codes, weights=(k == 0), minlength=n_units).astype(np.int64)
    out["n_rows"] = np.bincount(codes, weights=rows, minlength=n_units).astype(np.int64)
    out["n_mentions"] = np.bincount(codes[w["completion"].to_numpy()], weights=w["weight"].to_numpy(),
                                    minlength=n_units).astype(np.int64)
    return out
