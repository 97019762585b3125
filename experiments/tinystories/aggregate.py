"""Combine per-model evaluations into the sweep table and fit loss against parameters.

Fit: L(N) over the sweep's grid models (trained at the grid learning rate; the learning-rate sweep's
other models are left out), one point per shape (the mean over training seeds). Both forms are fitted,
each in its own row, and each bootstrap resample (over shapes) is refitted with that same form:
    a*N^-alpha      a pure power law (a straight line in log-log; least squares), needs >= 3 sizes
    a*N^-alpha+c    with an irreducible loss 0 <= c <= min loss (least squares in log-loss), needs >= 4
A resample with too few distinct sizes, or whose fit fails, is counted (n_boot_failed) and not
replaced by the other form; the CI is NaN when fewer than 90% of the resamples fit.

CLI:
    python -m experiments.tinystories.aggregate --evals eval/*.csv --curves loss_curves/*.csv \
        --grid-lr 0.004 --bootstrap 1000 --out sweep.csv --fit-out power_law.csv --curves-out loss_curves.csv
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from experiments.files import atomic_write_csv

PARAM_COLUMNS = ("params_non_embedding", "params_total")
PURE, SATURATING = "a*N^-alpha", "a*N^-alpha+c"
FORMS = {PURE: 3, SATURATING: 4}  # form -> fewest distinct sizes it is fitted on
MIN_BOOT_SHARE = 0.9  # share of resamples that must fit for a CI


def _saturating(logn: np.ndarray, log_a: float, alpha: float, c: float) -> np.ndarray:
    return np.log(np.exp(log_a - alpha * logn) + c)


def fit_power_law(n: np.ndarray, loss: np.ndarray, form: str) -> dict | None:
    """Fit loss = a N^-alpha (+ c) in the given form; a, alpha, c, r2 (in log-loss space), or None when the
    points have fewer distinct sizes than the form needs or the fit fails."""
    if form not in FORMS:
        raise ValueError(f"form {form!r} not in {list(FORMS)}")
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(np.unique(n)) < FORMS[form]:
        return None
    logn, logl = np.log(n), np.log(loss)
    slope, intercept = np.polyfit(logn, logl, 1)
    if form == PURE:
        fit = {"a": float(np.exp(intercept)), "alpha": float(-slope), "c": 0.0}
        pred = intercept + slope * logn
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p0 = (intercept, max(-slope, 0.05), 0.5 * float(loss.min()))
                popt, _ = curve_fit(_saturating, logn, logl, p0=p0, bounds=([-50, 0, 0], [50, 5, float(loss.min())]),
                                    maxfev=20000)
        except (RuntimeError, ValueError):
            return None
        fit = {"a": float(np.exp(popt[0])), "alpha": float(popt[1]), "c": float(popt[2])}
        pred = _saturating(logn, *popt)
    ss_res = float(((logl - pred) ** 2).sum())
    ss_tot = float(((logl - logl.mean()) ** 2).sum())
    fit["r2"] = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return fit


def bootstrap_alpha(n: np.ndarray, loss: np.ndarray, form: str, n_boot: int,
                    seed: int = 0) -> tuple[float, float, int]:
    """Percentile CI of alpha resampling the points with replacement, every resample fitted in `form`;
    returns (lo, hi, number of resamples that could not be fitted in that form)."""
    rng = np.random.default_rng(seed)
    alphas, failed = [], 0
    for _ in range(n_boot):
        idx = rng.integers(0, len(n), len(n))
        fit = fit_power_law(n[idx], loss[idx], form)
        if fit is None:
            failed += 1
        else:
            alphas.append(fit["alpha"])
    if len(alphas) < MIN_BOOT_SHARE * n_boot:
        return float("nan"), float("nan"), failed
    return float(np.percentile(alphas, 2.5)), float(np.percentile(alphas, 97.5)), failed


def in_grid(sweep: pd.DataFrame, grid_lr: float) -> pd.Series:
    """Rows of the width x depth grid: models trained here at the grid lr (not the lr sweep's other models,
    the reference, the n-gram baselines or released checkpoints)."""
    return (~sweep.arch.isin(["reference", "ngram"]) & ~sweep.model_id.str.startswith("released--")
            & np.isclose(sweep.lr.astype(float), grid_lr))


def grid_points(sweep: pd.DataFrame, grid_lr: float) -> pd.DataFrame:
    """Validation loss of the grid models, one row per shape (mean over seeds)."""
    loss = sweep[(sweep.metric == "val_loss_nats") & in_grid(sweep, grid_lr)]
    return loss.groupby(["width", "depth", *PARAM_COLUMNS], as_index=False).agg(
        value=("value", "mean"), n_seeds=("seed", "nunique"))


def fit_table(sweep: pd.DataFrame, n_boot: int, grid_lr: float) -> pd.DataFrame:
    pts = grid_points(sweep, grid_lr)
    rows = []
    for col in PARAM_COLUMNS:
        n, y = pts[col].to_numpy(float), pts["value"].to_numpy(float)
        rho = float(pts[[col, "value"]].corr(method="spearman").iloc[0, 1]) if len(pts) >= 2 else float("nan")
        for form in FORMS:
            fit = fit_power_law(n, y, form) if len(pts) else None
            lo, hi, failed = bootstrap_alpha(n, y, form, n_boot) if fit else (float("nan"), float("nan"), n_boot)
            fit = fit or {"a": float("nan"), "alpha": float("nan"), "c": float("nan"), "r2": float("nan")}
            rows.append({"x": col, "form": form, **fit, "alpha_ci_low": lo, "alpha_ci_high": hi,
                         "n_boot": n_boot, "n_boot_failed": failed, "n_sizes": int(len(np.unique(n))),
                         "n_models": int(len(pts)), "spearman_rho": rho})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", nargs="+", required=True)
    ap.add_argument("--curves", nargs="+", required=True)
    ap.add_argument("--bootstrap", type=int, required=True)
    ap.add_argument("--grid-lr", type=float, required=True, help="learning rate of the sweep's grid models")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fit-out", required=True)
    ap.add_argument("--curves-out", required=True)
    args = ap.parse_args(argv)
    sweep = pd.concat([pd.read_csv(p) for p in args.evals], ignore_index=True)
    sweep["in_grid"] = in_grid(sweep, args.grid_lr)
    atomic_write_csv(sweep, args.out, allow_nan=["ci_low", "ci_high", "lr"])
    fit = fit_table(sweep, args.bootstrap, args.grid_lr)
    atomic_write_csv(fit, args.fit_out, allow_nan=["a", "alpha", "c", "alpha_ci_low", "alpha_ci_high", "r2",
                                                   "spearman_rho"])
    curves = pd.concat([pd.read_csv(p) for p in args.curves], ignore_index=True)
    atomic_write_csv(curves, args.curves_out, allow_nan=["val_loss_nats"])
    print(fit.to_string(index=False))


if __name__ == "__main__":
    main()
