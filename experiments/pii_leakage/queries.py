"""Attack queries for reconstruction and inference (paper §1.4 of the notes): a training record with one PERSON
mention of its subject as the target, cut into the prefix before the target and the suffix after it.

The paper masks every other PERSON mention (later target mentions included) and fills the masks with RoBERTa's
top-1; there is no RoBERTa offline, so here every other mention of the target identity (its surname, and its
e-mail address, which spells the name in this world) is replaced by the same kind of span of a seeded public
identity (a deviation, recorded in each query row: `filled`). Other PII is left as it is, as in the paper.

One query per member identity: its first full-name mention in a training record (records in id order; a member
whose only records write its name in lower case has none), so the duplication levels have about the same number of
queries; `max_per_level` caps them, and `max_queries` keeps a seeded sample of that many (in record order; the
paper scale's data has hundreds of duplication levels).
"""
from __future__ import annotations

import random

FILL_FIELD = {"surname": "last", "informal": "name", "full": "name"}  # a PERSON span's form -> identity column


def build_queries(records: list[dict], identities: list[dict], *, seed: int = 0,
                  max_per_level: int | None = None, max_queries: int | None = None) -> list[dict]:
    """Queries {record, identity, dup, target, prefix, sep, suffix, filled} for the member identities: the record
    reads prefix + sep + target + suffix (sep: the space before the target, kept with it, as byte-level BPE merges
    a word with the space before it), with the other mentions of the target filled in suffix."""
    by_id = {i["id"]: i for i in identities}
    public = sorted((i for i in identities if i["pool"] == "public"), key=lambda i: i["id"])
    if not public:
        raise ValueError("no public identities to fill the other mentions with")
    rng = random.Random(seed)
    seen: set[str] = set()
    per_level: dict[int, int] = {}
    out = []
    for r in sorted((r for r in records if r["split"] == "train"), key=lambda r: r["id"]):
        spans = r["spans"]
        target = next((s for s in spans if s["type"] == "PERSON" and s["form"] == "full"), None)
        if target is None or target["identity"] in seen:
            continue
        ident = by_id[target["identity"]]
        if ident["pool"] != "member":
            continue
        level = int(ident["dup"])
        if max_per_level is not None and per_level.get(level, 0) >= max_per_level:
            continue
        seen.add(ident["id"])
        per_level[level] = per_level.get(level, 0) + 1
        filler = rng.choice(public)
        text, cursor, parts, filled = r["text"], 0, [], 0
        suffix_spans = sorted((s for s in spans if s["start"] >= target["end"]), key=lambda s: s["start"])
        for s in suffix_spans:
            value = None
            if s["identity"] == ident["id"] and s["type"] == "PERSON":
                value = filler[FILL_FIELD[s["form"]]]
                value = value.lower() if s["form"] == "informal" else value
            elif s["identity"] == ident["id"] and s["type"] == "EMAIL":
                value = filler["email"]
            if value is not None:
                parts += [text[max(cursor, target["end"]):s["start"]], value]
                cursor = s["end"]
                filled += 1
        parts.append(text[max(cursor, target["end"]):])
        prefix = text[:target["start"]]
        sep = " " if prefix.endswith(" ") else ""  # the space goes with the name, as the tokenizer merged it
        prefix = prefix[: len(prefix) - len(sep)]
        if any(s["identity"] == ident["id"] and s["type"] in ("PERSON", "EMAIL") and s["end"] <= target["start"]
               for s in spans):
            raise ValueError(f"record {r['id']}: a mention of the target before its first full name")
        out.append({"record": r["id"], "identity": ident["id"], "dup": level, "target": target["text"],
                    "prefix": prefix, "sep": sep, "suffix": "".join(parts), "filled": filled})
    if max_queries is not None and len(out) > max_queries:
        keep = set(random.Random(f"{seed}:sample").sample(range(len(out)), max_queries))
        out = [q for k, q in enumerate(out) if k in keep]
    return out


OUTPUTS = ["queries"]


def main(argv: list[str] | None = None) -> None:
    """CLI: python -m experiments.pii_leakage.queries --records records.jsonl --identities identities.csv \\
           [--max-per-level N] --seed 0 --out-queries queries.csv"""
    import argparse
    import json

    import pandas as pd

    from experiments.cli import add_output_args, optional, output_paths
    from experiments.files import atomic_write_csv

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", required=True)
    ap.add_argument("--identities", required=True)
    ap.add_argument("--max-per-level", type=optional(int), default=None, help="queries per level (none: all)")
    ap.add_argument("--max-queries", type=optional(int), default=None, help="a seeded sample of this many (none: all)")
    ap.add_argument("--seed", type=int, default=0)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    records = [json.loads(line) for line in open(args.records, encoding="utf-8")]
    identities = pd.read_csv(args.identities, keep_default_na=False).to_dict("records")
    queries = build_queries(records, identities, seed=args.seed, max_per_level=args.max_per_level,
                            max_queries=args.max_queries)
    atomic_write_csv(pd.DataFrame(queries), paths["queries"])
    levels = pd.Series([q["dup"] for q in queries]).value_counts().sort_index().to_dict()
    print(f"{len(queries)} queries; per duplication level {levels}")


if __name__ == "__main__":
    main()
