"""Evaluate one LN-removal run: CE of original / LN-free / control, DLA exactness, confidence neurons.

Held-out blocks: the LAST --n-blocks non-overlapping blocks of --block-size tokens of the validation stream
(train() monitors on the first ones). CIs are 95% percentile bootstraps over blocks; ΔCE uses paired block
differences (same blocks under both models). Per-block median and 99th percentile of the CE are reported
too (Baroni et al.: the XL LN-free mean blew up on rare tokens).

Writes (long format):
  --out-ce       model_id, variant, metric in {ce_nats, ce_block_median_nats, ce_block_p99_nats,
                 delta_ce_vs_control_nats, delta_ce_vs_original_nats}, value, ci_low, ci_high, n
  --out-dla      model_id, variant, component, metric in {max_abs_sum_error, residual_reconstruction_error
                 (component "all": sanity checks), nmae_dla_vs_de, mean_abs_de (per component; component
                 "mean_over_components": the mean NMAE with a CI resampling the --dla-blocks blocks)}, value,
                 ci_low, ci_high, n (blocks)
  --out-neurons  model_id, variant, neuron, metric in {mean_abs_dentropy_total, mean_abs_dentropy_direct,
                 mean_abs_dentropy_via_norm (= mean |dH_total - dH_direct|), ln_mediated_share (= via_norm /
                 total), mean_abs_dloss_total, w_out_norm, null_share}, value, ci_low, ci_high, n; neuron -1
                 pools the picked neurons: amplification_total_over_direct (per variant), ln_mediated_share,
                 and for ln_free total_ratio_vs_control / total_ratio_vs_original (CIs resample blocks)
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
from experiments.ln_removal.analysis import (
    ablate_neurons,
    dla_check,
    mean_component_nmae,
    pick_entropy_neurons,
    pooled_ratio,
)
from experiments.stats import bootstrap_ci

NAN = float("nan")


def ce_rows(model_id: str, losses: dict[str, np.ndarray], n_boot: int) -> list[dict]:
    rows = []
    for variant, x in losses.items():
        lo, hi = bootstrap_ci(x, n_boot=n_boot)
        rows.append(dict(model_id=model_id, variant=variant, metric="ce_nats", value=float(x.mean()), ci_low=lo,
                         ci_high=hi, n=len(x)))
        def p99(a, axis=None):
            return np.quantile(a, 0.99, axis=axis)

        for metric, stat in (("ce_block_median_nats", np.median), ("ce_block_p99_nats", p99)):
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
    dla = pd.DataFrame([r for variant, m in models.items()
                        for r in dla_rows(args.model_id, variant, dla_check(m, ids), args.bootstrap)])
    atomic_write_csv(dla, args.out_dla, allow_nan=["value", "ci_low", "ci_high"])
    print(dla[dla.component.isin(["all", MEAN_COMPONENT])].to_string(index=False))

    picked = pick_entropy_neurons(models["original"], k=args.n_neurons)  # same indices in every variant
    ablated = {variant: ablate_neurons(m, ids, [p["neuron"] for p in picked]) for variant, m in models.items()}
    neurons = pd.DataFrame(neuron_rows(args.model_id, picked, ablated, args.bootstrap))
    atomic_write_csv(neurons, args.out_neurons, allow_nan=["value", "ci_low", "ci_high"])
    print(neurons[neurons.neuron == POOLED].to_string(index=False))


MEAN_COMPONENT = "mean_over_components"
POOLED = -1  # neuron id of the rows that pool the picked neurons


def dla_rows(model_id: str, variant: str, res, n_boot: int) -> list[dict]:
    """dla.csv rows of one model variant: the identity and cache checks (sanity), per-component NMAE and
    mean |DE|, and the mean over components of the NMAE with a CI that resamples blocks."""
    base = dict(model_id=model_id, variant=variant)
    rows = [dict(base, component="all", metric="max_abs_sum_error", value=res.max_abs_sum_error),
            dict(base, component="all", metric="residual_reconstruction_error", value=res.reconstruction_error)]
    for r in res.rows():
        rows += [dict(base, component=r["component"], metric=k, value=r[k]) for k in ("nmae_dla_vs_de", "mean_abs_de")]

    def stat(idx, axis=None):
        idx = np.asarray(idx).astype(int)
        return mean_component_nmae(res.err_sum[idx], res.de_sum[idx])

    n = len(res.err_sum)
    lo, hi = bootstrap_ci(np.arange(n), n_boot=n_boot, stat=stat) if n > 1 else (NAN, NAN)
    rows.append(dict(base, component=MEAN_COMPONENT, metric="nmae_dla_vs_de",
                     value=float(mean_component_nmae(res.err_sum, res.de_sum)), ci_low=lo, ci_high=hi, n=n))
    return [{"ci_low": NAN, "ci_high": NAN, "n": n, **r} for r in rows]


def neuron_rows(model_id: str, picked: list[dict], ablated: dict[str, list[dict]], n_boot: int) -> list[dict]:
    """neurons.csv rows: per neuron and variant the mean |dH| total / direct / via the norm (CIs over block
    means), the via-norm share and |dloss|; pooled over the picked neurons (neuron = -1) the amplification
    sum |dH_total| / sum |dH_direct| per variant, and for the LN-free model its total effect relative to the
    control's and the original's (same blocks: paired), CIs resampling blocks."""
    rows = []
    for variant, res in ablated.items():
        for p, r in zip(picked, res):
            base = dict(model_id=model_id, variant=variant, neuron=r["neuron"])
            for metric, key in (("mean_abs_dentropy_total", "total"), ("mean_abs_dentropy_direct", "direct"),
                                ("mean_abs_dentropy_via_norm", "via_norm")):
                per_block = r[key].mean(1)
                lo, hi = bootstrap_ci(per_block, n_boot=n_boot) if len(per_block) > 1 else (NAN, NAN)
                rows.append({**base, "metric": metric, "value": float(r[key].mean()), "ci_low": lo, "ci_high": hi})
            share = float(r["via_norm"].sum() / max(r["total"].sum(), 1e-300))
            rows.append({**base, "metric": "ln_mediated_share", "value": share})
            rows.append({**base, "metric": "mean_abs_dloss_total", "value": float(r["dloss"][:, :-1].mean())})
            for key in ("w_out_norm", "null_share"):
                rows.append({**base, "metric": key, "value": p[key] if variant == "original" else NAN})
    stack = {v: {k: np.stack([r[k] for r in res]) for k in ("total", "direct", "via_norm")}
             for v, res in ablated.items()}
    pooled = dict(model_id=model_id, neuron=POOLED)
    for variant, a in stack.items():
        value, (lo, hi), n = pooled_ratio(a["total"], a["direct"], n_boot)
        rows.append({**pooled, "variant": variant, "metric": "amplification_total_over_direct", "value": value,
                     "ci_low": lo, "ci_high": hi, "n": n})
        value, (lo, hi), n = pooled_ratio(a["via_norm"], a["total"], n_boot)
        rows.append({**pooled, "variant": variant, "metric": "ln_mediated_share", "value": value, "ci_low": lo,
                     "ci_high": hi, "n": n})
    for ref, metric in (("with_ln", "total_ratio_vs_control"), ("original", "total_ratio_vs_original")):
        if ref in stack and "ln_free" in stack:
            value, (lo, hi), n = pooled_ratio(stack["ln_free"]["total"], stack[ref]["total"], n_boot)
            rows.append({**pooled, "variant": "ln_free", "metric": metric, "value": value, "ci_low": lo,
                         "ci_high": hi, "n": n})
    return [{"ci_low": NAN, "ci_high": NAN, "n": len(next(iter(stack.values()))["total"][0]), **r} for r in rows]


if __name__ == "__main__":
    main()
