"""Sampling speed on SmolLM2-135M (CPU, fp32, one process): the occupational-bias plan, old loop vs new; ours vs HF.

1. The occupational-bias generation (experiments.occupational_bias.generate) on a reduced prompt plan:
   the old path (a copy of generate.py's loop and lm.sample's decoding at 83ddd70/b045d4c, below: one
   `sample` call per (prompt, chunk), the prompt repeated per sample, no shared prefix) vs the new one
   (all rows batched across prompts, shared prefix, rows leave the batch at their budget). Same model,
   plan, batch size, seed and threads; also the fraction of identical continuations.
2. Our sampler (lm.sample.sample_ids) vs HF `model.generate` (do_sample, top-k 50), batch 64, 32 new tokens,
   64 distinct prompts (no prefix sharing); both generate exactly 32 tokens per row. Also greedy: the
   fraction of rows identical to HF's greedy tokens.

Usage: python bench/sampling.py [--threads 1] [--identity-samples 20] [--names 50] [--name-samples 3]
Writes bench/results/sampling.csv (one row per measurement, with CPU model, threads, torch version).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model, load_smollm2, timed  # noqa: E402
from experiments.lm.sample import (  # noqa: E402
    _cache_kwarg,
    _draw,
    _last_logits_kwargs,
    _left_pad,
    _output_cache,
    _row_uniforms,
    decode_new,
    prompt_ids,
    sample_ids,
    sampling_probs,
)
from experiments.occupational_bias.generate import chunks, generate, new_tokens, prompt_seed  # noqa: E402
from experiments.occupational_bias.groups import identity_prompts, name_prompts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLING = dict(top_k=50, top_p=None, temperature=1.0, max_length=10, max_new_tokens=None, prefix="")


# ---- the old path (copy of HEAD's lm.sample decoding and generate.py loop) ---------------------------------


def _old_generate_batch(model, rows, uniforms, *, max_new_tokens, temperature, top_k, top_p, pad_id, eos_id):
    device = model.device
    ids, mask = _left_pad(rows, pad_id, device)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_kw = _cache_kwarg(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                **_last_logits_kwargs(model))
    cache = _output_cache(out)
    finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
    new = []
    for t in range(max_new_tokens):
        logits = out.logits[:, -1]
        tok = _draw(sampling_probs(logits, temperature, top_k, top_p), uniforms[:, t])
        tok = tok.masked_fill(finished, pad_id)
        new.append(torch.where(finished, -1, tok))
        if eos_id is not None:
            finished |= tok == eos_id
        if t == max_new_tokens - 1 or bool(finished.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position_ids = position_ids[:, -1:] + 1
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=position_ids, use_cache=True,
                    **{cache_kw: cache})
        cache = _output_cache(out)
    new = torch.stack(new, dim=1).tolist()
    return [[t for t in row if t >= 0] for row in new]


@torch.inference_mode()
def _old_sample(model, tok, prompts, *, max_new_tokens, temperature, top_k, top_p, batch_size, seed, first_index):
    rows = prompt_ids(tok, prompts)
    pad_id = next(i for i in (tok.pad_token_id, tok.eos_token_id, 0) if i is not None)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    results = [[] for _ in rows]
    for b in range(0, len(order), batch_size):
        batch = order[b:b + batch_size]
        uniforms = torch.stack([_row_uniforms(seed, first_index + i, max_new_tokens) for i in batch])
        new = _old_generate_batch(model, [rows[i] for i in batch], uniforms, max_new_tokens=max_new_tokens,
                                  temperature=temperature, top_k=top_k, top_p=top_p, pad_id=pad_id,
                                  eos_id=tok.eos_token_id)
        for i, ids in zip(batch, new):
            results[i] = ids
    decoded = [decode_new(tok, p, ids) for p, ids in zip(rows, results)]
    return [t for t, _ in decoded], [d for _, d in decoded]


def old_generate(model, tok, plan, *, model_id, max_length, max_new_tokens, prefix, top_k, top_p, temperature,
                 batch_size, chunk, seed):
    """generate.py's loop at HEAD: one sampler call per (prompt, chunk), no parts dir."""
    frames = []
    for i, p, total in plan:
        for k, n in chunks(total, chunk):
            budget = new_tokens(tok, p.prompt, max_length, max_new_tokens)
            texts, finished = _old_sample(model, tok, [prefix + p.prompt] * n, max_new_tokens=budget,
                                          temperature=temperature, top_k=top_k, top_p=top_p, batch_size=batch_size,
                                          seed=prompt_seed(seed, i), first_index=k * chunk)
            frames.append(pd.DataFrame({"model_id": model_id, **p.as_dict(),
                                        "sample_index": np.arange(k * chunk, k * chunk + n), "continuation": texts,
                                        "new_tokens_max": budget, "ended_at_eos": finished}))
    return pd.concat(frames, ignore_index=True)


# ---- benchmarks --------------------------------------------------------------------------------------------


def bench_plan(model, tok, args) -> list[dict]:
    ids = identity_prompts()
    names = name_prompts()[:: max(1, len(name_prompts()) // args.names)][: args.names]
    prompts = ids + names
    plan = [(i, p, args.name_samples if p.prompt_type == "name" else args.identity_samples)
            for i, p in enumerate(prompts)]
    n_rows = sum(n for _, _, n in plan)
    kw = dict(model_id="smollm2_135m", **SAMPLING, batch_size=args.batch_size, chunk=1000, seed=0)
    old, t_old = timed(lambda: old_generate(model, tok, plan, **kw))
    with tempfile.TemporaryDirectory() as d:
        new, t_new = timed(lambda: generate(model, tok, plan, parts_dir=Path(d) / "parts", **kw))
    same = float((old["continuation"].to_numpy() == new["continuation"].to_numpy()).mean())
    assert old.drop(columns="continuation").equals(new.drop(columns="continuation")), "rows differ"
    tokens = int(old["new_tokens_max"].sum())
    label = f"{len(ids)} identity x {args.identity_samples} + {len(names)} names x {args.name_samples}"
    return [dict(bench="ob_plan", variant="old per-prompt loop", setting=label, batch=args.batch_size, rows=n_rows,
                 seconds=t_old, completions_per_s=n_rows / t_old, tokens_per_s=tokens / t_old, ratio=1.0,
                 identical=1.0),
            dict(bench="ob_plan", variant="new batched + shared prefix", setting=label, batch=args.batch_size,
                 rows=n_rows, seconds=t_new, completions_per_s=n_rows / t_new, tokens_per_s=tokens / t_new,
                 ratio=t_old / t_new, identical=same)]


@torch.inference_mode()
def bench_hf(model, tok, args) -> list[dict]:
    texts = [p.prompt for p in identity_prompts() + name_prompts()][: args.hf_batch]
    n, b = args.hf_new, len(texts)
    ours, t_ours = timed(lambda: sample_ids(model, tok, texts, max_new_tokens=n, top_k=50, batch_size=b,
                                            stop_at_eos=False, progress=False, seed=0))
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True)
    gen_kw = dict(max_new_tokens=n, min_new_tokens=n, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    torch.manual_seed(0)
    hf, t_hf = timed(lambda: model.generate(**enc, do_sample=True, top_k=50, top_p=1.0, temperature=1.0, **gen_kw))
    assert all(len(r) == n for r in ours) and hf.shape[1] - enc["input_ids"].shape[1] == n
    g_ours, t_g_ours = timed(lambda: sample_ids(model, tok, texts, max_new_tokens=n, greedy=True, batch_size=b,
                                                stop_at_eos=False, progress=False))
    g_hf, t_g_hf = timed(lambda: model.generate(**enc, do_sample=False, **gen_kw))
    g_hf = g_hf[:, enc["input_ids"].shape[1]:].tolist()
    same = float(np.mean([a == h for a, h in zip(g_ours, g_hf)]))
    setting = f"{b} distinct prompts, {n} new tokens"
    common = dict(bench="vs_hf_generate", setting=setting, batch=b, rows=b)
    return [dict(common, variant="HF generate do_sample top_k 50", seconds=t_hf, tokens_per_s=b * n / t_hf,
                 ratio=1.0),
            dict(common, variant="ours sample_ids top_k 50", seconds=t_ours, tokens_per_s=b * n / t_ours,
                 ratio=t_hf / t_ours),
            dict(common, variant="HF generate greedy", seconds=t_g_hf, tokens_per_s=b * n / t_g_hf, ratio=1.0),
            dict(common, variant="ours greedy", seconds=t_g_ours, tokens_per_s=b * n / t_g_ours,
                 ratio=t_g_hf / t_g_ours, identical=same)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--identity-samples", type=int, default=20)
    ap.add_argument("--names", type=int, default=50, help="name prompts (evenly spread over the 199)")
    ap.add_argument("--name-samples", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256, help="rows per batch of the plan (config: 256)")
    ap.add_argument("--hf-batch", type=int, default=64)
    ap.add_argument("--hf-new", type=int, default=32)
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench/results/sampling.csv"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = load_smollm2()
    rows = bench_plan(model, tok, args) + ([] if args.skip_hf else bench_hf(model, tok, args))
    df = pd.DataFrame(rows).assign(model="SmolLM2-135M-Instruct fp32", cpu=cpu_model(), threads=args.threads,
                                   torch=torch.__version__)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    cols = ["bench", "variant", "setting", "batch", "seconds", "tokens_per_s", "ratio", "identical"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60):
        print(df[[c for c in cols if c in df]].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"cpu: {cpu_model()}, threads {args.threads}, torch {torch.__version__} -> {args.out}")


if __name__ == "__main__":
    main()
