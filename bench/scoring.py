"""Scoring speed (CPU, fp32, one process): shared-prefix scoring vs one forward per candidate.

For 10 / 100 / 500 candidates per prefix, two kinds of input: MCQ-like (a ~150-token story, candidates
1-5 tokens: words and short phrases) and PII-like (a ~150-token record, candidates 2-10 tokens: names,
emails, phone numbers). Two models: SmolLM2-135M (the pipeline's dequantised GGUF, as bench/sampling.py
loads it) and a random-init tiny GPT-2 (d128 x 4 layers, SmolLM2's tokenizer and vocabulary).

- baseline: lm.score.continuation_logprobs as it was before shared-prefix scoring: prefix +
  candidate concatenated, right-padded, one forward per batch of pairs (lm.score._full_forward_scores).
- ours: lm.score.prefix_logprobs: one forward of the prefix, candidates batched on its KV cache.

Same model, inputs, batch size and threads; `max_abs_diff` is the largest |ours - baseline| summed log-prob
(nats) over the candidates, and the token counts must agree.

The baseline costs ~2 s per candidate on SmolLM2 (1 thread): with --baseline-max m (default 100) it is
timed on the first m candidates only and its seconds scaled by n / m (its cost is linear in the number of
candidates: same prefix, batches of the same size, candidates drawn from the same distribution); the CSV
says so (`baseline_timed`, `extrapolated`). --baseline-max 0 times every candidate.

Usage: python bench/scoring.py [--threads 1] [--sizes 10 100 500] [--models smollm2 tiny_gpt2] [--batch-size 32]
                               [--baseline-max 100]
Writes bench/results/scoring.csv (one row per measurement, with CPU model, threads, torch version).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model, load_smollm2, timed  # noqa: E402
from experiments.lm.arch import tiny_model  # noqa: E402
from experiments.lm.sample import pad_id_of  # noqa: E402
from experiments.lm.score import (  # noqa: E402
    ContinuationScore,
    _encode_pairs,
    _full_forward_scores,
    prefix_logprobs,
)

ROOT = Path(__file__).resolve().parents[1]

STORY = ("Once upon a time, in a small village at the edge of a great forest, there lived a girl named Lily. "
         "Every morning she walked to the river with her little brother Tom to fetch water for their mother. "
         "One day, as the sun rose over the hills, Lily saw something shining between the stones. She bent "
         "down, pushed the wet leaves away and found a tiny golden key. Tom asked what it could open, and "
         "Lily said she did not know, but she wanted to find out. They looked behind the old mill, under the "
         "bridge and inside the hollow tree, but nothing had a lock that small. At last they went home and "
         "showed the key to their grandmother, who smiled and said it belonged to a box she had lost long "
         "ago. She opened the box and inside there was a")
RECORD = ("Customer record 4471, updated on 12 March 2021 by the support team. The customer called about a "
          "delayed parcel that was sent from the warehouse in Leeds to the address on file, 14 Elm Road, "
          "Bristol, BS1 4QT. The parcel number is 55-2190-8834 and the order was placed online with the card "
          "ending in 0921. The customer asked us to call back in the afternoon and to send the new delivery "
          "date by email as well. Notes: polite, second call this week, prefers email. Preferred contact for "
          "this customer, as given on the call: the customer's name is Mary Jones, and her email address is")
WORDS = ("ball dog cat tree house river key box bird apple flower book hat cake star boat moon toy red blue big "
         "small old new happy sad bright dark little golden wooden shiny soft").split()
FIRST = "Mary John Anna David Sarah James Emma Peter Laura Tom Alice Mark Julia Paul Grace".split()
LAST = "Jones Smith Brown Taylor Wilson Evans Walker Wright Green Hall Wood Clarke Hughes".split()
DOMAINS = "example.com mail.co.uk post.org inbox.net".split()


def candidates(tok, kind: str, n: int, seed: int = 0) -> list[str]:
    """n distinct candidates: MCQ-like 1-5 token phrases or PII-like 2-10 token names / emails / numbers."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    lo, hi = (1, 5) if kind == "mcq" else (2, 10)
    while len(out) < n:
        if kind == "mcq":
            c = " " + " ".join(rng.choice(WORDS, size=rng.integers(1, 6)))
        else:
            f, la, d = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
            c = [f" {f.lower()}.{la.lower()}@{d}", f" {f[0].lower()}{la.lower()}{rng.integers(10, 99)}@{d}",
                 f" {f} {la}", f" 07{rng.integers(100, 999)} {rng.integers(100000, 999999)}"][rng.integers(4)]
        if lo <= len(tok(c, add_special_tokens=False)["input_ids"]) <= hi:
            out[c] = None
    return list(out)


# ---- the baseline: lm.score.continuation_logprobs before shared-prefix scoring ------------------------------
# (its code is kept unchanged in lm.score as `_full_forward_scores`, the path for prefixes that do not repeat)


@torch.inference_mode()
def old_continuation_logprobs(model, tokenizer, prefixes: list[str], continuations: list[str],
                              batch_size: int = 32) -> list[ContinuationScore]:
    pairs = _encode_pairs(tokenizer, prefixes, continuations)
    return _full_forward_scores(model, pairs, pad_id_of(tokenizer), batch_size)


# ---- benchmarks --------------------------------------------------------------------------------------------


def load(name: str):
    model, tok = load_smollm2()
    if name == "tiny_gpt2":
        model = tiny_model("gpt2", vocab_size=len(tok), d_model=128, n_layers=4, n_heads=4, n_ctx=512, seed=0)
        return model, tok, "tiny GPT-2 d128x4 random init fp32"
    return model.eval(), tok, "SmolLM2-135M-Instruct fp32"


def bench_model(name: str, args) -> list[dict]:
    model, tok, label = load(name)
    prefixes = {"mcq": STORY, "pii": RECORD}
    warm = [" a", " big dog"]  # first-call overheads out of the timings
    old_continuation_logprobs(model, tok, ["Once upon a time"] * 2, warm, batch_size=args.batch_size)
    prefix_logprobs(model, tok, "Once upon a time", warm, batch_size=args.batch_size)
    rows = []
    for kind, prefix in prefixes.items():
        n_prefix = len(_encode_pairs(tok, [prefix], [""])[0][0])
        for n in args.sizes:
            cands = candidates(tok, kind, n)
            n_tok = [len(c) for _, c in _encode_pairs(tok, [prefix] * n, cands)]
            m = min(n, args.baseline_max) if args.baseline_max > 0 else n
            base, t_timed = timed(lambda: old_continuation_logprobs(model, tok, [prefix] * m, cands[:m],
                                                                    batch_size=args.batch_size))
            t_base = t_timed * n / m
            ours, t_ours = timed(lambda: prefix_logprobs(model, tok, prefix, cands, batch_size=args.batch_size))
            assert [s.n_tokens for s in ours] == n_tok and [s.n_tokens for s in base] == n_tok[:m], \
                "token counts differ"
            diff = max(abs(a.logprob - b.logprob) for a, b in zip(ours, base))
            setting = f"{kind}: prefix {n_prefix} tokens, candidates {min(n_tok)}-{max(n_tok)} tokens"
            common = dict(bench="scoring", model=label, kind=kind, candidates=n, prefix_tokens=n_prefix,
                          candidate_tokens_mean=float(np.mean(n_tok)), setting=setting, batch=args.batch_size)
            rows += [dict(common, variant="baseline: one forward per candidate", seconds=t_base,
                          candidates_per_s=n / t_base, ratio=1.0, baseline_timed=m, extrapolated=m < n),
                     dict(common, variant="ours: shared prefix", seconds=t_ours, candidates_per_s=n / t_ours,
                          ratio=t_base / t_ours, max_abs_diff=diff)]
            print(f"{label} {setting} n={n}: baseline {t_base:.2f}s{' (from %d)' % m if m < n else ''} "
                  f"ours {t_ours:.2f}s "
                  f"({t_base / t_ours:.1f}x, max |diff| {diff:.1e})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500], help="candidates per prefix")
    ap.add_argument("--models", nargs="+", default=["smollm2", "tiny_gpt2"], choices=["smollm2", "tiny_gpt2"])
    ap.add_argument("--batch-size", type=int, default=32, help="rows per forward, both paths (lm.score's default)")
    ap.add_argument("--baseline-max", type=int, default=100,
                    help="time the baseline on at most this many candidates and scale (0: all)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/scoring.csv"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = [r for name in args.models for r in bench_model(name, args)]
    df = pd.DataFrame(rows).assign(cpu=cpu_model(), threads=args.threads, torch=torch.__version__)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    cols = ["model", "kind", "candidates", "prefix_tokens", "variant", "seconds", "candidates_per_s", "ratio",
            "max_abs_diff", "baseline_timed"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 40):
        print(df[[c for c in cols if c in df]].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print(f"cpu: {cpu_model()}, threads {args.threads}, torch {torch.__version__}, "
          f"wall {time.perf_counter() - t0:.0f}s -> {args.out}")


if __name__ == "__main__":
    main()
