"""Train one model of the TinyStories width x depth sweep on the tokenized corpus.

Every model of the sweep gets the same token budget (`tokens` in the training config), so size is
the only variable. Checkpoints go to --checkpoint-dir; a killed job resumes from there.

CLI:
    python -m experiments.tinystories.train_model --arch gpt2 --width 64 --depth 2 --heads 4 --context 128 \
        --seed 0 --tokenizer DIR --train train.npy --val val.npy --train-config '{"tokens": 400000, ...}' \
        --checkpoint-dir DIR --out MODEL_DIR --curve loss_curve.csv
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from experiments.lm.build import ARCHS, build_model, count_params
from experiments.lm.devices import pick_device
from experiments.lm.tokenizer import load_tokenizer
from experiments.lm.train import TrainConfig, save_trained, train
from experiments.seeding import seed_everything


def steps_for_budget(tokens: int, tokens_per_step: int) -> int:
    return max(1, round(tokens / tokens_per_step))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--depth", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--context", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--train-config", required=True, help="JSON: tokens + TrainConfig fields except max_steps")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--checkpoint-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--curve", required=True)
    args = ap.parse_args(argv)

    seed_everything(args.seed)
    device = pick_device(args.device)
    tok = load_tokenizer(args.tokenizer)
    opts = json.loads(args.train_config)
    tokens = opts.pop("tokens")
    cfg = TrainConfig.from_dict({**opts, "max_steps": 1, "seed": args.seed, "threads": args.threads})
    cfg.max_steps = steps_for_budget(tokens, cfg.tokens_per_step)
    model = build_model(args.arch, vocab_size=len(tok), d_model=args.width, n_layers=args.depth,
                        n_heads=args.heads, context=args.context, eos_id=tok.eos_token_id).to(device)
    n = count_params(model)
    name = f"{args.arch} d{args.width} L{args.depth}"
    print(f"{name}: {n['params_total']:,} params ({n['params_non_embedding']:,} non-embedding), "
          f"{cfg.max_steps} steps x {cfg.tokens_per_step} tokens on {device}", flush=True)

    train_ids = np.load(args.train, mmap_mode="r")
    val_ids = np.load(args.val, mmap_mode="r")
    curve = train(model, train_ids, val_ids, cfg, args.checkpoint_dir, desc=name)
    curve.insert(0, "model_id", f"w{args.width}_l{args.depth}_s{args.seed}")
    for col, val in (("arch", args.arch), ("width", args.width), ("depth", args.depth), ("seed", args.seed),
                     ("params_total", n["params_total"]), ("params_non_embedding", n["params_non_embedding"])):
        curve.insert(1, col, val)

    save_trained(model, tok, args.out, curve, args.curve, cfg, args.checkpoint_dir,
                 {"tokens": cfg.max_steps * cfg.tokens_per_step, **n, "arch": args.arch, "width": args.width,
                  "depth": args.depth, "heads": args.heads, "seed": args.seed})

if __name__ == "__main__":
    main()
