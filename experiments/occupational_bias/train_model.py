"""Train the tiny GPT-2 of the planted world on its corpus (checkpointed; a killed job resumes).

CLI:
    python -m experiments.occupational_bias.train_model --tokenizer DIR --train train.npy --val val.npy \
        --model '{"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 32}' \
        --train-config '{"max_steps": 1500, "batch_size": 64, "block_size": 32, ...}' \
        --seed 0 --checkpoint-dir DIR --out MODEL_DIR --curve curve.csv
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from experiments.lm.build import build_model, count_params
from experiments.lm.devices import pick_device
from experiments.lm.tokenizer import load_tokenizer
from experiments.lm.train import TrainConfig, save_trained, train
from experiments.seeding import seed_everything


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--model", required=True, help="JSON: d_model, n_layers, n_heads, context")
    ap.add_argument("--train-config", required=True, help="JSON of TrainConfig fields")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--checkpoint-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--curve", required=True)
    args = ap.parse_args(argv)

    seed_everything(args.seed)
    device = pick_device(args.device)
    tok = load_tokenizer(args.tokenizer)
    shape = json.loads(args.model)
    cfg = TrainConfig.from_dict({**json.loads(args.train_config), "seed": args.seed, "threads": args.threads})
    model = build_model("gpt2", vocab_size=len(tok), eos_id=tok.eos_token_id, **shape).to(device)
    n = count_params(model)
    print(f"planted-world GPT-2 {shape}: {n['params_total']:,} params, {cfg.max_steps} steps x "
          f"{cfg.tokens_per_step} tokens on {device}", flush=True)
    curve = train(model, np.load(args.train, mmap_mode="r"), np.load(args.val, mmap_mode="r"), cfg,
                  args.checkpoint_dir, desc="planted LM")
    save_trained(model, tok, args.out, curve, args.curve, cfg, args.checkpoint_dir,
                 {"model": shape, **n, "seed": args.seed})

if __name__ == "__main__":
    main()
