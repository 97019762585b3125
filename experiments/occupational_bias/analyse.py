"""Occupational-bias analysis of extracted completions: diversity, logistic regressions, US labour comparison.

Writes (atomically), each to its --out-<name> path (name = the file's stem, `_` as `-`):
  diversity.csv           diversity.diversity_table: N50/N90, Gini (faithful + clean), counts, bootstrap CIs
  regressions.csv         regress.run_regressions: one row per model x variant x intersection x job x
                          logit (a/b/c) x term
  regression_summary.csv  regress.summarise_regressions: % significant per term, mean delta pseudo-R2 x100
  gender_tests.csv        regress.gender_tests: the woman term once per job (base prompts only)
  labour.csv              labour.labour_predictions: per model x variant x labour job, US vs predicted %
  labour_summary.csv      labour.labour_summary, CIs from labour.labour_bootstrap (completions resampled
                          within each prompt) (+ labour.paper_self_check rows, model_id
                          "paper_gpt2_notes_table", variant "paper")

CLI:
    python -m experiments.occupational_bias.analyse --completions A.csv [B.csv ...] --out-diversity D.csv \
        --out-regressions R.csv --out-regression-summary S.csv --out-gender-tests G.csv --out-labour L.csv \
        --out-labour-summary LS.csv
        [--threshold-share 0.0025] [--threshold-basis intersection_only|regression_data] [--alpha 0.05]
        [--min-labour-mentions 210] [--min-base-mentions 30] [--women-share 0.47]
        [--race-shares asian=0.065,black=0.123,...] [--bootstrap 1000] [--seed 0] [--labour-table ...]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv
from experiments.occupational_bias.diversity import diversity_table
from experiments.occupational_bias.frequency import read_completions
from experiments.occupational_bias.labour import (
    DEFAULT_RACE_SHARES,
    DEFAULT_WOMEN_SHARE,
    labour_bootstrap,
    labour_predictions,
    labour_summary,
    load_labour_table,
    paper_self_check,
)
from experiments.occupational_bias.regress import THRESHOLD_BASES, gender_tests, run_regressions, summarise_regressions

OUTPUTS = ["diversity", "regressions", "regression_summary", "gender_tests", "labour", "labour_summary"]

# Columns that may hold NaN, and why (atomic_write_csv refuses NaN anywhere else).
NAN_OK = {
    "diversity.csv": ["ci_low", "ci_high"],  # counts are not bootstrapped; no CI when --bootstrap 0
    # failed fits keep their row with NaN estimates (status says why); se/z/p are NaN/inf when the
    # information matrix is singular at a separated solution
    "regressions.csv": ["coef", "se", "z", "pvalue", "prsquared", "llf", "llnull"],
    "regression_summary.csv": ["value"],  # no usable fit for that term (n_used = 0)
    "gender_tests.csv": ["coef", "se", "z", "pvalue", "pvalue_lr"],  # as regressions.csv
    # labour.csv: the pred_* columns and delta_women_pp (listed at write time): a share is undefined for a
    # job that no prompt of the cells it is computed from mentioned (then included = False)
    "labour_summary.csv": ["ci_low", "ci_high"],  # n_low / n_high are not bootstrapped; --bootstrap 0
}


def parse_race_shares(text: str | None) -> dict[str, float]:
    shares = dict(DEFAULT_RACE_SHARES)
    if text:
        for part in text.split(","):
            k, v = part.split("=")
            if k.strip() not in shares:
                raise ValueError(f"unknown race {k!r}: one of {sorted(shares)}")
            shares[k.strip()] = float(v)
    return shares


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--completions", nargs="+", required=True, help="completions CSV(s), one per model")
    add_output_args(ap, OUTPUTS)
    ap.add_argument("--threshold-share", type=float, default=0.0025,
                    help="a job enters a regression with mentions >= this share of the data's completions")
    ap.add_argument("--threshold-basis", default="intersection_only", choices=THRESHOLD_BASES,
                    help="count a job's mentions and the completions on the intersection's own prompts (paper)")
    ap.add_argument("--alpha", type=float, default=0.05, help="Wald test level for 'significant'")
    ap.add_argument("--min-labour-mentions", type=float, default=210,
                    help="labour jobs need this many mentions over base + ethnicity prompts")
    ap.add_argument("--min-base-mentions", type=float, default=0,
                    help="labour jobs need this many mentions over the two base prompts (their women share)")
    ap.add_argument("--women-share", type=float, default=DEFAULT_WOMEN_SHARE, help="P(woman) in the workforce")
    ap.add_argument("--race-shares", default=None, help="e.g. asian=0.065,black=0.123,hispanic=0.176,white=0.78")
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (0: no CIs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labour-table", default=None, help="default: the package's data/us_labour_2019.csv")
    args = ap.parse_args(argv)
    if not 0 < args.threshold_share < 1 or not 0 < args.alpha < 1 or not 0 < args.women_share < 1:
        ap.error("--threshold-share, --alpha and --women-share must lie in (0, 1)")
    if args.bootstrap < 0:
        ap.error("--bootstrap must be >= 0")
    out = output_paths(args, OUTPUTS)
    t0 = time.perf_counter()
    df = read_completions(args.completions)
    print(f"{len(df)} completions of {df['model_id'].nunique()} model(s) "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)

    t = time.perf_counter()
    div = diversity_table(df, n_boot=args.bootstrap, seed=args.seed)
    atomic_write_csv(div, out["diversity"], allow_nan=NAN_OK["diversity.csv"])
    print(f"diversity.csv: {len(div)} rows ({time.perf_counter() - t:.1f} s)", flush=True)

    t = time.perf_counter()
    reg = run_regressions(df, threshold_share=args.threshold_share, alpha=args.alpha,
                          threshold_basis=args.threshold_basis, progress=True)
    summary = summarise_regressions(reg)
    gender = gender_tests(df, threshold_share=args.threshold_share, alpha=args.alpha)
    atomic_write_csv(reg, out["regressions"], allow_nan=NAN_OK["regressions.csv"])
    atomic_write_csv(summary, out["regression_summary"], allow_nan=NAN_OK["regression_summary.csv"])
    atomic_write_csv(gender, out["gender_tests"], allow_nan=NAN_OK["gender_tests.csv"])
    fits = reg.drop_duplicates(["model_id", "variant", "intersection", "job", "model"])
    print(f"regressions.csv: {len(fits)} fits, {int((fits['status'] != 'ok').sum())} failed, "
          f"{int(fits['separated'].sum())} separated ({time.perf_counter() - t:.1f} s)", flush=True)

    t = time.perf_counter()
    table = load_labour_table(args.labour_table)
    lab = labour_predictions(df, table, women_share=args.women_share, race_shares=parse_race_shares(args.race_shares),
                             min_mentions=args.min_labour_mentions, min_base_mentions=args.min_base_mentions)
    pred_cols = [c for c in lab.columns if c.startswith("pred_") or c == "delta_women_pp"]
    atomic_write_csv(lab, out["labour"], allow_nan=pred_cols)
    boot = labour_bootstrap(df, table, women_share=args.women_share, race_shares=parse_race_shares(args.race_shares),
                            n_boot=args.bootstrap, seed=args.seed) if args.bootstrap else None
    lsum = pd.concat([labour_summary(lab, boot), paper_self_check(table)], ignore_index=True)
    atomic_write_csv(lsum, out["labour_summary"], allow_nan=NAN_OK["labour_summary.csv"])
    n_inc = lab.groupby(["model_id", "variant"])["included"].sum().to_dict() if len(lab) else {}
    print(f"labour.csv: {len(lab)} rows, included jobs per model x variant: {n_inc}; "
          f"labour_summary.csv: {len(lsum)} rows ({time.perf_counter() - t:.1f} s)", flush=True)
    print(f"total {time.perf_counter() - t0:.1f} s -> {out['diversity'].parent}")


if __name__ == "__main__":
    main()
