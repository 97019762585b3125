"""Combine per-model evaluations into the sweep table and fit loss against parameters.

Fit: L(N) = a * N^(-alpha) + c (irreducible loss c >= 0), the form of the scaling-law literature,
by least squares in log-loss space; alpha's CI by bootstrap over models. With fewer than 4 models,
or when the 3-parameter fit fails, a pure power law (c = 0, a straight line in log-log) is fitted
and the `form` column says so.

CLI:
    python -m experiments.tinystories.aggregate --evals eval/*.csv --curves loss_curves/*.csv \
        --out sweep.csv --fit-out power_law.csv --curves-out loss_curves.csv
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from scipy.optimize import curve_fit

from experiments.files import atomic_write_csv

PARAM_COLUMNS = ("params_non_embedding", "params_total")


def _saturating(logn: np.ndarray, log_a: float, alpha: float, c: float) -> np.ndarray:
    return np.log(np.exp(log_a - alpha * logn) + c)


def fit_power_law(n: np.ndarray, loss: np.ndarray) -> dict:
    """Fit loss = a N^-alpha (+ c). Returns a, alpha, c, form, r2 (in log-loss space)."""
    logn, logl = np.log(n), np.log(loss)
    slope, intercept = np.polyfit(logn, logl, 1)
    fit = {"a": float(np.exp(intercept)), "alpha": float(-slope), "c": 0.0, "form": "a*N^-alpha"}
    pred = intercept + slope * logn
    if len(n) >= 4:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p0 = (intercept, max(-slope, 0.05), 0.5 * float(loss.min()))
                popt, _ = curve_fit(_saturating, logn, logl, p0=p0, bounds=([-50, 0, 0], [50, 5, float(loss.min())]),
                                    maxfev=20000)
            fit = {"a": float(np.exp(popt[0])), "alpha": float(popt[1]), "c": float(popt[2]),
                   "form": "a*N^-alpha+c"}
            pred = _saturating(logn, *popt)
        except (RuntimeError, ValueError):
            pass
    ss_res = float(((logl - pred) ** 2).sum())
    ss_tot = float(((logl - logl.mean()) ** 2).sum())
    fit["r2"] = 1 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return fit


def bootstrap_alpha(n: np.ndarray, loss: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of alpha, resampling models with replacement (needs >= 3 distinct sizes)."""
    rng = np.random.default_rng(seed)
    alphas = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(n), len(n))
        if len(np.unique(n[idx])) < 3:
            continue
        alphas.append(fit_power_law(n[idx], loss[idx])["alpha"])
    if len(alphas) < n_boot // 10:
        return float("nan"), float("nan")
    return float(np.percentile(alphas, 2.5)), float(np.percentile(alphas, 97.5))


def fit_table(sweep: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    loss = sweep[(sweep.metric == "val_loss_nats") & (sweep.arch != "reference")
                 & ~sweep.model_id.str.startswith("released--")]
    rows = []
    for col in PARAM_COLUMNS:
        if len(loss) < 2:
            continue
        n, y = loss[col].to_numpy(float), loss["value"].to_numpy(float)
        fit = fit_power_law(n, y)
        lo, hi = bootstrap_alpha(n, y, n_boot) if len(loss) >= 3 else (float("nan"), float("nan"))
        rows.append({"x": col, **fit, "alpha_ci_low": lo, "alpha_ci_high": hi, "n_models": len(loss),
                     "spearman_rho": float(loss[[col, "value"]].corr(method="spearman").iloc[0, 1])})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", nargs="+", required=True)
    ap.add_argument("--curves", nargs="+", required=True)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fit-out", required=True)
    ap.add_argument("--curves-out", required=True)
    args = ap.parse_args(argv)
    sweep = pd.concat([pd.read_csv(p) for p in args.evals], ignore_index=True)
    atomic_write_csv(sweep, args.out, allow_nan=["ci_low", "ci_high"])
    fit = fit_table(sweep, args.bootstrap)
    atomic_write_csv(fit, args.fit_out, allow_nan=["alpha_ci_low", "alpha_ci_high", "r2", "spearman_rho"])
    curves = pd.concat([pd.read_csv(p) for p in args.curves], ignore_index=True)
    atomic_write_csv(curves, args.curves_out, allow_nan=["val_loss_nats"])
    print(fit.to_string(index=False))


if __name__ == "__main__":
    main()
