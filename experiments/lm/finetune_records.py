"""Fine-tune a causal LM on whole records (one record per row), with or without DP-SGD.

Without DP: each epoch visits the records in a seeded random order, `batch_size` per step. With DP (Abadi et al.;
opacus): every step draws a Poisson sample (each record independently with rate q = batch_size / N), clips each
record's gradient to `clip`, adds Gaussian noise of std sigma x clip, and divides by the expected batch size;
sigma is the accountant's for the configured epsilon at delta (default 1/N) over steps = epochs / q; the epsilon
spent is logged by the RDP and the PRV accountants. An empty Poisson sample still takes a noise-only step (the
mechanism the accountant assumes). lr decays linearly to 0 after `warmup_steps`. Checkpoints every
`checkpoint_every` steps make a killed run resume exactly (model, optimiser, step, loss rows, RNG states).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from experiments.files import atomic_save_torch
from experiments.lm.records import per_record_loss, record_batch

CHECKPOINT = "checkpoint.pt"


@dataclass
class RecordTrainConfig:
    epochs: float
    batch_size: int
    lr: float
    block: int = 128
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0            # non-DP: global norm clipping (0: none)
    dp_epsilon: float | None = None   # None: no DP
    dp_delta: float | None = None     # None: 1 / N
    dp_clip: float = 1.0              # per-record gradient norm bound
    dp_micro_batch: int | None = None  # DP: records per backward (per-sample gradients are kept for these only;
                                       # clipped sums accumulate over a logical batch: opacus' virtual steps, the
                                       # paper's 16 x 4). None: the whole Poisson batch at once
    checkpoint_every: int = 100
    seed: int = 0

    def steps(self, n_records: int) -> int:
        if n_records < 1 or self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("need records, batch_size >= 1 and epochs > 0")
        return max(1, math.ceil(self.epochs * n_records / self.batch_size))


def _lr(step: int, total: int, cfg: RecordTrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    return cfg.lr * max(0.0, (total - step) / max(1, total - cfg.warmup_steps))


def finetune_records(model, records: list[list[int]], cfg: RecordTrainConfig, out_dir: str | Path, *, bos_id: int,
                     pad_id: int, max_steps: int | None = None, progress: bool = True,
                     desc: str = "finetune") -> tuple[pd.DataFrame, dict]:
    """Train in place; returns (loss rows, privacy meta). `max_steps` stops early (tests of the resume)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = len(records)
    total = cfg.steps(n)
    q = min(1.0, cfg.batch_size / n)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    base_opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    meta: dict = {"n_records": n, "steps": total, "sample_rate": q, "dp": cfg.dp_epsilon is not None}
    if cfg.dp_epsilon is not None:
        from experiments.lm.dp import dp_optimizer, noise_for_epsilon, spent_epsilon

        delta = cfg.dp_delta if cfg.dp_delta is not None else 1.0 / n
        sigma = noise_for_epsilon(cfg.dp_epsilon, delta, q, total)
        net, opt = dp_optimizer(model, base_opt, noise_multiplier=sigma, max_grad_norm=cfg.dp_clip,
                                expected_batch_size=cfg.batch_size, seed=cfg.seed + 1)
        meta.update(delta=delta, noise_multiplier=sigma, clip=cfg.dp_clip, target_epsilon=cfg.dp_epsilon)
    else:
        net, opt = model, base_opt
    order: list[int] = []
    step, rows, elapsed = 0, [], 0.0
    ckpt_path = out_dir / CHECKPOINT
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        base_opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        if cfg.dp_epsilon is not None:
            opt.generator.set_state(ck["noise_rng"])
        step, rows, order, elapsed = ck["step"], ck["rows"], ck["order"], ck["elapsed"]
        tqdm.write(f"{desc}: resumed at step {step}/{total}")
    t0 = time.time()

    def save() -> None:
        atomic_save_torch({"model": model.state_dict(), "optimizer": base_opt.state_dict(),
                           "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
                           "rows": rows, "order": order,
                           "elapsed": elapsed + time.time() - t0, "config": asdict(cfg),
                           "noise_rng": opt.generator.get_state() if cfg.dp_epsilon is not None else None}, ckpt_path)

    model.train()
    stop = total if max_steps is None else min(total, max_steps)
    bar = tqdm(total=total, initial=step, desc=desc, unit="step", disable=not progress, mininterval=2)
    while step < stop:
        if cfg.dp_epsilon is not None:
            idx = torch.nonzero(torch.rand(n, generator=gen) < q).flatten().tolist()
        else:
            if len(order) < cfg.batch_size:
                order += torch.randperm(n, generator=gen).tolist()
            idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
        lr = _lr(step, total, cfg)
        for group in base_opt.param_groups:
            group["lr"] = lr
        loss_value = float("nan")
        if idx:
            size = cfg.dp_micro_batch if cfg.dp_epsilon is not None and cfg.dp_micro_batch else len(idx)
            chunks = [idx[i:i + size] for i in range(0, len(idx), size)]
            loss_sum = 0.0
            for c, chunk in enumerate(chunks):
                losses = per_record_loss(net, record_batch([records[i] for i in chunk], bos_id=bos_id,
                                                           pad_id=pad_id, block=cfg.block))
                loss = losses.mean()
                loss.backward()
                loss_sum += loss.item() * len(chunk)
                if c < len(chunks) - 1:  # clip and add up this micro-batch's per-sample gradients, no step yet
                    opt.signal_skip_step(do_skip=True)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            loss_value = loss.item() if len(chunks) == 1 else loss_sum / len(idx)
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"{desc}: non-finite loss at step {step}")
        else:  # an empty Poisson sample: no gradient, the noise only
            for p in model.parameters():
                if p.requires_grad:
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        if cfg.dp_epsilon is None and cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        rows.append({"step": step, "batch": len(idx), "lr": lr, "train_loss_nats": loss_value,
                     "seconds": elapsed + time.time() - t0})
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == stop:
            save()
    bar.close()
    model.eval()
    if cfg.dp_epsilon is not None:
        meta.update({f"epsilon_{k}": v for k, v in spent_epsilon(sigma, q, step, delta).items()})
        net._close()  # remove opacus' hooks: the model is saved and used as a plain model afterwards
    meta["steps_done"] = step
    return pd.DataFrame(rows), meta
