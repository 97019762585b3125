"""Bring a base model to a loss plateau with its LayerNorms kept, before LN removal and its control start from it.

Why: the LN-free run and the with-LN control fine-tune the same base for the same steps, and the claim compares
their final CE. When the base is far from convergence (the mini bases are small GPT-2s trained on 1M tokens), the
control keeps improving (up to 0.03 nats in 300 steps) while the LN-free run spends its steps on the removal, and
the comparison measures under-training, not LN removal: a seed-2 base gave ΔCE/control 3.6% where the seed-0 and
seed-1 bases gave 0.3-0.9%. The papers' bases (the released GPT-2s, 300k+ steps) are converged; this step makes
the mini bases so too.

Protocol: rounds of `round_steps` LN-kept training with the fine-tune's own optimiser and schedule (warm-up,
cosine to min_lr: warm restarts; the workflow may give the rounds their own lr and min_lr, so that a base stuck
before an abrupt loss drop gets through it), each on its own data seed, until each of the last `patience` rounds
improves the validation CE by less than `tol` (relative), or `max_rounds` rounds have run. Validation CE is measured on
`eval_blocks` blocks from the start of the val stream (the final CE evaluation uses blocks from its end). The
model after the last round is the base; the rounds table says whether the plateau was reached (`converged`) or
the cap stopped it.

Writes: the model dir (+ converge.json: the rounds, converged, seconds) and the rounds table (one row per round:
model_id, round, steps, val_ce_before, val_ce_after, rel_gain, tol, converged, seconds). A killed run resumes at the
last finished round (each round's model is kept in the checkpoint dir until the end) and inside a round from the
trainer's checkpoint.

CLI: python -m experiments.ln_removal.converge --model dir:resources/tinystories/models/w128_l2_s0 \
        --model-id w128_l2_s0 --train train.npy --val val.npy --train-config '{"batch_size": 4, ...}' \
        --round-steps 300 --max-rounds 4 --tol 0.015 --patience 2 --eval-blocks 64 --seed 0 --checkpoint-dir DIR \
        --out MODEL_DIR --rounds rounds.csv
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from experiments.data.tokens import eval_blocks
from experiments.files import atomic_dir, atomic_write_csv, atomic_write_text
from experiments.lm.devices import pick_device
from experiments.lm.load import load_model
from experiments.lm.train import TrainConfig, evaluate, train
from experiments.ln_removal.aggregate import ROUND_COLUMNS  # one row of the rounds table (defined without torch)
from experiments.seeding import seed_everything

ROUND_SEED_OFFSET = 1000  # round r trains on data seed seed + 1000 + r: never the fine-tune arms' batches (seed)


@dataclass(frozen=True)
class ConvergeConfig:
    round_steps: int
    max_rounds: int
    tol: float
    eval_blocks: int
    patience: int = 2

    def __post_init__(self):
        if min(self.round_steps, self.max_rounds, self.eval_blocks, self.patience) < 1:
            raise ValueError(f"round_steps, max_rounds, eval_blocks and patience must be >= 1: {self}")
        if not 0 < self.tol < 1:
            raise ValueError(f"tol is a relative CE gain in (0, 1), got {self.tol}")


def relative_gain(before: float, after: float) -> float:
    """(CE before - CE after) / CE before: the fraction of the loss a round removed (negative if it got worse)."""
    if not before > 0:
        raise ValueError(f"CE before the round must be positive, got {before}")
    return (before - after) / before


def plateau_reached(gains: list[float], tol: float, patience: int) -> bool:
    """The plateau: each of the last `patience` rounds removed less than `tol` of the loss (or made it worse).
    One small round is not enough: these models sit on false plateaus before abrupt drops (a d64 base gained
    1.1% in one round and 10.5% in the next)."""
    return len(gains) >= patience and all(g < tol for g in gains[-patience:])


def run_rounds(model, train_ids, val_ids, train_cfg: dict, conv: ConvergeConfig, seed: int, checkpoint_dir: str,
               model_id: str = "model", threads: int | None = None, progress: bool = True,
               on_round=None) -> pd.DataFrame:
    """Train `model` in place round by round; returns the rounds table. `on_round(r, model, rows)` is called after
    each finished round (the CLI saves the model there, so a killed run resumes at the last finished round)."""
    ckpt = Path(checkpoint_dir)
    state_path = ckpt / "rounds.json"
    rows: list[dict] = json.loads(state_path.read_text()) if state_path.exists() else []
    blocks = eval_blocks(val_ids, int(train_cfg["block_size"]) + 1, conv.eval_blocks)
    device = next(model.parameters()).device
    model.eval()
    ce = rows[-1]["val_ce_after"] if rows else evaluate(model, blocks.to(device))
    while len(rows) < conv.max_rounds and not (rows and rows[-1]["converged"]):
        r = len(rows) + 1
        cfg = TrainConfig.from_dict({**train_cfg, "max_steps": conv.round_steps,
                                     "seed": seed + ROUND_SEED_OFFSET + r, "threads": threads})
        t0 = time.time()
        train(model, train_ids, val_ids, cfg, ckpt / f"round_{r}", progress=progress, desc=f"{model_id} converge r{r}")
        after = evaluate(model, blocks.to(device))
        gain = relative_gain(ce, after)
        gains = [row["rel_gain"] for row in rows] + [gain]
        rows.append(dict(model_id=model_id, round=r, steps=r * conv.round_steps, val_ce_before=ce,
                         val_ce_after=after, rel_gain=gain, tol=conv.tol,
                         converged=plateau_reached(gains, conv.tol, conv.patience), seconds=time.time() - t0))
        print(f"{model_id} round {r}: val CE {ce:.4f} -> {after:.4f} ({100 * gain:+.2f}%, tol {100 * conv.tol:.2f}%)",
              flush=True)
        if on_round is not None:
            on_round(r, model, rows)
        atomic_write_text(state_path, json.dumps(rows, indent=2))
        shutil.rmtree(ckpt / f"round_{r}", ignore_errors=True)
        ce = after
    return pd.DataFrame(rows, columns=ROUND_COLUMNS)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model spec, e.g. dir:PATH or hub:gpt2")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--train-config", required=True, help="JSON of TrainConfig fields (max_steps is replaced)")
    ap.add_argument("--round-steps", type=int, required=True)
    ap.add_argument("--max-rounds", type=int, required=True)
    ap.add_argument("--tol", type=float, required=True)
    ap.add_argument("--eval-blocks", type=int, required=True)
    ap.add_argument("--patience", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--checkpoint-dir", required=True)
    ap.add_argument("--out", required=True, help="output model dir")
    ap.add_argument("--rounds", required=True, help="output rounds table (CSV)")
    args = ap.parse_args(argv)

    conv = ConvergeConfig(args.round_steps, args.max_rounds, args.tol, args.eval_blocks, args.patience)
    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    ckpt = Path(args.checkpoint_dir)
    last = ckpt / "last_round"
    model, tok = load_model(f"dir:{last}" if (ckpt / "rounds.json").exists() and last.is_dir() else args.model,
                            device=device)
    model.config.use_cache = False

    def save_round(r, m, rows):
        with atomic_dir(str(last)) as tmp:
            m.save_pretrained(tmp)
            tok.save_pretrained(tmp)

    train_cfg = {k: v for k, v in json.loads(args.train_config).items() if k != "max_steps"}
    rounds = run_rounds(model, np.load(args.train, mmap_mode="r"), np.load(args.val, mmap_mode="r"), train_cfg,
                        conv, args.seed, args.checkpoint_dir, args.model_id, args.threads, on_round=save_round)
    info = dict(model_id=args.model_id, base=args.model, converge=vars(conv), train_config=train_cfg, seed=args.seed,
                converged=bool(rounds["converged"].iloc[-1]), rounds=rounds.to_dict(orient="records"),
                seconds=float(rounds["seconds"].sum()))
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_text(f"{tmp}/converge.json", json.dumps(info, indent=2))
    atomic_write_csv(rounds, args.rounds)
    shutil.rmtree(ckpt, ignore_errors=True)
    state = "plateau reached" if info["converged"] else f"cap of {conv.max_rounds} rounds reached before the plateau"
    print(f"{args.model_id}: {state}; val CE {rounds['val_ce_before'].iloc[0]:.4f} -> "
          f"{rounds['val_ce_after'].iloc[-1]:.4f} in {len(rounds)} rounds, {info['seconds']:.0f} s")


if __name__ == "__main__":
    main()
