"""Data scaling: fine-tuning tokens needed to reach the small-CE-cost target, per model size.

Input: CE tables of LN-free runs with different step budgets, each with its same-steps with-LN control
(evaluate --ce-only --control --tokens N, one per run; the main run's table included). Per (model, budget):
ΔCE vs the control, relative to the control's CE (as the small_ce_cost claim), and whether its CI upper bound
is below --target-rel-delta-ce (the claim's max_rel_delta_ce). Per model: tokens needed = the smallest budget
meeting the target, `censored` when no smaller budget tried missed it (then it is only an upper bound: the
target might be met with fewer tokens). This is the quantity comparable with the paper's ~0.37 (tokens used vs
parameters across GPT-2 S..XL, read from Baroni's configs); the slope across sizes is fitted by the claim.

Writes --out (model_id, params_non_embedding, tokens, reference, delta_ce_nats, ci_low, ci_high,
ce_control_nats, rel_delta_ce, rel_ci_high, target_rel, meets) and --fit-out (model_id, params_non_embedding,
tokens_to_target, censored, n_budgets).

CLI: python -m experiments.ln_removal.scaling --ce A.csv B.csv ... --target-rel-delta-ce 0.03 \
        --out scaling.csv --fit-out scaling_fit.csv
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.files import atomic_write_csv
from experiments.ln_removal.claims import tokens_to_target


def points(ce: pd.DataFrame, target_rel: float) -> pd.DataFrame:
    key = ["model_id", "tokens"]
    d = ce[(ce.metric == "delta_ce_vs_control_nats") & (ce.tokens > 0)]
    if d.empty:
        raise ValueError("no delta_ce_vs_control_nats rows with tokens > 0")
    ctrl = ce[(ce.metric == "ce_nats") & (ce.variant == "with_ln")][key + ["value"]].rename(
        columns={"value": "ce_control_nats"}).drop_duplicates(key)
    pts = d.rename(columns={"value": "delta_ce_nats"})[
        ["model_id", "params_non_embedding", "tokens", "delta_ce_nats", "ci_low", "ci_high"]]
    pts = pts.drop_duplicates(key).merge(ctrl, on=key, how="left", validate="one_to_one")
    if pts.ce_control_nats.isna().any():
        raise ValueError(f"control CE missing for {pts[pts.ce_control_nats.isna()][key].values.tolist()}")
    pts.insert(3, "reference", "control")
    pts["rel_delta_ce"] = pts.delta_ce_nats / pts.ce_control_nats
    pts["rel_ci_high"] = pts.ci_high / pts.ce_control_nats
    pts["target_rel"] = target_rel
    pts["meets"] = pts.rel_ci_high < target_rel
    return pts.sort_values(["params_non_embedding", "tokens"]).reset_index(drop=True)


def per_model(pts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for m, g in pts.groupby("model_id", sort=False):
        tokens, censored = tokens_to_target(g)
        rows.append(dict(model_id=m, params_non_embedding=int(g.params_non_embedding.iloc[0]),
                         tokens_to_target=tokens, censored=censored, n_budgets=len(g)))
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ce", nargs="+", required=True)
    ap.add_argument("--target-rel-delta-ce", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fit-out", required=True)
    args = ap.parse_args(argv)
    pts = points(pd.concat([pd.read_csv(p) for p in args.ce], ignore_index=True), args.target_rel_delta_ce)
    fits = per_model(pts)
    atomic_write_csv(pts, args.out)
    atomic_write_csv(fits, args.fit_out, allow_nan=["tokens_to_target"])
    print(pts.to_string(index=False))
    print(fits.to_string(index=False))


if __name__ == "__main__":
    main()
