"""GPU throughput and peak memory of the paper-scale code paths, on random-init models (no hub).

1. GPT-2 small training tokens/s (experiments.lm.train's loss, AdamW and bf16 autocast) at micro-batch
   8 x 1024 and 16 x 1024 (the LN-removal micro-batch of config/paper.yaml), with peak GPU memory.
2. Sampling throughput of experiments.lm.sample at GPT-2 small: prompts of 6 tokens, 5 new tokens, top-k 50,
   batch 256 (the occupational-bias setting: 396K completions), fp32 (what load_model gives) and bf16 weights.
3. Peak memory of one training step of the largest TinyStories grid model (GPT-Neo d1024 x 12 layers,
   context 512, vocabulary 50257) at micro-batches 80 (config/paper.yaml), 40 and 20, to calibrate
   experiments.check_paper's estimate (printed beside each measurement).

Usage: python bench/gpu_throughput.py [--out results.json] [--skip-neo]
       python bench/gpu_throughput.py --device cpu --train-batch 1 --train-steps 1 --sample-prompts 256 --skip-neo
                                        (a quick check that the script runs; CPU numbers are not GPU numbers)
Numbers are for the device it runs on (see "device" in the output).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.lm.build import build_model  # noqa: E402
from experiments.lm.memory import KNOWN_ARCHS, Arch, train_memory  # noqa: E402
from experiments.lm.sample import sample_ids  # noqa: E402
from experiments.lm.train import TrainConfig, autocast, lm_loss, make_optimizer  # noqa: E402
from experiments.smoke_paper import EOT_ID, VOCAB, gpt2_shaped_tokenizer, short_prompts  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else None


def empty_cache() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.empty_cache()


def gpt2_small():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB)).to(DEVICE)


def train_steps(model, batch: int, seq: int, steps: int, warmup: int = 2) -> dict:
    """Time `steps` optimiser steps (after `warmup`) of the train() inner loop; returns tok/s and peak GB."""
    cfg = TrainConfig(max_steps=steps, batch_size=batch, block_size=seq)
    opt = make_optimizer(model, cfg)
    model.train()
    x = torch.randint(0, VOCAB, (batch, seq), device=DEVICE)
    y = torch.randint(0, VOCAB, (batch, seq), device=DEVICE)
    reset_peak()
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with autocast(DEVICE):
            loss = lm_loss(model, x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    dt = time.perf_counter() - t0
    out = {"batch": batch, "seq": seq, "steps": steps, "tokens_per_s": batch * seq * steps / dt,
           "s_per_step": dt / steps, "peak_gb": peak_gb()}
    del opt
    model.zero_grad(set_to_none=True)
    empty_cache()
    return out


def sampling(model, tok, n_prompts: int, batch: int, dtype: torch.dtype) -> dict:
    model = model.to(dtype).eval()
    prompts = short_prompts(tok, n_prompts)
    sample_ids(model, tok, prompts[:batch], max_new_tokens=5, top_k=50, batch_size=batch, progress=False)  # warm-up
    reset_peak()
    sync()
    t0 = time.perf_counter()
    new = sample_ids(model, tok, prompts, max_new_tokens=5, top_k=50, batch_size=batch, seed=1, progress=False)
    sync()
    dt = time.perf_counter() - t0
    assert all(len(r) == 5 or r[-1] == tok.eos_token_id for r in new)
    rate = n_prompts / dt
    return {"dtype": str(dtype).removeprefix("torch."), "prompts": n_prompts, "prompt_tokens": 6, "new_tokens": 5,
            "top_k": 50, "batch": batch, "completions_per_s": rate, "minutes_for_396k": 396_000 / rate / 60,
            "peak_gb": peak_gb()}


def neo_memory(batches: list[int]) -> list[dict]:
    rows = []
    arch = Arch("gpt_neo", 1024, 12, 16, VOCAB, 512)
    for b in batches:
        empty_cache()
        model = build_model("gpt_neo", vocab_size=VOCAB, d_model=1024, n_layers=12, n_heads=16, context=512,
                            eos_id=EOT_ID).to(DEVICE)
        est = train_memory(arch, b, 512).total / 2**30
        try:
            r = train_steps(model, b, 512, steps=2, warmup=1)
            r["status"] = "ok"
        except torch.OutOfMemoryError as exc:
            r = {"batch": b, "seq": 512, "status": f"OOM: {str(exc).splitlines()[0][:160]}"}
        r["estimate_gb"] = est
        rows.append(r)
        del model
        empty_cache()
    return rows


def main() -> None:
    global DEVICE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--train-batch", type=int, nargs="+", default=[8, 16], help="micro-batches (x 1024 tokens)")
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--sample-prompts", type=int, default=256 * 16)
    ap.add_argument("--sample-batch", type=int, default=256)
    ap.add_argument("--skip-neo", action="store_true", help="skip the TinyStories d1024 x 12 memory sweep")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.device != "auto":
        DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch sees no CUDA device")
    cpu = f"cpu ({torch.get_num_threads()} threads)"
    res = {"device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else cpu,
           "torch": torch.__version__}
    print(json.dumps(res), flush=True)
    from experiments.tinystories.world import StoryWorld, WorldConfig
    texts = [s.text for s in StoryWorld(WorldConfig.from_dict({})).generate(60, seed=0)]
    tok = gpt2_shaped_tokenizer(texts)

    model = gpt2_small()
    arch = KNOWN_ARCHS["gpt2"]
    res["gpt2_train"] = []
    for b in args.train_batch:
        r = train_steps(model, b, 1024, steps=args.train_steps, warmup=2 if DEVICE.type == "cuda" else 0)
        r["estimate_gb"] = train_memory(arch, b, 1024).total / 2**30
        res["gpt2_train"].append(r)
        print(json.dumps(r), flush=True)
    res["gpt2_sample"] = []
    for dtype in (torch.float32, torch.bfloat16):
        r = sampling(model, tok, args.sample_prompts, args.sample_batch, dtype)
        res["gpt2_sample"].append(r)
        print(json.dumps(r), flush=True)
    del model
    empty_cache()
    if not args.skip_neo:
        res["neo_d1024_l12_memory"] = neo_memory([80, 40, 20])
        for r in res["neo_d1024_l12_memory"]:
            print(json.dumps(r), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
