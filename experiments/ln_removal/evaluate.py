"""Evaluate one LN-removal run: CE of original / LN-free / control, DLA exactness, confidence neurons.

Held-out blocks: the LAST --n-blocks non-overlapping blocks of --block-size tokens of the validation stream
(train() monitors on the first ones). CIs are 95% percentile bootstraps over blocks; ΔCE uses paired block
differences (same blocks under both models). Per-block median and 99th percentile of the CE are reported
too (Baroni et al.: the XL LN-free mean blew up on rare tokens).

Writes (long format):
  --out-ce       model_id, variant, metric in {ce_nats, ce_block_median_nats, ce_block_p99_nats,
                 delta_ce_vs_control_nats, delta_ce_vs_original_nats}, value, ci_low, ci_high, n
  --out-dla      model_id, variant, component, metric in {max_abs_sum_error, nmae_dla_vs_de, mean_abs_de}, value
  --out-neurons  model_id, variant, neuron, metric in {mean_abs_dentropy_total, mean_abs_dentropy_direct,
                 mean_abs_dentropy_via_norm (= mean |dH_total - dH_direct|), ln_mediated_share (= via_norm /
                 total), mean_abs_dloss_total, w_out_norm, null_share}, value, ci_low, ci_high
                 (neurons are picked once, in the original model, and the same indices ablated in every variant)
With --ce-only only --out-ce is written and --control may be omitted (data-scaling runs).

CLI: python -m experiments.ln_removal.evaluate --model-id w128_l2_s0 --original dir:BASE --ln-free dir:FREE \
        --control dir:CTRL --val val.npy --block-size 256 --n-blocks 64 --dla-blocks 4 --n-neurons 3 \
        --bootstrap 1000 --out-ce ce.csv --out-dla dla.csv --out-neurons neurons.csv
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from experiments.data.tokens import eval_blocks
from experiments.files import atomic_write_csv
from experiments.lm.build import count_params
from experiments.lm.devices import pick_device
from experiments.lm.load import load_model
from experiments.lm.score import block_losses
from experiments.stats import bootstrap_ci
from experiments.ln_removal.analysis import ablate_neurons, dla_check, pick_entropy_neurons

NAN = float("nan")


def ce_rows(model_id: str, losses: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    rows = []
    for variant, x in losses.items():
        lo, hi = bootstrap_ci(x, n_boot=n_boot)
        rows.append(dict(model_id=model_id, variant=variant, metric="ce_nats", value=float(x.mean()), ci_low=lo,
                         ci_high=hi, n=len(x)))
        for metric, stat in (("ce_block_median_nats", np.median), ("ce_block_p99_nats",
                                                                    lambda a, axis=None: np.quantile(a, 0.99, axis=axis))):
            lo, hi = bootstrap_ci(x, n_boot=n_boot, stat=stat)
            rows.append(dict(model_id=model_id, variant=variant, metric=metric, value=float(stat(x)), ci_low=lo,
                             ci_high=hi, n=len(x)))
    for ref, metric in (("with_ln", "delta_ce_vs_control_nats"), ("original", "delta_ce_vs_original_nats")):
        if ref in losses and "ln_free" in losses:
            d = losses["ln_free"] - losses[ref]
            lo, hi = bootstrap_ci(d, n_boot=n_boot)
            rows.append(dict(model_id=model_id, variant="ln_free", metric=metric, value=float(d.mean()), ci_low=lo,
                             ci_high=hi, n=len(d)))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--original", required=True)
    ap.add_argument("--ln-free", required=True)
    ap.add_argument("--control", default=None)
    ap.add_argument("--val", required=True)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--n-blocks", type=int, default=64)
    ap.add_argument("--dla-blocks", type=int, default=4)
    ap.add_argument("--n-neurons", type=int, default=3)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--tokens", type=int, default=None, help="fine-tuning tokens of the LN-free run (a column)")
    ap.add_argument("--ce-only", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out-ce", required=True)
    ap.add_argument("--out-dla", default=None)
    ap.add_argument("--out-neurons", default=None)
    args = ap.parse_args(argv)
    if not args.ce_only and not (args.control and args.out_dla and args.out_neurons):
        ap.error("without --ce-only, --control, --out-dla and --out-neurons are required")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    val = np.load(args.val, mmap_mode="r")
    blocks = eval_blocks(val, args.block_size, args.n_blocks, from_end=True)
    specs = {"original": args.original, "ln_free": args.ln_free}
    if args.control:
        specs["with_ln"] = args.control
    models = {v: load_model(s, device=device)[0] for v, s in specs.items()}
    losses = {v: block_losses(m, blocks) for v, m in models.items()}
    ce = pd.DataFrame(ce_rows(args.model_id, losses, args.bootstrap))
    ce["tokens"] = args.tokens if args.tokens is not None else -1
    n = count_params(models["original"])
    ce["params_total"], ce["params_non_embedding"] = n["params_total"], n["params_non_embedding"]
    ce["n_layers"] = models["original"].config.n_layer
    ce["d_model"] = models["original"].config.n_embd
    atomic_write_csv(ce, args.out_ce, allow_nan=["ci_low", "ci_high"])
    print(ce[["variant", "metric", "value", "ci_low", "ci_high"]].to_string(index=False))
    if args.ce_only:
        return

    ids = blocks[: args.dla_blocks].to(device)  # float64 copies of each model on `device`
    dla = []
    for variant, m in models.items():
        err, comp = dla_check(m, ids)
        dla.append(dict(model_id=args.model_id, variant=variant, component="all", metric="max_abs_sum_error",
                        value=err))
        for r in comp:
            for metric in ("nmae_dla_vs_de", "mean_abs_de"):
                dla.append(dict(model_id=args.model_id, variant=variant, component=r["component"], metric=metric,
                                value=r[metric]))
    dla = pd.DataFrame(dla)
    atomic_write_csv(dla, args.out_dla, allow_nan=["value"])
    print(dla[dla.metric == "max_abs_sum_error"].to_string(index=False))

    picked = pick_entropy_neurons(models["original"], k=args.n_neurons)  # same indices in every variant
    rows = []
    for variant, m in models.items():
        for p, r in zip(picked, ablate_neurons(m, ids, [p["neuron"] for p in picked])):
            base = dict(model_id=args.model_id, variant=variant, neuron=r["neuron"])
            tot, dirc, via_ln = r["_per_token_total"], r["_per_token_direct"], r["_per_token_ln"]
            for metric, x in (("mean_abs_dentropy_total", tot), ("mean_abs_dentropy_direct", dirc),
                              ("mean_abs_dentropy_via_norm", via_ln)):
                lo, hi = bootstrap_ci(x, n_boot=args.bootstrap)
                rows.append({**base, "metric": metric, "value": float(x.mean()), "ci_low": lo, "ci_high": hi})
            share = float(via_ln.mean() / max(tot.mean(), 1e-30))
            rows.append({**base, "metric": "ln_mediated_share", "value": share, "ci_low": NAN, "ci_high": NAN})
            rows.append({**base, "metric": "mean_abs_dloss_total", "value": r["mean_abs_dloss_total"],
                         "ci_low": NAN, "ci_high": NAN})
            for key in ("w_out_norm", "null_share"):
                rows.append({**base, "metric": key, "value": p[key] if variant == "original" else NAN,
                             "ci_low": NAN, "ci_high": NAN})
    neurons = pd.DataFrame(rows)
    atomic_write_csv(neurons, args.out_neurons, allow_nan=["value", "ci_low", "ci_high"])
    print(neurons[neurons.metric.isin(["mean_abs_dentropy_total", "ln_mediated_share"])].to_string(index=False))


if __name__ == "__main__":
    main()
