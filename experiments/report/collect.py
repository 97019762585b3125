"""Collect each result's claims CSV into results/claims.csv (validated: columns, verdicts, no duplicates).

CLI: python -m experiments.report.collect --claims results/*/claims.csv --out results/claims.csv
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.files import atomic_write_csv
from experiments.report.claims import validate_table


def collect(paths: list[str]) -> pd.DataFrame:
    frames = [validate_table(pd.read_csv(p, keep_default_na=False, na_values=[""]), p) for p in paths]
    return validate_table(pd.concat(frames, ignore_index=True), "all claims")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    df = collect(args.claims)
    atomic_write_csv(df, args.out, allow_nan=["our_value", "ci_low", "ci_high"])
    print(df.groupby(["result", "verdict"]).size().to_string())


if __name__ == "__main__":
    main()
