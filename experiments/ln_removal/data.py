"""Paper-scale token streams for LN removal: OpenWebText tokenized with the GPT-2 tokenizer.

Reads the hub dataset from the local HF cache only (experiments.data.hub.load_hub_text); when it is not
there this fails at once with MissingArtifactError naming the dataset and the download command (nothing
can be downloaded on the offline machines). Split as Baroni et al.: a random `--val-fraction` (0.0005) of
documents, seed 2357, is validation; documents are joined by EOT (experiments.data.tokens.encode_documents).
The Pile evaluation sets are not prepared here (paper-scale extension).

CLI: python -m experiments.ln_removal.data --dataset Skylion007/openwebtext --tokenizer hub:gpt2 \
        [--max-docs N] --out-train train.npy --out-val val.npy
"""
from __future__ import annotations

import argparse

import numpy as np

from experiments.data.hub import check_dataset_available, load_hub_text
from experiments.data.tokens import encode_documents
from experiments.files import atomic_save_numpy


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--revision", default=None)
    ap.add_argument("--tokenizer", required=True, help="model spec whose tokenizer is used (hub:gpt2)")
    ap.add_argument("--max-docs", type=int, default=None)
    ap.add_argument("--val-fraction", type=float, default=0.0005)
    ap.add_argument("--seed", type=int, default=2357)
    ap.add_argument("--out-train", required=True)
    ap.add_argument("--out-val", required=True)
    args = ap.parse_args(argv)
    check_dataset_available(args.dataset, None if args.revision in (None, "none") else args.revision)
    from transformers import AutoTokenizer

    from experiments.lm.load import check_available
    from experiments.lm.spec import parse_spec

    check_available(args.tokenizer)
    spec = parse_spec(args.tokenizer)
    tok = AutoTokenizer.from_pretrained(spec.target, revision=spec.revision)
    docs = load_hub_text(args.dataset, "train", revision=args.revision, limit=args.max_docs)
    rng = np.random.default_rng(args.seed)
    is_val = rng.random(len(docs)) < args.val_fraction
    atomic_save_numpy(encode_documents(tok, [d for d, v in zip(docs, is_val) if v]), args.out_val)
    atomic_save_numpy(encode_documents(tok, [d for d, v in zip(docs, is_val) if not v]), args.out_train)
    print(f"{args.dataset}: {int(is_val.sum())} val / {int((~is_val).sum())} train documents")


if __name__ == "__main__":
    main()
