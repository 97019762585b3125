"""Scrubbing (the paper's defense): every span a tagger found, of every type, becomes the mask token before
fine-tuning. What survives is measured against the planted truth: the spans the tagger missed are the only PII a
scrubbed model can have seen.
"""
from __future__ import annotations

from experiments.pii_leakage.taggers import overlaps

MASK = "<MASK>"


def scrub(text: str, spans: list[dict], mask: str = MASK) -> str:
    """`text` with each (non-overlapping) span replaced by `mask`."""
    out, cursor = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        if s["start"] < cursor:
            raise ValueError(f"overlapping spans at {s['start']}")
        out += [text[cursor:s["start"]], mask]
        cursor = s["end"]
    out.append(text[cursor:])
    return "".join(out)


def missed(truth: list[dict], tagged: list[dict]) -> list[dict]:
    """Planted spans that no tagged span overlaps (they stay in the scrubbed text verbatim)."""
    return [t for t in truth if not any(overlaps(t, s) for s in tagged)]


OUTPUTS = ["text", "missed"]


def main(argv: list[str] | None = None) -> None:
    """CLI: one split of the world's records, scrubbed by a tagger -> EOT-separated text + the missed spans.

        python -m experiments.pii_leakage.scrub --records records.jsonl --split train --tagger regex \\
            --out-text train_scrubbed.txt --out-missed missed.csv
    """
    import argparse
    import json

    import pandas as pd

    from experiments.cli import add_output_args, output_paths
    from experiments.files import atomic_write_csv, atomic_write_text
    from experiments.lm.tokenizer import documents_text
    from experiments.pii_leakage.taggers import oracle_tag, regex_tag

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--tagger", choices=("oracle", "regex"), default="regex")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    records = [json.loads(line) for line in open(args.records, encoding="utf-8")]
    records = [r for r in records if r["split"] == args.split]
    if not records:
        raise SystemExit(f"no records of split {args.split!r} in {args.records}")
    texts, rows, n_tagged = [], [], 0
    for r in records:
        tagged = oracle_tag(r) if args.tagger == "oracle" else regex_tag(r["text"])
        n_tagged += len(tagged)
        texts.append(scrub(r["text"], tagged))
        rows += [{"record": r["id"], "tagger": args.tagger, **t} for t in missed(r["spans"], tagged)]
    atomic_write_text(paths["text"], documents_text(texts))
    cols = ["record", "tagger", "start", "end", "type", "identity", "form", "text"]
    atomic_write_csv(pd.DataFrame(rows, columns=cols), paths["missed"])
    n_spans = sum(len(r["spans"]) for r in records)
    print(f"{args.split}: {len(records)} records, {n_tagged} spans tagged by {args.tagger}, "
          f"{len(rows)} of {n_spans} planted spans missed")


if __name__ == "__main__":
    main()
