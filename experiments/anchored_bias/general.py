"""Side effect of an edit on general text: the mean next-token loss on a small sample of real human text.

    python -m experiments.anchored_bias.general --lang en --n-texts 16 --seed 0 --out general_text.txt

writes a seeded sample of one language's Debian `fortunes` texts (experiments.data.fortunes), documents separated
by EOT lines. Without the package it writes an empty file and says so: analyse then records the side effect as
"not run: missing data" (the edits themselves do not need it).

`mean_nll` (used by analyse under each edit): every text is BOS + its first `max_tokens` tokens; the loss is
pooled over all predicted tokens of all texts (sum of -log p / number of tokens), in nats. The notes' protocol
asks for "perplexity on a small general-text sample" (exp of this).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from experiments.files import atomic_write_text
from experiments.lm.tokenizer import documents_text, iter_documents


def read_texts(path: str | Path) -> list[str]:
    return [d for d in iter_documents(path) if d.strip()]


def mean_nll(adapter, tokenizer, texts: list[str], max_tokens: int, batch_size: int) -> tuple[float, int]:
    """(pooled mean next-token loss in nats, number of predicted tokens); (nan, 0) without texts. Scored by the
    shared scorer (lm.score: BOS as the one shared prefix, each text's tokens as its continuation)."""
    from experiments.anchored_bias.prompts import bos_id
    from experiments.lm.score import token_pair_logprobs

    if not texts:
        return float("nan"), 0
    bos = bos_id(tokenizer)
    pairs = [([bos], tokenizer.encode(t, add_special_tokens=False)[:max_tokens]) for t in texts]
    scores = token_pair_logprobs(adapter.model, pairs, bos, batch_size)
    count = sum(s.n_tokens for s in scores)
    return (-sum(s.logprob for s in scores) / count if count else math.nan), count


def main(argv: list[str] | None = None) -> None:
    from experiments.data.fortunes import probe_language, read_language, seeded_sample

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--n-texts", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    status = probe_language(args.lang)
    if not status.available:
        atomic_write_text(args.out, "")
        print(f"general text: {status.note}")
        return
    texts = [t.text for t in seeded_sample(read_language(args.lang), args.n_texts, args.seed)]
    atomic_write_text(args.out, documents_text(texts))
    print(f"general text: {len(texts)} {args.lang} fortunes -> {args.out}")


if __name__ == "__main__":
    main()
