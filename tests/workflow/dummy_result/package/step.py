"""CLI: python -m experiments.dummy_result.step --n N --out values.csv"""
import argparse

import pandas as pd

from experiments.files import atomic_write_csv


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    atomic_write_csv(pd.DataFrame({"i": range(args.n), "value": [1.0] * args.n}), args.out)


if __name__ == "__main__":
    main()
