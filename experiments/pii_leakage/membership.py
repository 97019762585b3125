"""Membership inference on one target (notes pii.md §1.4, the paper's loss-ratio attack): each record of the training
split (members) and of the held-out split (non-members) scored by the target's mean next-token loss and by the
ratio of the target's loss to the public base model's (a record the base also finds easy is not evidence of
membership). Both AUCs are in summary.py's table; the rows let the score be joined with the other attacks' queries.

Records are scored as the targets were trained on them: BOS + record + EOS, each on its own
(experiments.lm.records, the same per-record loss as the fine-tune).

CLI:
    python -m experiments.pii_leakage.membership --target dir:MODEL --base dir:BASE --records records.jsonl \\
        --threads 1 --out-rows membership.csv
    # the base's losses once for every target (the workflow): the same numbers, computed once
    python -m experiments.pii_leakage.membership --losses-of dir:BASE --records records.jsonl --out-rows base.csv
    python -m experiments.pii_leakage.membership --target dir:MODEL --base-losses base.csv --records records.jsonl \\
        --out-rows membership.csv
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np

from experiments.stats import normal_ci

OUTPUTS = ["rows"]
SPLITS = {"train": True, "test": False}  # split -> member
SCORES = {"auc_loss_ratio": "ratio", "auc_loss": "loss_target"}  # metric -> column; the lower, the likelier a member


def auc(pos, neg) -> float:
    """P(a positive scores above a negative), ties count one half: the Mann-Whitney U of the positives / (m n)."""
    from scipy.stats import mannwhitneyu

    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not len(pos) or not len(neg):
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def auc_ci(a: float, m: int, n: int) -> tuple[float, float]:
    """Hanley & McNeil (1982) normal 95% interval of an AUC from m positives and n negatives, clipped to [0, 1]."""
    if not (m and n) or not math.isfinite(a):
        return (float("nan"), float("nan"))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    lo, hi = normal_ci(a, math.sqrt(max(0.0, a * (1 - a) + (m - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (m * n)))
    return (max(0.0, lo), min(1.0, hi))


def aucs(rows) -> dict[str, float]:
    """Each SCORES metric's AUC of members against non-members (rows: this step's output, `member` boolean)."""
    m = np.asarray(rows["member"], bool)
    return {metric: auc(-rows[col][m], -rows[col][~m]) for metric, col in SCORES.items()}


def record_losses(model, tok, texts: list[str], batch_size: int = 64) -> np.ndarray:
    import torch

    from experiments.lm.records import per_record_loss, record_batch
    from experiments.lm.sample import pad_id_of
    from experiments.pii_leakage.finetune import encode_records

    ids = encode_records(tok, texts)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    block = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 1024)
    out = []
    with torch.inference_mode():
        for i in range(0, len(ids), batch_size):
            batch = record_batch(ids[i:i + batch_size], bos_id=bos, pad_id=pad_id_of(tok), block=block)
            out.append(per_record_loss(model, batch).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
    from experiments.files import atomic_write_csv
    from experiments.lm.load import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", help="model spec of the target (with --base or --base-losses)")
    ap.add_argument("--base", help="model spec of the public base model")
    ap.add_argument("--base-losses", help="the base's per-record losses, as --losses-of wrote them")
    ap.add_argument("--losses-of", help="only this model's per-record losses -> --out-rows (record, member, loss)")
    ap.add_argument("--records", required=True)
    ap.add_argument("--batch-size", type=int, default=64)
    add_runtime_args(ap)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    if args.losses_of:
        if args.target or args.base or args.base_losses:
            ap.error("--losses-of takes no --target / --base / --base-losses")
    elif not args.target or (args.base is None) == (args.base_losses is None):
        ap.error("give --target and exactly one of --base / --base-losses (or --losses-of alone)")
    paths = output_paths(args, OUTPUTS)
    device = setup_runtime(args)
    records = [r for r in map(json.loads, open(args.records, encoding="utf-8")) if r["split"] in SPLITS]
    texts = [r["text"] for r in records]
    ids = [r["id"] for r in records]
    members = [SPLITS[r["split"]] for r in records]

    def losses_of(spec: str) -> np.ndarray:
        model, tok = load_model(spec, device=device, attn_implementation="sdpa")
        model.eval()
        return record_losses(model, tok, texts, args.batch_size)

    if args.losses_of:
        loss = losses_of(args.losses_of)
        atomic_write_csv(pd.DataFrame({"record": ids, "member": members, "loss": loss.astype(np.float64)}),
                         paths["rows"])
        print(f"{args.losses_of}: per-record losses of {len(ids)} records -> {paths['rows']}")
        return
    losses = {"target": losses_of(args.target)}
    if args.base_losses:
        base = pd.read_csv(args.base_losses)
        if base["record"].tolist() != ids:
            raise ValueError(f"{args.base_losses}: its records are not those of {args.records} (rerun --losses-of)")
        # written as float64 of record_losses' float32 values (exact both ways): the same array as computing it here
        losses["base"] = base["loss"].to_numpy(np.float64).astype(np.float32)
    else:
        losses["base"] = losses_of(args.base)
    df = pd.DataFrame({"record": ids, "member": members,
                       "has_pii": [bool(r["spans"]) for r in records], "loss_target": losses["target"],
                       "loss_base": losses["base"]})
    df["ratio"] = df["loss_target"] / df["loss_base"]
    atomic_write_csv(df, paths["rows"])
    a = aucs(df)
    print(f"{args.target}: {df['member'].sum()} members, {(~df['member']).sum()} non-members; AUC loss ratio "
          f"{a['auc_loss_ratio']:.3f}, loss {a['auc_loss']:.3f}")


if __name__ == "__main__":
    main()
