"""Contrastive search and beam search speed (CPU, fp32, one process): ours (experiments.lm.search) vs baselines.

1. Contrastive search (k, alpha): ours (batched, KV cache, one forward of the B*k candidates per step) vs the
   naive reference `contrastive_search_reference` (one prompt at a time, one full forward from scratch per
   candidate per step). Same model, prompts, k, alpha, threads; also the fraction of rows with identical tokens.
2. Beam search (num_beams, length_penalty 1, early_stopping False = HF's defaults): ours vs HF `model.generate`
   (num_beams, do_sample=False) on the same left-padded batch; also the fraction of rows with identical tokens.

Models: a random-init tiny GPT-2 (experiments.lm.arch.tiny_model, d128 x 4 layers, SmolLM2's vocabulary) and
SmolLM2-135M-Instruct (loaded as bench/sampling.py does). Prompts: the SmolLM2 tokenizer's ids of a few English
sentences of different lengths (so batches are padded). No EOS stop (every row generates --new tokens), so both
sides generate the same number of tokens.

Sizes: contrastive search on SmolLM2 defaults to 16 new tokens so that the naive reference stays near a minute
(4 prompts x (1 + 16 x 4) full forwards); the ratio grows with the output length (the reference's forwards grow
with the sequence, ours stay one token long).

Usage: python bench/search.py [--threads 1] [--prompts 4] [--new 32] [--smollm-new 16] [--k 4] [--alpha 0.6]
       [--beams 4]
Writes bench/results/search.csv (one row per measurement, with CPU model, threads, torch version).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model, load_smollm2  # noqa: E402
from experiments.lm.arch import tiny_model  # noqa: E402
from experiments.lm.sample import _left_pad, pad_id_of, prompt_ids  # noqa: E402
from experiments.lm.search import beam_search, contrastive_search, contrastive_search_reference  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "The weather today is",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "My favourite recipe for a quick dinner",
    "Scientists announced on Tuesday that a new species of frog had been found in the rainforest, and",
    "The history of the city goes back",
    "In the beginning of the twentieth century, most people in the country worked on farms; today",
    "Here is a short list of things to",
    "She opened the door and saw",
]


def timed(fn):
    """(result, wall seconds, CPU seconds of this process); CPU seconds are the steadier number on a shared
    machine when --threads is 1."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bench_contrastive(name, model, prompts, pad_id, new, args) -> list[dict]:
    kw = dict(k=args.k, alpha=args.alpha, max_new_tokens=new, eos_id=None)
    contrastive_search(model, prompts[:1], pad_id=pad_id, **dict(kw, max_new_tokens=2))  # warm-up
    ours, t_ours, c_ours = timed(lambda: contrastive_search(model, prompts, pad_id=pad_id, batch_size=len(prompts),
                                                            **kw))
    ref, t_ref, c_ref = timed(lambda: contrastive_search_reference(model, prompts, **kw))
    same = sum(a == b for a, b in zip(ours, ref)) / len(prompts)
    tokens = sum(len(r) for r in ours)
    setting = f"{len(prompts)} prompts ({min(map(len, prompts))}-{max(map(len, prompts))} tokens), {new} new, " \
              f"k={args.k}, alpha={args.alpha}"
    common = dict(bench="contrastive", model=name, setting=setting, prompts=len(prompts), new_tokens=new)
    return [dict(common, variant="naive reference (full forward per candidate)", seconds=t_ref, cpu_seconds=c_ref,
                 tokens_per_s=tokens / t_ref, ratio=1.0, cpu_ratio=1.0),
            dict(common, variant="ours (batched, KV cache)", seconds=t_ours, cpu_seconds=c_ours,
                 tokens_per_s=tokens / t_ours, ratio=t_ref / t_ours, cpu_ratio=c_ref / c_ours, identical=same)]


@torch.inference_mode()
def bench_beam(name, model, prompts, pad_id, args) -> list[dict]:
    n = args.new
    beam_search(model, prompts[:1], num_beams=args.beams, max_new_tokens=2, pad_id=pad_id, eos_id=None)  # warm-up
    ours, t_ours, c_ours = timed(lambda: beam_search(model, prompts, num_beams=args.beams, max_new_tokens=n,
                                                     pad_id=pad_id, eos_id=None, batch_size=len(prompts)))
    ids, mask = _left_pad(prompts, pad_id, model.device)
    # eos_token_id=[] : no EOS stop (as ours with eos_id=None); HF's defaults otherwise (length_penalty 1, early
    # stopping False)
    gen = dict(max_new_tokens=n, num_beams=args.beams, do_sample=False, pad_token_id=pad_id, eos_token_id=[])
    hf, t_hf, c_hf = timed(lambda: model.generate(input_ids=ids, attention_mask=mask, **gen))
    hf = hf[:, ids.shape[1]:].tolist()
    same = sum(a == b for a, b in zip(ours, hf)) / len(prompts)
    tokens = len(prompts) * n
    setting = f"{len(prompts)} prompts, {n} new, {args.beams} beams"
    common = dict(bench="beam", model=name, setting=setting, prompts=len(prompts), new_tokens=n)
    return [dict(common, variant="HF generate num_beams", seconds=t_hf, cpu_seconds=c_hf, tokens_per_s=tokens / t_hf,
                 ratio=1.0, cpu_ratio=1.0),
            dict(common, variant="ours beam_search", seconds=t_ours, cpu_seconds=c_ours, tokens_per_s=tokens / t_ours,
                 ratio=t_hf / t_ours, cpu_ratio=c_hf / c_ours, identical=same)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=4, help=f"prompts per run (<= {len(TEXTS)})")
    ap.add_argument("--new", type=int, default=32, help="new tokens per prompt (beam search; contrastive on tiny)")
    ap.add_argument("--smollm-new", type=int, default=16,
                    help="new tokens per prompt of contrastive search on SmolLM2 (the naive reference's cost)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=0.6)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--skip-smollm", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench/results/search.csv"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    smol, tok = load_smollm2()
    prompts = prompt_ids(tok, TEXTS[:args.prompts])
    pad_id = pad_id_of(tok)
    tiny = tiny_model("gpt2", vocab_size=len(tok), d_model=128, n_layers=4, n_heads=4, n_ctx=256, seed=0)
    models = [("tiny GPT-2 d128x4 random fp32", tiny, args.new)] + ([] if args.skip_smollm else
                                                                     [("SmolLM2-135M-Instruct fp32", smol,
                                                                       args.smollm_new)])
    rows = []
    for name, model, new in models:
        rows += bench_contrastive(name, model, prompts, pad_id, new, args)
        rows += bench_beam(name, model, prompts, pad_id, args)
    df = pd.DataFrame(rows).assign(cpu=cpu_model(), threads=args.threads, torch=torch.__version__)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    cols = ["bench", "model", "variant", "setting", "seconds", "cpu_seconds", "tokens_per_s", "ratio", "cpu_ratio",
            "identical"]
    with pd.option_context("display.width", 220, "display.max_colwidth", 60):
        print(df[[c for c in cols if c in df]].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"cpu: {cpu_model()}, threads {args.threads}, torch {torch.__version__} -> {args.out}")


if __name__ == "__main__":
    main()
