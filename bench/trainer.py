"""Tiny-model trainer speed (CPU, fp32, one process): experiments.lm.train vs a plain loop, and what helps.

For each TinyStories shape (GPT-2, vocab 512, context 256, batch 4 x 256 tokens; lr, schedule, clip and decay
from config/config.yaml's tinystories.train) every variant trains its own copy of the same initial model on
the same batches (train()'s torch.Generator seed), in one process, interleaved: variant A runs a block of
steps, then B, ..., then A again (the order rotates each round), so load from other processes hits all of
them alike. Reported per variant: median wall ms/step and median CPU ms/step of this process over the blocks
(on a shared machine the CPU time is the steadier of the two for 1-thread variants), the minimum block CPU
time (load only adds time), tokens/s, and the ratios to the plain loop and to ours.

Variants:
  plain             model(x, labels=x).loss (HF loss), torch.optim.AdamW(model.parameters()) defaults,
                    zero_grad, backward, clip, step (the loop a user would write)
  ours              the per-step work of experiments.lm.train.train(): lr_at, random_batch, lm_loss,
                    backward, clip, make_optimizer's AdamW (decay groups; for-loop kernel on CPU),
                    zero_grad(set_to_none=True)
  ours + one change AdamW foreach=True / fused=True; clip_grad_norm_ foreach=True; use_cache=False in the
                    forward (HF builds a DynamicCache every training step otherwise); activation
                    gelu_pytorch_tanh (GPT-2's gelu_new is a chain of 8 elementwise ops; this is the same tanh
                    GELU as one aten kernel); eager attention; SDPA restricted to MATH / FLASH_ATTENTION
                    (sdpa_kernel; the default picks flash on CPU); torch.compile(model) (cold compile with a
                    fresh inductor cache, counted against a 1,000-step run); 2 threads;
                    zero_grad(set_to_none=False); bf16 autocast
  bitwise / best    the faster changes together: those that leave the losses bitwise equal / also gelu
  process: ...      separate processes, alternated (--process-shapes): ours with glibc's default malloc vs
                    ours with experiments.allocator (what every pipeline step runs with: mallopt M_MMAP_THRESHOLD
                    32 MiB, M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB, M_TOP_PAD 64 MiB) vs best with it. By default
                    glibc returns freed activation buffers to the kernel and page-faults them back every step
                    (minor faults/step reported); mallopt is process-wide, hence the separate processes

'sdpa FLASH' is what the default SDPA picks on CPU: its ratio to ours is the run's noise floor. Variants more
than 2x slower than ours after the first round stop there; the screened variants (SCREEN: slower at every
shape tried, or not faster beyond the noise) run on --screen-shapes only, torch.compile on --compile-shapes.

The loss check: train() itself runs the first `--check` steps (eval and checkpoints off until its last step)
and every variant's losses are compared with its curve (max |diff| in nats over the first `--check` steps for
variants faster than ours by > 3%, over the steps run for the others; 'ours' must be 0: it checks that this replica
is train()). 'same' means within 1e-5 nats (0 = bitwise).

Usage: python bench/trainer.py [--threads 1] [--quick] [--shapes d32_L1,d128_L4] [--variants "adamw foreach"]
Writes bench/results/trainer.csv (one row per shape x variant, with CPU model, threads, torch version).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model  # noqa: E402
from experiments.data.tokens import random_batch  # noqa: E402
from experiments.lm.build import build_model  # noqa: E402
from experiments.lm.train import TrainConfig, lm_loss, lr_at, make_optimizer, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"d32_L1": (32, 1), "d32_L4": (32, 4), "d128_L2": (128, 2), "d128_L4": (128, 4)}
SAME_TOL = 1e-5  # nats: 'same' = bitwise or float-rounding noise of one step's mean loss
STEPS_1000 = 1000  # the mini run trains ~977 steps (1M tokens / 1,024 per step); compile is counted against it


@dataclass(frozen=True)
class Variant:
    name: str
    plain: bool = False  # the plain HF-loss loop instead of ours
    adamw: tuple = ()  # AdamW kernel kwargs, e.g. (("fused", True),)
    clip_foreach: bool | None = None
    use_cache: bool | None = None  # None: the model config's default (True for GPT-2)
    act: str | None = None  # activation_function of the model config (GPT-2: gelu_new)
    attn: str = "sdpa"
    sdpa_backend: str | None = None  # MATH | FLASH_ATTENTION (torch.nn.attention.SDPBackend)
    compile: bool = False
    threads: int | None = None  # None: --threads
    set_to_none: bool = True
    bf16: bool = False


VARIANTS = {v.name: v for v in [
    Variant("plain", plain=True),
    Variant("ours"),
    Variant("adamw foreach", adamw=(("foreach", True),)),
    Variant("adamw fused", adamw=(("fused", True),)),
    Variant("clip foreach", clip_foreach=True),
    Variant("use_cache=False", use_cache=False),
    Variant("set_to_none=False", set_to_none=False),
    Variant("gelu_pytorch_tanh", act="gelu_pytorch_tanh"),
    Variant("eager attention", attn="eager"),
    Variant("sdpa MATH", sdpa_backend="MATH"),
    Variant("sdpa FLASH", sdpa_backend="FLASH_ATTENTION"),
    Variant("torch.compile", compile=True),
    Variant("2 threads", threads=2),
    Variant("bf16 autocast", bf16=True),
    Variant("bitwise: foreach + set_to_none=False", adamw=(("foreach", True),), set_to_none=False),
    Variant("best: foreach + set_to_none=False + gelu", adamw=(("foreach", True),), set_to_none=False,
            act="gelu_pytorch_tanh"),
]}
# run on --screen-shapes only: slower at every shape tried, no faster beyond the noise, or compile ~1 min each
SCREEN = ("adamw fused", "clip foreach", "use_cache=False", "eager attention", "sdpa MATH", "torch.compile",
          "2 threads", "bf16 autocast")
ALWAYS_CHECK = ("bitwise: foreach + set_to_none=False", "best: foreach + set_to_none=False + gelu")


def train_config() -> dict:
    """config/config.yaml's tinystories.train block without the token budget."""
    block = yaml.safe_load((ROOT / "config/config.yaml").read_text())["tinystories"]["train"]
    return {k: v for k, v in block.items() if k != "tokens"}


def load_stream(path: str | None, vocab: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """The TinyStories training stream when it exists (tokens only matter for the loss check), else random ids."""
    p = Path(path) if path else ROOT / "resources/tinystories/tokens/train.npy"
    if p.exists():
        s = np.load(p, mmap_mode="r")
        if int(s.max()) < vocab:
            return s, str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return np.random.default_rng(seed).integers(0, vocab, 200_000).astype(np.uint16), "random ids"


def base_model(shape: str, vocab: int, context: int) -> torch.nn.Module:
    d_model, n_layers = SHAPES[shape]
    torch.manual_seed(0)
    return build_model("gpt2", vocab_size=vocab, d_model=d_model, n_layers=n_layers, n_heads=4, context=context,
                       eos_id=0)


class Runner:
    """One variant's model, optimiser and batch generator; `run(k)` trains k more steps."""

    def __init__(self, v: Variant, base: torch.nn.Module, stream: np.ndarray, cfg: TrainConfig, threads: int):
        self.v, self.cfg, self.stream, self.step = v, cfg, stream, 0
        self.threads = v.threads or threads
        self.model = copy.deepcopy(base)
        if v.attn != "sdpa":
            self.model.set_attn_implementation(v.attn)
        if v.act:  # the same function as one aten kernel; no parameter changes
            from transformers.activations import ACT2FN

            self.model.config.activation_function = v.act
            for block in self.model.transformer.h:
                block.mlp.act = ACT2FN[v.act]
        self.model.train()
        self.fwd = torch.compile(self.model) if v.compile else self.model
        if v.plain:
            self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        else:
            self.opt = make_optimizer(self.model, cfg)
            if v.adamw:  # make_optimizer's groups, lr, betas and decay; only the kernel changes
                groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in self.opt.param_groups]
                self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, **dict(v.adamw))
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.losses: list[float] = []
        self.fwd_kw = {} if v.use_cache is None else {"use_cache": v.use_cache}

    def _ctx(self):
        stack = contextlib.ExitStack()
        if self.v.sdpa_backend:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel(getattr(SDPBackend, self.v.sdpa_backend)))
        if self.v.bf16:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    def _loss(self, x, y):
        if self.v.plain:
            return self.fwd(input_ids=x, labels=x).loss
        if not self.fwd_kw:
            return lm_loss(self.fwd, x, y)
        logits = self.fwd(input_ids=x, **self.fwd_kw).logits  # lm_loss with the forward kwargs
        return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    def _plain_step(self) -> float:
        x, _ = random_batch(self.stream, self.cfg.batch_size, self.cfg.block_size, self.gen)
        self.opt.zero_grad()
        with self._ctx():
            loss = self._loss(x, None)
            loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        return loss.item()

    def _ours_step(self) -> float:  # train()'s loop body for grad_accum = 1, no hooks, CPU
        cfg = self.cfg
        lr = lr_at(self.step, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        x, y = random_batch(self.stream, cfg.batch_size, cfg.block_size, self.gen)
        with self._ctx():
            loss = self._loss(x, y)
            (loss / cfg.grad_accum).backward()
        value = loss.item()
        if not np.isfinite(value):
            raise FloatingPointError(f"{self.v.name}: loss {value} at step {self.step}")
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip, foreach=self.v.clip_foreach)
        self.opt.step()
        self.opt.zero_grad(set_to_none=self.v.set_to_none)
        return value

    def run(self, k: int) -> tuple[float, float]:
        """k steps; (wall seconds, CPU seconds of this process) per step."""
        torch.set_num_threads(self.threads)
        step = self._plain_step if self.v.plain else self._ours_step
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(k):
            self.losses.append(step())
            self.step += 1
        return (time.perf_counter() - t0) / k, (time.process_time() - c0) / k


def make_config(args) -> TrainConfig:
    return TrainConfig.from_dict({**train_config(), "max_steps": args.check, "seed": 0, "threads": args.threads})


def reference_losses(base, stream, cfg: TrainConfig) -> tuple[np.ndarray, float]:
    """train() itself for cfg.max_steps steps (the runners use the same cfg, so the same lr at every step)."""
    model = copy.deepcopy(base)
    ref_cfg = replace(cfg, eval_every=10**9, checkpoint_every=10**9, eval_blocks=1)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        curve = train(model, stream, stream[: 4 * (cfg.block_size + 1)], ref_cfg, d, progress=False)
        secs = time.perf_counter() - t0
    return curve["train_loss_nats"].to_numpy(), secs


def bench_shape(name: str, variants: list[Variant], stream, args) -> list[dict]:
    cfg = make_config(args)
    base = base_model(name, args.vocab, cfg.block_size)
    ref, ref_secs = reference_losses(base, stream, cfg)
    runners = [Runner(v, base, stream, cfg, args.threads) for v in variants]
    first = {r.v.name: r.run(args.warmup)[0] * args.warmup for r in runners}  # warm-up; holds compilation
    wall: dict[str, list[float]] = {r.v.name: [] for r in runners}
    cpu: dict[str, list[float]] = {r.v.name: [] for r in runners}
    active = list(runners)
    for i in range(args.rounds):
        for r in active[i % len(active):] + active[: i % len(active)]:
            w, c = r.run(args.block)
            wall[r.v.name].append(w)
            cpu[r.v.name].append(c)
        if i == 0:  # variants more than 2x slower than ours stop here
            active = [r for r in active if wall[r.v.name][0] <= 2 * wall["ours"][0]]
    ours_w, ours_c = np.median(wall["ours"]), np.median(cpu["ours"])
    for r in active:  # complete the loss check for the variants faster than ours (by more than 3%)
        faster = np.median(wall[r.v.name]) < ours_w / 1.03 or np.median(cpu[r.v.name]) < ours_c / 1.03
        if len(r.losses) < args.check and (faster or r.v.name in ALWAYS_CHECK):
            r.run(args.check - len(r.losses))
    tokens = cfg.batch_size * cfg.block_size
    plain_w, plain_c = np.median(wall["plain"]), np.median(cpu["plain"])
    rows = []
    for r in runners:
        w, c = float(np.median(wall[r.v.name])), float(np.median(cpu[r.v.name]))
        n = min(len(r.losses), args.check)
        diff = float(np.max(np.abs(np.asarray(r.losses[:n]) - ref[:n])))
        compile_s = max(0.0, first[r.v.name] - args.warmup * w) if r.v.compile else float("nan")
        rows.append(dict(
            bench="in_process", shape=name, variant=r.v.name, threads=r.threads, ms_per_step=1e3 * w,
            ms_iqr=1e3 * float(np.subtract(*np.percentile(wall[r.v.name], [75, 25]))), cpu_ms_per_step=1e3 * c,
            tokens_per_s=tokens / w, ratio_vs_plain=plain_w / w, ratio_vs_ours=ours_w / w,
            cpu_ratio_vs_plain=plain_c / c, cpu_ratio_vs_ours=ours_c / c, cpu_min_ms=1e3 * min(cpu[r.v.name]),
            cpu_min_ratio_vs_ours=min(cpu["ours"]) / min(cpu[r.v.name]), loss_steps=n,
            loss_max_abs_diff=float("nan") if r.v.plain else diff, loss_same=bool(not r.v.plain and diff <= SAME_TOL),
            compile_s=compile_s,
            net_s_per_1000_steps=STEPS_1000 * (ours_w - w) - (0.0 if np.isnan(compile_s) else compile_s),
            steps_timed=len(wall[r.v.name]) * args.block))
    w = ref_secs / args.check
    rows.append(dict(bench="in_process", shape=name, variant="train() end-to-end (not interleaved)",
                     threads=args.threads, ms_per_step=1e3 * w, tokens_per_s=tokens / w, ratio_vs_plain=plain_w / w,
                     ratio_vs_ours=ours_w / w, loss_steps=args.check, loss_max_abs_diff=0.0, loss_same=True,
                     steps_timed=args.check))
    return rows


# ---- malloc: separate processes ----------------------------------------------------------------------------


def tune_malloc() -> None:
    """The pipeline's settings (experiments.allocator: what every step runs with, through experiments.warm)."""
    from experiments import allocator

    if not allocator.tune():
        raise OSError("mallopt failed (not glibc?)")


PROCESS_VARIANTS = (("ours", False), ("ours", True), ("best: foreach + set_to_none=False + gelu", True))


def worker(args) -> None:
    """One process: a variant for warmup + --process-steps steps (after mallopt with --mallopt); one JSON line."""
    if args.mallopt:
        tune_malloc()
    torch.set_num_threads(args.threads)
    stream, _ = load_stream(args.stream, args.vocab)
    cfg = make_config(args)
    r = Runner(VARIANTS[args.worker_variant], base_model(args.worker, args.vocab, cfg.block_size), stream, cfg,
               args.threads)
    r.run(args.warmup)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w, c = r.run(args.process_steps)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    n = args.process_steps
    print(json.dumps(dict(wall=w, cpu=c, sys=(r1.ru_stime - r0.ru_stime) / n, minflt=(r1.ru_minflt - r0.ru_minflt) / n,
                          losses=r.losses)))


def bench_processes(name: str, stream_arg: str | None, args) -> list[dict]:
    """PROCESS_VARIANTS in separate processes (mallopt is process-wide), alternated, the order rotating."""
    res: dict[tuple, list[dict]] = {pv: [] for pv in PROCESS_VARIANTS}
    for i in range(args.process_rounds):
        for pv in PROCESS_VARIANTS[i % 3:] + PROCESS_VARIANTS[: i % 3]:
            cmd = [sys.executable, __file__, "--worker", name, "--worker-variant", pv[0], "--threads",
                   str(args.threads), "--warmup", str(args.warmup), "--check", str(args.check), "--vocab",
                   str(args.vocab), "--process-steps", str(args.process_steps)]
            cmd += (["--stream", stream_arg] if stream_arg else []) + (["--mallopt"] if pv[1] else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[pv].append(json.loads(out.strip().splitlines()[-1]))
    med = {pv: {m: float(np.median([d[m] for d in v])) for m in ("wall", "cpu", "sys", "minflt")}
           for pv, v in res.items()}
    ref = np.asarray(res[PROCESS_VARIANTS[0]][0]["losses"])
    o = med[PROCESS_VARIANTS[0]]
    rows = []
    for pv, m in med.items():
        diff = float(max(np.max(np.abs(np.asarray(d["losses"]) - ref)) for d in res[pv]))
        label = f"process: {pv[0]}" + (", experiments.allocator (mallopt)" if pv[1] else ", default malloc")
        rows.append(dict(bench="processes", shape=name, variant=label, threads=args.threads,
                         ms_per_step=1e3 * m["wall"], cpu_ms_per_step=1e3 * m["cpu"], sys_ms_per_step=1e3 * m["sys"],
                         minflt_per_step=m["minflt"], tokens_per_s=args.block_tokens / m["wall"],
                         ratio_vs_ours=o["wall"] / m["wall"], cpu_ratio_vs_ours=o["cpu"] / m["cpu"],
                         loss_steps=len(ref), loss_max_abs_diff=diff, loss_same=bool(diff <= SAME_TOL),
                         steps_timed=args.process_steps * args.process_rounds))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated subset of {list(SHAPES)}")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset (plain, ours always)")
    ap.add_argument("--screen-shapes", default="d32_L1,d128_L2", help=f"shapes that run {SCREEN}")
    ap.add_argument("--compile-shapes", default="d32_L1", help="shapes that run torch.compile (of --screen-shapes)")
    ap.add_argument("--process-shapes", default="d128_L2", help="shapes of the separate-process A/B (malloc)")
    ap.add_argument("--process-rounds", type=int, default=2, help="rounds of processes per shape")
    ap.add_argument("--process-steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds (one block per variant each)")
    ap.add_argument("--block", type=int, default=2, help="steps per block")
    ap.add_argument("--warmup", type=int, default=2, help="untimed first steps per variant (holds compilation)")
    ap.add_argument("--check", type=int, default=50, help="steps of the loss check against train()")
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--stream", default=None, help="training tokens .npy (default resources/tinystories/tokens/)")
    ap.add_argument("--quick", action="store_true", help="2 small shapes, 4 rounds, 20-step check, no compile")
    ap.add_argument("--out", default=str(ROOT / "bench/results/trainer.csv"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-variant", default="ours", help=argparse.SUPPRESS)
    ap.add_argument("--mallopt", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    if args.worker:
        return worker(args)
    names = ["plain", "ours"] + [n for n in args.variants.split(",") if n not in ("plain", "ours")]
    if args.quick:
        args.shapes, args.rounds, args.block, args.check = "d32_L1,d32_L4", 4, 2, 20
        args.compile_shapes, args.screen_shapes, args.process_shapes, args.process_rounds = "", "d32_L1", "d32_L4", 1
    unknown = (set(names) - set(VARIANTS)) | (set(args.shapes.split(",")) - set(SHAPES))
    if unknown:
        raise SystemExit(f"unknown variants/shapes {sorted(unknown)}; known: {list(VARIANTS)}, {list(SHAPES)}")
    torch.set_num_threads(args.threads)
    stream, source = load_stream(args.stream, args.vocab)
    cfg = make_config(args)
    args.block_tokens = cfg.batch_size * cfg.block_size
    rows, t_all = [], time.perf_counter()
    inductor_cache = tempfile.TemporaryDirectory(prefix="bench_trainer_inductor_")  # cold compiles, then removed
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache.name  # read when inductor first compiles
    for shape in args.shapes.split(","):
        t0 = time.perf_counter()
        chosen = [VARIANTS[n] for n in names
                  if (n != "torch.compile" or shape in args.compile_shapes.split(","))
                  and (n not in SCREEN or shape in args.screen_shapes.split(","))]
        rows += bench_shape(shape, chosen, stream, args)
        if shape in args.process_shapes.split(","):
            rows += bench_processes(shape, args.stream, args)
        print(f"{shape}: {time.perf_counter() - t0:.0f} s", flush=True)
    inductor_cache.cleanup()
    df = pd.DataFrame(rows).assign(model="gpt2 vocab 512 ctx 256 batch 4x256 fp32", data=source, cpu=cpu_model(),
                                   cpu_capability=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__,
                                   bench_threads=args.threads, load_avg_1min=os.getloadavg()[0])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    cols = ["shape", "variant", "ms_per_step", "cpu_ms_per_step", "tokens_per_s", "ratio_vs_plain", "ratio_vs_ours",
            "cpu_ratio_vs_ours", "cpu_min_ratio_vs_ours", "loss_steps", "loss_max_abs_diff", "compile_s",
            "net_s_per_1000_steps", "minflt_per_step"]
    with pd.option_context("display.width", 250, "display.max_rows", 500, "display.max_colwidth", 40):
        print(df[[c for c in cols if c in df]].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"cpu: {cpu_model()} ({torch.backends.cpu.get_cpu_capability()}), threads {args.threads}, "
          f"torch {torch.__version__}, data {source}, load avg {os.getloadavg()[0]:.1f}, "
          f"{time.perf_counter() - t_all:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
