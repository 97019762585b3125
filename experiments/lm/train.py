"""Train or fine-tune a causal LM on a token stream: one flat loop, every knob a TrainConfig field.

The one training CLI of the pipeline (every result that trains a tiny model from scratch calls it):

    python -m experiments.lm.train --model-id w64_l2_s0 --arch gpt2 \
        --shape '{"d_model": 64, "n_layers": 2, "n_heads": 4, "context": 256}' --tokenizer DIR \
        --train train.npy --val val.npy --train-config '{"tokens": 1000000, "batch_size": 4, ...}' \
        --seed 0 --threads 1 --checkpoint-dir DIR --out MODEL_DIR --curve curve.csv

`--train-config` holds TrainConfig fields (their defaults: config/schemas/definitions.yaml#/definitions/train)
with either `max_steps` or `tokens` (a token budget: max_steps = round(tokens / tokens per step), so models of
different shapes see the same data).

AdamW (decay on matrices only), linear warmup then cosine decay to `min_lr`, gradient clipping,
gradient accumulation, bf16 autocast on GPU, periodic validation, and checkpoints that make a
killed run resume exactly where it stopped (model, optimiser, step, loss rows, RNG states, and the
state of any step hooks, e.g. a LayerNorm-removal schedule).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from experiments.data.tokens import document_batch, document_eval_blocks, document_starts, eval_blocks, random_batch
from experiments.files import atomic_save_torch, atomic_write_csv
from experiments.options import check_known

CHECKPOINT = "checkpoint.pt"
LOSS_CURVE = "loss_curve.csv"


def _schema_defaults() -> dict:
    """TrainConfig's defaults: the one place they live is the config schema (definitions.yaml#/definitions/train)."""
    import yaml

    path = Path(__file__).resolve().parents[2] / "config" / "schemas" / "definitions.yaml"
    props = yaml.safe_load(path.read_text())["definitions"]["train"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


_DEFAULTS = _schema_defaults()


@dataclass
class TrainConfig:
    """Every knob of the loop. Required: max_steps, batch_size, block_size, lr; the rest default to the schema's
    values (config/schemas/definitions.yaml#/definitions/train), so code and config cannot disagree."""

    max_steps: int
    batch_size: int
    block_size: int
    lr: float
    grad_accum: int = _DEFAULTS["grad_accum"]
    min_lr: float | None = _DEFAULTS["min_lr"]  # None: lr / 10
    warmup_steps: int = _DEFAULTS["warmup_steps"]
    weight_decay: float = _DEFAULTS["weight_decay"]
    betas: tuple[float, float] = tuple(_DEFAULTS["betas"])
    grad_clip: float = _DEFAULTS["grad_clip"]
    eval_every: int = _DEFAULTS["eval_every"]
    eval_blocks: int = _DEFAULTS["eval_blocks"]
    checkpoint_every: int = _DEFAULTS["checkpoint_every"]
    align: str = _DEFAULTS["align"]  # random | document (windows open at a document's EOT, used as BOS)
    loss_after: str | None = _DEFAULTS["loss_after"]  # None: every next token; text: only the token after it
    seed: int = 0  # set by the CLI (--seed), not by the config section
    threads: int | None = None  # set by the CLI (--threads)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_size * self.grad_accum

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        check_known(cls, d, "training")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


class StepHook(Protocol):
    """Called before every optimisation step; its state is checkpointed with the model."""

    def before_step(self, step: int, model: torch.nn.Module) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict, model: torch.nn.Module) -> None: ...


LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def lm_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats."""
    logits = model(input_ids=x).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


def marker_loss(marker: list[int]) -> LossFn:
    """Completion-only loss: cross-entropy of the tokens that directly follow the token sequence `marker` (e.g.
    the answer after "Answer:"); every other position is ignored. A batch without the marker fails loudly."""
    if not marker:
        raise ValueError("empty loss marker")
    m = torch.tensor(marker)

    def loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(marker)
        hit = torch.zeros_like(x, dtype=torch.bool)
        if x.shape[1] >= n:
            win = x.unfold(1, n, 1)  # (B, T - n + 1, n): win[:, t] = x[:, t : t + n]
            hit[:, n - 1:] = (win == m.to(x.device)).all(-1)
        if not hit.any():
            raise ValueError(f"no target follows the loss marker {marker} in this batch (block too short?)")
        logits = model(input_ids=x).logits
        return F.cross_entropy(logits[hit].float(), y[hit])

    return loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.min_lr at max_steps."""
    min_lr = cfg.lr / 10 if cfg.min_lr is None else cfg.min_lr
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on >=2-D parameters only (not on biases, norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=torch.cuda.is_available())


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: torch.nn.Module, blocks: torch.Tensor, loss_fn: LossFn = lm_loss, batch_size: int = 16) -> float:
    """Mean loss over fixed validation blocks (each block predicts its own next tokens)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, n = 0.0, 0
    for i in range(0, len(blocks), batch_size):
        b = blocks[i : i + batch_size].to(device)
        with autocast(device):
            total += loss_fn(model, b[:, :-1], b[:, 1:]).item() * len(b)
        n += len(b)
    model.train(was_training)
    return total / n


def _check_finite(value: float, what: str, step: int) -> None:
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is {value} at step {step}: training diverged (lower lr or check data)")


def train(
    model: torch.nn.Module,
    train_stream: np.ndarray,
    val_stream: np.ndarray,
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    hooks: tuple[StepHook, ...] = (),
    loss_fn: LossFn = lm_loss,
    progress: bool = True,
    desc: str = "train",
    doc_sep: int | None = None,
) -> pd.DataFrame:
    """Run (or resume) training; returns the loss curve (also written to out_dir/loss_curve.csv).

    Rows: step, tokens, lr, train_loss_nats (mean over the step's micro-batches), val_loss_nats
    (NaN except at evaluation steps), seconds (wall time since the run's first start).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = next(model.parameters()).device
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = make_optimizer(model, cfg)
    if cfg.align == "document":
        if doc_sep is None:
            raise ValueError("align: document needs the document separator token (doc_sep)")
        starts = document_starts(train_stream, doc_sep, cfg.block_size)
        val = document_eval_blocks(val_stream, document_starts(val_stream, doc_sep, cfg.block_size),
                                   cfg.block_size + 1, cfg.eval_blocks)
    elif cfg.align == "random":
        val = eval_blocks(val_stream, cfg.block_size + 1, cfg.eval_blocks)
    else:
        raise ValueError(f"unknown align {cfg.align!r}: random | document")
    rows: list[dict] = []
    step, elapsed = 0, 0.0

    ckpt_path = out_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        for hook in hooks:  # hooks first: they may swap modules whose parameters the state dict holds
            hook.load_state_dict(ckpt["hooks"].get(type(hook).__name__, {}), model)
        model.load_state_dict(ckpt["model"])
        opt = make_optimizer(model, cfg)
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        torch.set_rng_state(ckpt["torch_rng"])
        if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ckpt["cuda_rng"])
        step, elapsed, rows = ckpt["step"], ckpt["elapsed"], ckpt["rows"]
        tqdm.write(f"{desc}: resumed from {ckpt_path} at step {step}/{cfg.max_steps}")

    def save_checkpoint() -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "step": step,
            "elapsed": elapsed + time.time() - t0,
            "rows": rows,
            "hooks": {type(h).__name__: h.state_dict() for h in hooks},
            "config": asdict(cfg),
        }
        atomic_save_torch(state, ckpt_path)
        atomic_write_csv(pd.DataFrame(rows), out_dir / LOSS_CURVE, allow_nan=["val_loss_nats"])

    model.train()
    t0 = time.time()
    bar = tqdm(total=cfg.max_steps, initial=step, desc=desc, unit="step", disable=not progress, mininterval=2)
    while step < cfg.max_steps:
        for hook in hooks:
            hook.before_step(step, model)
        lr = lr_at(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for _ in range(cfg.grad_accum):
            if cfg.align == "document":
                x, y = document_batch(train_stream, starts, cfg.batch_size, cfg.block_size, gen)
            else:
                x, y = random_batch(train_stream, cfg.batch_size, cfg.block_size, gen)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device):
                loss = loss_fn(model, x, y)
            (loss / cfg.grad_accum).backward()
            loss_sum += loss.item()
        train_loss = loss_sum / cfg.grad_accum
        _check_finite(train_loss, "train loss", step)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        val_loss = float("nan")
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            val_loss = evaluate(model, val, loss_fn)
            _check_finite(val_loss, "validation loss", step)
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
        rows.append(
            dict(step=step, tokens=step * cfg.tokens_per_step, lr=lr, train_loss_nats=train_loss,
                 val_loss_nats=val_loss, seconds=elapsed + time.time() - t0)
        )
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            save_checkpoint()
    bar.close()
    model.eval()
    return pd.DataFrame(rows)



def save_trained(model: torch.nn.Module, tokenizer, out_dir: str | Path, curve: pd.DataFrame, curve_path: str | Path,
                 cfg: TrainConfig, checkpoint_dir: str | Path, meta: dict) -> None:
    """Write the trained model + tokenizer + training.json (atomically), the loss curve, then drop the checkpoint."""
    import json
    import shutil

    from experiments.files import atomic_dir, atomic_write_text

    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_text(f"{tmp}/training.json", json.dumps(
            {"train_config": {**asdict(cfg), "betas": list(cfg.betas)}, **meta,
             "seconds": float(curve["seconds"].iloc[-1])}, indent=2))
    atomic_write_csv(curve, curve_path, allow_nan=["val_loss_nats"])
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the final model is saved; drop optimiser state
    print(f"final val loss {curve['val_loss_nats'].dropna().iloc[-1]:.4f} nats; "
          f"{curve['seconds'].iloc[-1]:.1f} s", flush=True)


def steps_for_budget(tokens: int, tokens_per_step: int) -> int:
    return max(1, round(tokens / tokens_per_step))


def config_from_options(opts: dict, *, seed: int, threads: int | None) -> TrainConfig:
    """A TrainConfig from JSON options with `max_steps` or a `tokens` budget."""
    opts = dict(opts)
    tokens = opts.pop("tokens", None)
    if (tokens is None) == ("max_steps" not in opts):
        raise ValueError("the training options need exactly one of max_steps and tokens")
    if tokens is not None:
        opts["max_steps"] = 1
    cfg = TrainConfig.from_dict({**opts, "seed": seed, "threads": threads})
    if tokens is not None:
        cfg.max_steps = steps_for_budget(tokens, cfg.tokens_per_step)
    return cfg


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    from experiments.cli import add_runtime_args, add_training_output_args, setup_runtime
    from experiments.lm.build import ARCHS, build_model, count_params
    from experiments.lm.tokenizer import load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-id", required=True, help="a column of the loss curve")
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--shape", required=True, help="JSON: d_model, n_layers, n_heads, context")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--train", required=True, help="training token stream (.npy)")
    ap.add_argument("--val", required=True, help="validation token stream (.npy)")
    ap.add_argument("--train-config", required=True, help="JSON: TrainConfig fields with max_steps or tokens")
    add_runtime_args(ap)
    add_training_output_args(ap)
    args = ap.parse_args(argv)

    device = setup_runtime(args)
    tok = load_tokenizer(args.tokenizer)
    shape = json.loads(args.shape)
    cfg = config_from_options(json.loads(args.train_config), seed=args.seed, threads=args.threads)
    model = build_model(args.arch, vocab_size=len(tok), eos_id=tok.eos_token_id, **shape).to(device)
    n = count_params(model)
    name = f"{args.arch} d{shape['d_model']} L{shape['n_layers']}"
    print(f"{args.model_id} ({name}): {n['params_total']:,} params ({n['params_non_embedding']:,} non-embedding), "
          f"{cfg.max_steps} steps x {cfg.tokens_per_step} tokens on {device}", flush=True)
    loss_fn = lm_loss
    if cfg.loss_after is not None:
        loss_fn = marker_loss(tok.encode(cfg.loss_after, add_special_tokens=False))
    curve = train(model, np.load(args.train, mmap_mode="r"), np.load(args.val, mmap_mode="r"), cfg,
                  args.checkpoint_dir, desc=f"{args.model_id} {name}", loss_fn=loss_fn, doc_sep=tok.eos_token_id)
    info = {"model_id": args.model_id, "arch": args.arch, "width": shape["d_model"], "depth": shape["n_layers"],
            "seed": args.seed, **n}
    for i, (col, val) in enumerate(info.items()):
        curve.insert(i, col, val)
    save_trained(model, tok, args.out, curve, args.curve, cfg, args.checkpoint_dir,
                 {**info, "shape": shape, "tokens": cfg.max_steps * cfg.tokens_per_step})


if __name__ == "__main__":
    main()
