"""Concatenate the per-run tables (one model x format each) into results/anchored_bias/<kind>.csv.

    python -m experiments.anchored_bias.collect --runs DIR... --out-summary s.csv --out-predictions p.csv ...
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv

KINDS = ["summary", "predictions", "layers", "neurons", "heads", "meta"]
NAN_OK = {"summary": ["accuracy", "anchored_rate", "accuracy_gold_A", "pred_A_share", "lam2"],
          "predictions": [f"logit_{x}" for x in "ABCDE"], "meta": None, "layers": [], "neurons": [], "heads": []}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True)
    add_output_args(ap, KINDS)
    args = ap.parse_args(argv)
    out = output_paths(args, KINDS)
    for kind in KINDS:
        frames = [pd.read_csv(Path(r) / f"{kind}.csv") for r in args.runs]
        frames = [f for f in frames if len(f)]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        nan_ok = list(df.columns) if NAN_OK[kind] is None else NAN_OK[kind]
        atomic_write_csv(df, out[kind], allow_nan=nan_ok)
    print(f"collected {len(args.runs)} runs -> {out['summary'].parent}")


if __name__ == "__main__":
    main()
