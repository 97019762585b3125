"""Extraction attack, the sampling half (paper: N samples of the prompt " ", 15,000 x 256 tokens, top-k 40, from the
target and from the public base model): unconditional samples from BOS, tagged for PII.

The same step runs on every target and on the base model; experiments.pii_leakage.extraction_metrics then takes
leaked = target PII - base PII. A sample ends at EOS or at `max_new_tokens` (the mini models end a record with EOS,
so a sample is about one record). Seeded per sample (experiments.lm.sample: sample i draws from stream
(seed, i), so the samples do not depend on the batch size).

Taggers of the generated text (the tagger is in every row):
    regex      experiments.pii_leakage.taggers.regex_tag: any capitalised two- or three-word name and its later
               surname mentions, plus e-mail, phone, date and address patterns: an NER stand-in that also tags
               names no identity has (first and last name of two different people), which lowers precision as
               an NER's tags of invented names do
    gazetteer  exact matches of the world's known full names and surnames (every pool): the planted universe

Writes the samples (one row each: index, text, n_tokens, ended at EOS) and the PII mentions (one row per tagged
span: sample, start, end, type, text, tagger).

CLI:
    python -m experiments.pii_leakage.extract --model dir:MODEL --n-samples 2000 --max-new-tokens 64 --top-k 40 \\
        --tagger regex --identities identities.csv --seed 0 --threads 1 --out-samples samples.csv --out-pii pii.csv
"""
from __future__ import annotations

import argparse

OUTPUTS = ["samples", "pii"]
PII_COLUMNS = ["sample", "start", "end", "type", "text", "tagger"]


def tagger_for(name: str, identities_csv: str | None):
    """A function text -> spans for the named tagger."""
    from experiments.pii_leakage.taggers import Gazetteer, regex_tag

    if name == "regex":
        return regex_tag
    if name == "gazetteer":
        if not identities_csv:
            raise SystemExit("--tagger gazetteer needs --identities (the world's identities.csv)")
        import pandas as pd

        ids = pd.read_csv(identities_csv)
        return Gazetteer(list(ids["name"]) + list(ids["last"]))
    raise SystemExit(f"unknown tagger {name!r}; known: regex, gazetteer")


def tag_samples(texts: list[str], tag, tagger: str) -> list[dict]:
    return [{"sample": i, **{k: s[k] for k in ("start", "end", "type", "text")}, "tagger": tagger}
            for i, t in enumerate(texts) for s in tag(t)]


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
    from experiments.files import atomic_write_csv
    from experiments.lm.load import load_model
    from experiments.lm.sample import Row, decode_new, pad_id_of, sample_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model spec (a target or the base model)")
    ap.add_argument("--n-samples", type=int, required=True)
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--top-k", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--tagger", default="regex", choices=("regex", "gazetteer"))
    ap.add_argument("--identities", help="the world's identities.csv (tagger gazetteer)")
    add_runtime_args(ap)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    if args.n_samples < 1 or args.max_new_tokens < 1:
        ap.error("--n-samples and --max-new-tokens must be >= 1")
    tag = tagger_for(args.tagger, args.identities)
    device = setup_runtime(args)
    model, tok = load_model(args.model, device=device, attn_implementation="sdpa")
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    rows = [Row((start,), (args.seed, i), args.max_new_tokens) for i in range(args.n_samples)]
    new = sample_rows(model, rows, progress=True, desc="extraction samples", pad_id=pad_id_of(tok),
                      eos_id=tok.eos_token_id, top_k=args.top_k, batch_size=args.batch_size)
    decoded = [decode_new(tok, [start], ids) for ids in new]
    texts = [t for t, _ in decoded]
    samples = pd.DataFrame({"sample": range(len(texts)), "text": texts, "n_tokens": [len(n) for n in new],
                            "ended_at_eos": [d for _, d in decoded]})
    pii = pd.DataFrame(tag_samples(texts, tag, args.tagger), columns=PII_COLUMNS)
    atomic_write_csv(samples, paths["samples"])
    atomic_write_csv(pii, paths["pii"])
    person = pii[pii["type"] == "PERSON"]
    print(f"{args.model}: {len(texts)} samples, {int(samples['n_tokens'].sum())} tokens, "
          f"{len(person)} PERSON mentions ({person['text'].nunique()} unique) by {args.tagger}", flush=True)


if __name__ == "__main__":
    main()
