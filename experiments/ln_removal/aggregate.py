"""Collect the per-model LN-removal outputs into one CSV per measurement.

    curves.csv   loss curves of every run (ln_free and with_ln), with `event` naming the removal event(s)
                 fired before that step (empty otherwise): the figure draws stage lines from it
    ce.csv, dla.csv, neurons.csv    the per-model evaluation tables concatenated
    converge.csv the rounds that brought each base to its plateau before removal (converge.py), one row per
                 model and round; no rows when the bases are used as they are (converge.max_rounds = 0)

CLI: python -m experiments.ln_removal.aggregate --curves C1.csv ... --events E1.csv ... --ce ... --dla ...
        --neurons ... [--converge R1.csv ...] --out-curves curves.csv --out-ce ce.csv --out-dla dla.csv
        --out-neurons neurons.csv --out-converge converge.csv
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv

OUTPUTS = ["curves", "ce", "dla", "neurons", "converge"]
# one row of converge.py's rounds table; defined here (converge.py imports it) so that this step needs no torch
ROUND_COLUMNS = ["model_id", "round", "steps", "val_ce_before", "val_ce_after", "rel_gain", "tol", "converged",
                 "seconds"]


def merge_curves(curves: list[pd.DataFrame], events: list[pd.DataFrame]) -> pd.DataFrame:
    ev = pd.concat(events, ignore_index=True) if events else pd.DataFrame()
    out = []
    for c in curves:
        c = c.copy()
        c["event"] = ""
        if c["mode"].iloc[0] == "ln_free" and len(ev):
            mine = ev[(ev.model_id == c["model_id"].iloc[0])]
            # event at step s fires before optimisation step s, whose row is step s + 1
            names = mine.groupby("step")["event"].agg(" ".join)
            c["event"] = [names.get(s - 1, "") for s in c["step"]]
        out.append(c)
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curves", nargs="+", required=True)
    ap.add_argument("--events", nargs="*", default=[])
    ap.add_argument("--ce", nargs="+", required=True)
    ap.add_argument("--dla", nargs="+", required=True)
    ap.add_argument("--neurons", nargs="+", required=True)
    ap.add_argument("--converge", nargs="*", default=[])
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    out = output_paths(args, OUTPUTS)
    events = [e for e in (pd.read_csv(p) for p in args.events) if len(e)]
    curves = merge_curves([pd.read_csv(p) for p in args.curves], events)
    atomic_write_csv(curves, out["curves"], allow_nan=["val_loss_nats"])
    for name, paths in (("ce", args.ce), ("dla", args.dla), ("neurons", args.neurons)):
        df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
        atomic_write_csv(df, out[name], allow_nan=["value", "ci_low", "ci_high"])
    conv = [pd.read_csv(p) for p in args.converge]
    atomic_write_csv(pd.concat(conv, ignore_index=True) if conv else pd.DataFrame(columns=ROUND_COLUMNS),
                     out["converge"])
    print(f"wrote {out['curves']} ({len(curves)} rows), {out['ce']}, {out['dla']}, {out['neurons']}")


if __name__ == "__main__":
    main()
