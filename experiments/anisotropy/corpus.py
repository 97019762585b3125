"""Training corpora of the tiny per-language GPT-2s: one byte-level BPE per language and its token streams.

    python -m experiments.anisotropy.corpus --lang de --train train.txt --val val.txt --vocab-size 2048 \
        --tokenizer-out DIR --train-out train.npy --val-out val.npy  [--lang ru --train ... (repeat per language)]

The same calls as experiments.lm.tokenizer (train_bpe on the training documents; EOT = id 0 = bos/eos/pad) and
experiments.data.tokens (documents joined by EOT), for several languages in one process: the mini DAG pays
the interpreter and import start-up (~10 s on these machines) once instead of three times per language.
The isotropy texts and the decoding prefixes never enter train.txt / val.txt (experiments.anisotropy.texts).
"""
from __future__ import annotations

import argparse

from experiments.data.tokens import encode_documents
from experiments.files import atomic_save_numpy
from experiments.lm.tokenizer import iter_documents, save_tokenizer, train_bpe


def build(train: str, val: str, vocab_size: int, tokenizer_out: str, train_out: str, val_out: str,
          min_frequency: int = 2) -> dict:
    docs = list(iter_documents(train))
    if not docs:
        raise ValueError(f"{train}: no training documents (is the language's fortunes package installed?)")
    tok = train_bpe(docs, vocab_size, min_frequency)
    save_tokenizer(tok, tokenizer_out)
    tr = encode_documents(tok, docs, progress=False)
    va = encode_documents(tok, list(iter_documents(val)), progress=False)
    atomic_save_numpy(tr, train_out)
    atomic_save_numpy(va, val_out)
    return dict(vocab=len(tok), train_docs=len(docs), train_tokens=int(len(tr)), val_tokens=int(len(va)),
                chars_per_token=float(sum(map(len, docs)) / max(1, len(tr))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("lang", "train", "val", "tokenizer_out", "train_out", "val_out"):
        ap.add_argument(f"--{name.replace('_', '-')}", action="append", required=True)
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--min-frequency", type=int, default=2)
    args = ap.parse_args(argv)
    n = len(args.lang)
    if any(len(getattr(args, k)) != n for k in ("train", "val", "tokenizer_out", "train_out", "val_out")):
        ap.error("give --train, --val, --tokenizer-out, --train-out and --val-out once per --lang")
    for i, lang in enumerate(args.lang):
        info = build(args.train[i], args.val[i], args.vocab_size, args.tokenizer_out[i], args.train_out[i],
                     args.val_out[i], args.min_frequency)
        print(f"{lang}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in info.items()), flush=True)


if __name__ == "__main__":
    main()
