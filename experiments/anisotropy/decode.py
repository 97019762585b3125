"""The decoding comparison (Su & Collier §3.4): one generator, held-out prefixes, six methods.

    python -m experiments.anisotropy.decode --spec dir:resources/models/smollm2-135m-instruct \
        --model-id smollm2_135m --prompts prompts.jsonl --n-prompts 12 --prefix-tokens 16 --new-tokens 32 \
        --methods '[{"id": "greedy", "kind": "greedy"}, {"id": "contrastive", "kind": "contrastive", "k": 5,
                     "alpha": 0.6}, ...]' --seeds 0 1 2 --out generations.csv

Prefixes: each candidate text is tokenised by the generator (no special tokens); the first n_prompts with at
least prefix_tokens + new_tokens tokens are used: prefix = its first prefix_tokens tokens, human reference =
the next new_tokens tokens (the paper: 40-token WebText prefixes, human tokens 40-240 as the reference). The
generator continues the prefix ids for up to new_tokens tokens and stops at its EOS (as the paper's
early_stop: the EOS and what follows are cut).

Methods (kind): greedy; beam (num_beams; HF generate's beam search, experiments.lm.search); sample (top_k,
top_p, typical_p, temperature: experiments.lm.sample, one draw per prefix and seed, seeds as the paper's 3
samples); contrastive (k, alpha: SimCTG's contrastive search, experiments.lm.search). Deterministic methods
have seed -1. Output rows: method, kind, seed, prompt_id, prefix, continuation, reference (the human tokens),
n_new_tokens, ended_eos; plus rows with method "human" whose continuation is the reference.
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from experiments.anisotropy.texts import read_jsonl
from experiments.cli import add_runtime_args, setup_runtime
from experiments.files import atomic_write_csv

KINDS = ("greedy", "beam", "sample", "contrastive")
HUMAN = "human"


def select_prompts(tok, rows: list[dict], n: int, prefix_tokens: int, new_tokens: int) -> list[dict]:
    """The first n candidates with enough tokens: prompt_id, ids (prefix), prefix and reference texts."""
    out = []
    for r in rows:
        ids = tok(r["text"], add_special_tokens=False)["input_ids"]
        if len(ids) < prefix_tokens + new_tokens:
            continue
        pre, ref = ids[:prefix_tokens], ids[prefix_tokens:prefix_tokens + new_tokens]
        out.append(dict(prompt_id=r["id"], ids=list(pre), prefix=tok.decode(pre),
                        reference=continuation(tok, pre, ref)))
        if len(out) == n:
            break
    return out


def continuation(tok, prefix_ids: list[int], new_ids: list[int]) -> str:
    """The text new_ids add after the prefix (decoded in context, so leading spaces survive)."""
    head = tok.decode(prefix_ids)
    full = tok.decode(list(prefix_ids) + list(new_ids))
    return full[len(head):] if full.startswith(head) else tok.decode(new_ids)


STREAMS_PER_METHOD = 1_000_000  # sampler m, seed s, prompt j draws from stream (s, m * 1e6 + j): independent


def run_method(model, tok, prompts: list[dict], method: dict, seeds: list[int], new_tokens: int,
               batch_size: int, method_index: int = 0) -> list[tuple[int, int, list[int]]]:
    """(seed, prompt index, new ids) per generation. Each sampler has its own random streams (as the paper's
    separate runs; with shared streams nucleus 0.95 and typical 0.95 drew the same tokens 33 times in 36)."""
    from experiments.lm.sample import Row, pad_id_of, sample_rows
    from experiments.lm.search import beam_search, contrastive_search

    ids = [p["ids"] for p in prompts]
    pad, eos = pad_id_of(tok), tok.eos_token_id
    kind = method["kind"]
    if kind == "greedy":
        rows = [Row(tuple(i), None, new_tokens) for i in ids]
        return [(-1, j, n) for j, n in enumerate(sample_rows(model, rows, pad_id=pad, eos_id=eos,
                                                             batch_size=batch_size))]
    if kind == "beam":
        out = beam_search(model, ids, num_beams=method["num_beams"], max_new_tokens=new_tokens, pad_id=pad,
                          eos_id=eos, batch_size=max(1, batch_size // method["num_beams"]))
        return [(-1, j, n) for j, n in enumerate(out)]
    if kind == "contrastive":
        out = contrastive_search(model, ids, k=method["k"], alpha=method["alpha"], max_new_tokens=new_tokens,
                                 pad_id=pad, eos_id=eos, batch_size=max(1, batch_size // method["k"]))
        return [(-1, j, n) for j, n in enumerate(out)]
    if kind == "sample":
        off = method_index * STREAMS_PER_METHOD
        rows = [Row(tuple(i), (s, off + j), new_tokens) for s in seeds for j, i in enumerate(ids)]
        new = sample_rows(model, rows, pad_id=pad, eos_id=eos, batch_size=batch_size,
                          temperature=method.get("temperature", 1.0), top_k=method.get("top_k"),
                          top_p=method.get("top_p"), typical_p=method.get("typical_p"))
        return [(r.stream[0], r.stream[1] - off, n) for r, n in zip(rows, new)]
    raise ValueError(f"unknown decoding kind {kind!r}; known: {KINDS}")


def generate(model, tok, prompts: list[dict], methods: list[dict], seeds: list[int], new_tokens: int,
             batch_size: int) -> pd.DataFrame:
    rows = []
    for p in prompts:
        rows.append(dict(method=HUMAN, kind=HUMAN, seed=-1, prompt_id=p["prompt_id"], prefix=p["prefix"],
                         continuation=p["reference"], reference=p["reference"], n_new_tokens=new_tokens,
                         ended_eos=False, seconds=0.0))
    for index, m in enumerate(methods):
        t0 = time.time()
        out = run_method(model, tok, prompts, m, seeds, new_tokens, batch_size, index)
        sec = time.time() - t0
        print(f"{m['id']}: {len(out)} generations, {sum(len(n) for *_, n in out)} tokens, {sec:.1f} s", flush=True)
        for seed, j, new in out:
            done = bool(new) and new[-1] == tok.eos_token_id
            body = new[:-1] if done else new
            p = prompts[j]
            rows.append(dict(method=m["id"], kind=m["kind"], seed=seed, prompt_id=p["prompt_id"], prefix=p["prefix"],
                             continuation=continuation(tok, p["ids"], body), reference=p["reference"],
                             n_new_tokens=len(body), ended_eos=done, seconds=sec / max(1, len(out))))
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--prompts", required=True, help="prompts.jsonl (experiments.anisotropy.texts)")
    ap.add_argument("--n-prompts", type=int, required=True)
    ap.add_argument("--prefix-tokens", type=int, required=True)
    ap.add_argument("--new-tokens", type=int, required=True)
    ap.add_argument("--methods", required=True, help="JSON list of {id, kind, ...} (config decoding.methods)")
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="sampling seeds (the paper: 3 samples)")
    ap.add_argument("--batch-size", type=int, default=16, help="rows per forward (beam / contrastive: / width)")
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--out", required=True)
    add_runtime_args(ap)
    args = ap.parse_args(argv)
    device = setup_runtime(args)

    from experiments.lm.load import load_model

    model, tok = load_model(args.spec, dtype=args.dtype, device=device)
    prompts = select_prompts(tok, read_jsonl(args.prompts), args.n_prompts, args.prefix_tokens, args.new_tokens)
    if len(prompts) < args.n_prompts:
        print(f"only {len(prompts)} of {args.n_prompts} prefix candidates have {args.prefix_tokens} + "
              f"{args.new_tokens} tokens", flush=True)
    df = generate(model, tok, prompts, json.loads(args.methods), args.seeds, args.new_tokens, args.batch_size)
    df.insert(0, "generator", args.model_id)
    atomic_write_csv(df, args.out)
    print(f"{len(prompts)} prefixes, {len(df)} rows -> {args.out}")


if __name__ == "__main__":
    main()
