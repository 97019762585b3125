"""Byte-level BPE tokenizers trained with `tokenizers`, saved as HF fast tokenizers.

A small vocabulary keeps tiny models fast; the end-of-text token is id 0 so the
GPT-2 config's bos/eos ids can be set from the tokenizer, not left at 50256.

CLI:
    python -m experiments.lm.tokenizer --corpus train.txt --kind bpe --vocab-size 1024 --out DIR
    python -m experiments.lm.tokenizer --corpus train.txt --kind pretrained \
        --pretrained hub:EleutherAI/gpt-neo-125M --out DIR
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from experiments.files import atomic_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# `tokenizers` / `transformers` are imported where used, so that importing EOT or iter_documents stays cheap
# (AutoTokenizer pulls in torch).
EOT = "<|endoftext|>"


def documents_text(docs: Iterable[str], separator: str = EOT) -> str:
    """Documents as one text, each followed by a `separator` line (what iter_documents reads back)."""
    return "".join(f"{d}\n{separator}\n" for d in docs)


def iter_documents(path: str | Path, separator: str = EOT) -> Iterator[str]:
    """Yield documents from a text file whose documents are separated by `separator` lines."""
    buf: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip() == separator:
                if buf:
                    yield "".join(buf).strip("\n")
                buf = []
            else:
                buf.append(line)
    if buf:
        yield "".join(buf).strip("\n")


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; EOT is special token 0 and doubles as bos/eos/pad."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOT], show_progress=False
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOT, eos_token=EOT, pad_token=EOT, unk_token=None)
    tok.model_max_length = 1_000_000
    return tok


def save_tokenizer(tok: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    with atomic_dir(out_dir) as tmp:
        tok.save_pretrained(tmp)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def pretrained_tokenizer(spec: str) -> PreTrainedTokenizerFast:
    """The tokenizer of a model spec (hub id from the local cache, or a directory); fails early if missing."""
    from transformers import AutoTokenizer

    from experiments.hfcache import hf_hub_cache, hf_offline
    from experiments.lm.load import check_available
    from experiments.lm.spec import parse_spec

    ms = parse_spec(spec)
    if ms.kind not in ("hub", "dir"):
        raise ValueError(f"a pretrained tokenizer comes from a hub: or dir: spec, not {spec!r}")
    check_available(ms)
    if ms.kind == "dir":
        return load_tokenizer(ms.target)
    tok = AutoTokenizer.from_pretrained(ms.target, revision=ms.revision, cache_dir=str(hf_hub_cache()),
                                        local_files_only=hf_offline())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, nargs="+",
                    help="text file(s), documents separated by <|endoftext|> lines")
    ap.add_argument("--kind", choices=["bpe", "pretrained"], default="bpe")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--min-frequency", type=int, default=2)
    ap.add_argument("--pretrained", default="none", help="model spec whose tokenizer is used (kind pretrained)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.kind == "pretrained":
        tok = pretrained_tokenizer(args.pretrained)
    else:
        tok = train_bpe((d for path in args.corpus for d in iter_documents(path)), args.vocab_size,
                        args.min_frequency)
    save_tokenizer(tok, args.out)
    print(f"tokenizer: {len(tok)} tokens -> {args.out}")


if __name__ == "__main__":
    main()
