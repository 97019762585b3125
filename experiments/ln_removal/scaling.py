"""Data scaling (exploratory): ΔCE of the LN-free model vs fine-tuning tokens, per model size, log-log fit.

Input: CE tables of LN-free runs with different step budgets (evaluate --ce-only --control --tokens N, one per
run; the main run's table may be included). ΔCE is against the with-LN control fine-tuned for the same number
of steps (--reference control, default): the sweep's base models are not trained to convergence, so fine-tuning
alone lowers CE and ΔCE vs the original would mostly measure that. --reference original is the cheap variant.
Per model: slope of log(ΔCE) on log(tokens) over budgets with ΔCE > 0 (NaN slope with fewer than 2 such
points). The paper-side number (~0.37, tokens used vs parameters across GPT-2 S..XL) is a different quantity
read from configs [I]; this fit is labelled exploratory.

Writes --out (model_id, params_non_embedding, tokens, reference, delta_ce_nats, ci_low, ci_high) and
--fit-out (model_id, params_non_embedding, slope, intercept, n_points).

CLI: python -m experiments.ln_removal.scaling --ce A.csv B.csv ... [--reference control] --out scaling.csv \
        --fit-out scaling_fit.csv
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from experiments.files import atomic_write_csv


def fit(points: pd.DataFrame) -> dict:
    pos = points[points["delta_ce_nats"] > 0]
    if len(pos) < 2 or pos["tokens"].nunique() < 2:
        return dict(slope=float("nan"), intercept=float("nan"), n_points=len(pos))
    slope, intercept = np.polyfit(np.log(pos["tokens"]), np.log(pos["delta_ce_nats"]), 1)
    return dict(slope=float(slope), intercept=float(intercept), n_points=len(pos))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ce", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fit-out", required=True)
    ap.add_argument("--reference", choices=["control", "original"], default="control")
    args = ap.parse_args(argv)
    ce = pd.concat([pd.read_csv(p) for p in args.ce], ignore_index=True)
    d = ce[(ce.metric == f"delta_ce_vs_{args.reference}_nats") & (ce.tokens > 0)]
    if d.empty:
        raise ValueError(f"no delta_ce_vs_{args.reference}_nats rows with tokens > 0 in {args.ce}")
    pts = d.rename(columns={"value": "delta_ce_nats"})[
        ["model_id", "params_non_embedding", "tokens", "delta_ce_nats", "ci_low", "ci_high"]]
    pts.insert(3, "reference", args.reference)
    pts = pts.drop_duplicates(["model_id", "tokens"]).sort_values(["params_non_embedding", "tokens"])
    fits = [dict(model_id=m, params_non_embedding=int(g["params_non_embedding"].iloc[0]), **fit(g))
            for m, g in pts.groupby("model_id", sort=False)]
    atomic_write_csv(pts, args.out)
    atomic_write_csv(pd.DataFrame(fits), args.fit_out, allow_nan=["slope", "intercept"])
    print(pts.to_string(index=False))
    print(pd.DataFrame(fits).to_string(index=False))


if __name__ == "__main__":
    main()
