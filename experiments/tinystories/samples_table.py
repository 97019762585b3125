"""Gather the sampled continuations of every model into one table for the report and the samples figure.

CLI: python -m experiments.tinystories.samples_table --samples samples/*.jsonl --out samples.csv
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.files import atomic_write_csv

KEEP_PROMPTS = 5  # first prompts of each model, enough to read, small enough to open


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    frames = [pd.read_json(p, lines=True) for p in args.samples]
    df = pd.concat(frames, ignore_index=True)
    df = df[df.prompt_index < df.prompt_index.min() + KEEP_PROMPTS]
    atomic_write_csv(df, args.out, allow_nan=list(df.columns))
    print(f"{len(df)} samples -> {args.out}")


if __name__ == "__main__":
    main()
