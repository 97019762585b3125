"""Draw one figure of one result: the manifest names the plot function; it reads only its input CSVs.

CLI: python -m experiments.report.plot --result tinystories --figure loss_vs_params \
        --inp results/tinystories/sweep.csv results/tinystories/power_law.csv \
        --out results/figures/tinystories__loss_vs_params.png
(the PDF is written beside the PNG).
"""
from __future__ import annotations

import argparse

from experiments.manifest import load_manifest, resolve


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", required=True)
    ap.add_argument("--figure", required=True)
    ap.add_argument("--inp", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    figure = load_manifest(args.result).figure(args.figure)
    resolve(figure.plot)(args.inp, args.out)
    print(f"figure -> {args.out}")


if __name__ == "__main__":
    main()
