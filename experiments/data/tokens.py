"""Token streams: a corpus encoded once into one flat array of ids, documents joined by EOT.

Training draws random windows from the stream (nanoGPT style); evaluation uses fixed,
non-overlapping blocks so every model sees the same validation tokens.

CLI:
    python -m experiments.data.tokens --corpus val.txt --tokenizer DIR --out val.npy
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np
from tqdm import tqdm

from experiments.files import atomic_save_numpy

# torch is imported in the functions that build tensors, so that encoding (encode_documents, the CLI) does not
# pay for it.
if TYPE_CHECKING:
    import torch


def encode_documents(tokenizer, docs: Iterable[str], batch_size: int = 1000, progress: bool = True) -> np.ndarray:
    """Encode documents and join them as [doc0, EOT, doc1, EOT, ...]; uint16 when the vocab fits."""
    eot = tokenizer.eos_token_id
    if eot is None:
        raise ValueError("tokenizer has no eos token; cannot separate documents")
    dtype = np.uint16 if len(tokenizer) < 2**16 else np.uint32
    parts: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            parts.append(np.asarray(ids + [eot], dtype=dtype))
        batch.clear()

    for doc in tqdm(docs, desc="tokenizing", unit="doc", disable=not progress, mininterval=2):
        batch.append(doc)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if not parts:
        raise ValueError("no documents to encode")
    return np.concatenate(parts)


def random_batch(stream: np.ndarray, batch_size: int, block: int,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows of `block`+1 tokens: inputs and next-token targets."""
    import torch

    if len(stream) <= block + 1:
        raise ValueError(f"token stream of {len(stream)} tokens is shorter than one block of {block + 1}")
    starts = torch.randint(0, len(stream) - block - 1, (batch_size,), generator=gen).numpy()
    windows = np.stack([stream[s : s + block + 1] for s in starts]).astype(np.int64)
    t = torch.from_numpy(windows)
    return t[:, :-1], t[:, 1:]


def eval_blocks(stream: np.ndarray, block: int, max_blocks: int | None = None, *,
                from_end: bool = False) -> torch.Tensor:
    """Non-overlapping blocks of `block` tokens, shape (n, block), from the start of the stream (or its end,
    so that a final evaluation does not reuse the blocks a training run monitored)."""
    import torch

    n = len(stream) // block
    if max_blocks is not None:
        n = min(n, max_blocks)
    if n == 0:
        raise ValueError(f"token stream of {len(stream)} tokens holds no block of {block}")
    part = stream[len(stream) - n * block:] if from_end else stream[: n * block]
    return torch.from_numpy(np.asarray(part, dtype=np.int64).reshape(n, block))


def document_starts(stream: np.ndarray, eot: int, block: int) -> np.ndarray:
    """Positions of the EOT tokens that open a window of `block`+1 tokens (the EOT doubles as the BOS)."""
    starts = np.flatnonzero(np.asarray(stream) == eot)
    starts = starts[starts + block + 1 <= len(stream)]
    if len(starts) == 0:
        raise ValueError(f"no document boundary (token {eot}) opens a window of {block + 1} tokens")
    return starts


def document_batch(stream: np.ndarray, starts: np.ndarray, batch_size: int, block: int,
                   gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` windows that each begin at a document start (its EOT as BOS), as prompts are fed at
    inference: absolute positions then mean the same thing in training and use."""
    import torch

    idx = torch.randint(0, len(starts), (batch_size,), generator=gen).numpy()
    windows = np.stack([stream[s : s + block + 1] for s in starts[idx]]).astype(np.int64)
    t = torch.from_numpy(windows)
    return t[:, :-1], t[:, 1:]


def document_eval_blocks(stream: np.ndarray, starts: np.ndarray, block: int, max_blocks: int) -> torch.Tensor:
    """The first `max_blocks` document-aligned windows of `block` tokens (fixed, for validation)."""
    import torch

    sel = starts[:max_blocks]
    return torch.from_numpy(np.stack([stream[s : s + block] for s in sel]).astype(np.int64))


def main(argv: list[str] | None = None) -> None:
    from experiments.lm.tokenizer import iter_documents, load_tokenizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True, help=".npy file")
    args = ap.parse_args(argv)
    tok = load_tokenizer(args.tokenizer)
    ids = encode_documents(tok, iter_documents(args.corpus))
    atomic_save_numpy(ids, args.out)
    print(f"{Path(args.corpus).name}: {len(ids):,} tokens -> {args.out}")


if __name__ == "__main__":
    main()
