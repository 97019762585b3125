"""Collect each result's claims CSV into results/claims.csv and its sanity checks into results/sanity_checks.csv
(validated: columns, verdicts, no duplicates).

CLI: python -m experiments.report.collect --claims results/*/claims.csv --sanity results/*/sanity.csv \
        --out results/claims.csv --out-sanity results/sanity_checks.csv
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.files import atomic_write_csv
from experiments.report.claims import SANITY_COLUMNS, read_table, validate_sanity, validate_table


def collect(paths: list[str]) -> pd.DataFrame:
    frames = [validate_table(read_table(p), p) for p in paths]
    return validate_table(pd.concat(frames, ignore_index=True), "all claims")


def collect_sanity(paths: list[str]) -> pd.DataFrame:
    frames = [validate_sanity(read_table(p), p) for p in paths]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=SANITY_COLUMNS)
    return validate_sanity(pd.concat(frames, ignore_index=True), "all sanity checks")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", nargs="+", required=True)
    ap.add_argument("--sanity", nargs="*", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--out-sanity", required=True)
    args = ap.parse_args(argv)
    df = collect(args.claims)
    atomic_write_csv(df, args.out, allow_nan=["our_value", "ci_low", "ci_high", "n"])
    sanity = collect_sanity(args.sanity)
    atomic_write_csv(sanity, args.out_sanity, allow_nan=["value"])
    print(df.groupby(["result", "verdict"]).size().to_string())
    if len(sanity):
        print(f"sanity checks: {int(sanity['passed'].astype(bool).sum())}/{len(sanity)} passed")


if __name__ == "__main__":
    main()
