"""Paper scale: ECHR records in the planted world's file format (notes pii.md §1.1-1.2), so every later step runs
unchanged.

The paper's data: `ecthr_cases` (now `AUEB-NLP/ecthr_cases`; train, test and validation concatenated), each case's
`facts` list flattened so that one record is one fact paragraph, shuffled with a fixed seed (the paper's 42 through its
own helper; here Python's random.Random(seed): the same protocol, not the same permutation), split by position into
train 0-45 %, test 45-55 % and validation ("shadow") 55-100 %. The shadow split is written as this pipeline's
`public` split: records neither the target nor the attacks train on, whose names fill the queries' other mentions.

PII: an NER tagger's spans over every record are the truth (the paper: Flair ontonotes-large, 18 classes, PERSON
for the attacks, all classes for scrubbing; the paper tagged only the first 10,000 training records, here all).
Identities are the distinct PERSON strings: `member` when the string occurs in a training record (dup = the number of
training records holding it), else `nonmember` when it occurs in a test record, else `public`. Every PERSON span is
form "full" (an NER does not link a surname to its full name).

CLI:
    python -m experiments.pii_leakage.echr --dataset AUEB-NLP/ecthr_cases --ner flair --split 0.45 0.10 0.45 \\
        --seed 42 --device auto --out-records records.jsonl --out-identities identities.csv --out-truth truth.csv \\
        --out-train train.txt --out-test test.txt --out-public public.txt
"""
from __future__ import annotations

import argparse
import importlib.util
import random
from collections import Counter
from typing import Callable

from experiments.errors import MissingArtifactError
from experiments.pii_leakage.world import OUTPUTS, SPLITS, write_data

FLAIR_MODEL = "flair/ner-english-ontonotes-large"
HF_SPLITS = ("train", "test", "validation")
# world.SPLITS, cut by position in this order: 0-45 %, 45-55 %, 55-100 % (the paper's shadow split is `public`)


def flatten(cases: list[dict]) -> list[str]:
    """One record per non-empty fact paragraph."""
    return [p.strip() for c in cases for p in c["facts"] if p and p.strip()]


def split_records(paragraphs: list[str], shares: tuple[float, float, float], seed: int) -> dict[str, list[str]]:
    """Shuffle (seeded) and cut by position into the train / test / public shares (normalised to sum 1)."""
    order = list(paragraphs)
    random.Random(seed).shuffle(order)
    total = sum(shares)
    a = round(len(order) * shares[0] / total)
    b = a + round(len(order) * shares[1] / total)
    return {"train": order[:a], "test": order[a:b], "public": order[b:]}


def flair_tagger(device: str) -> Callable[[list[str]], list[list[dict]]]:
    if importlib.util.find_spec("flair") is None:
        raise MissingArtifactError("Python package 'flair' (the paper's NER)", "pip install flair, and put "
                                   f"{FLAIR_MODEL} in the HF cache (hf download {FLAIR_MODEL}); or set "
                                   "pii_leakage.data.ner: regex", detail="it is not installed")
    import flair
    import torch
    from flair.data import Sentence
    from flair.models import SequenceTagger

    flair.device = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    tagger = SequenceTagger.load(FLAIR_MODEL)

    def tag(texts: list[str]) -> list[list[dict]]:
        sentences = [Sentence(t) for t in texts]
        tagger.predict(sentences, mini_batch_size=32)
        return [[{"start": s.start_position, "end": s.end_position, "type": s.tag, "text": s.text}
                 for s in sent.get_spans("ner")] for sent in sentences]
    return tag


def regex_tagger(texts: list[str]) -> list[list[dict]]:
    from experiments.pii_leakage.taggers import regex_tag

    return [regex_tag(t) for t in texts]


def build(by_split: dict[str, list[str]], spans: dict[str, list[list[dict]]]) -> tuple[list[dict], list[dict]]:
    """(identities, records) in the world's format from the records' texts and their tagged spans."""
    in_split = {s: Counter() for s in SPLITS}
    for split in SPLITS:
        for rec_spans in spans[split]:
            in_split[split].update({x["text"] for x in rec_spans if x["type"] == "PERSON"})
    names = sorted(set().union(*in_split.values()))
    identities, ident_of = [], {}
    for i, name in enumerate(names):
        pool = "member" if in_split["train"][name] else "nonmember" if in_split["test"][name] else "public"
        parts = name.split()
        ident = {"id": f"p{i:06d}", "pool": pool, "dup": in_split["train"][name] if pool == "member" else 0,
                 "first": " ".join(parts[:-1]), "last": parts[-1] if parts else name, "email": "", "phone": "",
                 "address": "", "informal": False, "name": name}
        identities.append(ident)
        ident_of[name] = ident["id"]
    records = []
    for split in SPLITS:
        for j, (text, rec_spans) in enumerate(zip(by_split[split], spans[split])):
            out = [{**x, "identity": ident_of.get(x["text"]) if x["type"] == "PERSON" else None,
                    "form": "full" if x["type"] == "PERSON" else x["type"].lower()} for x in rec_spans]
            first = next((x["identity"] for x in out if x["identity"]), None)
            records.append({"id": f"{split}-{j:06d}", "split": split, "style": "echr", "text": text,
                            "identity": first, "spans": out})
    return identities, records


def main(argv: list[str] | None = None) -> None:
    from tqdm import tqdm

    from experiments.cli import add_output_args, optional, output_paths
    from experiments.data.hub import load_hub_rows

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="NAME[@revision] in the HF cache")
    ap.add_argument("--ner", choices=("flair", "regex"), default="flair")
    ap.add_argument("--split", type=float, nargs=3, default=[0.45, 0.10, 0.45])
    ap.add_argument("--max-records", type=optional(int), default=None, help="cap after shuffling (smoke runs)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=512, help="records per NER call (progress granularity)")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    name, _, rev = args.dataset.partition("@")
    cases = [r for split in HF_SPLITS for r in load_hub_rows(name, split, revision=rev or None, columns=["facts"])]
    paragraphs = flatten(cases)
    if args.max_records is not None:
        random.Random(args.seed).shuffle(paragraphs)
        paragraphs = paragraphs[: args.max_records]
    by_split = split_records(paragraphs, tuple(args.split), args.seed)
    tag = flair_tagger(args.device) if args.ner == "flair" else regex_tagger
    spans = {}
    for split in SPLITS:
        texts = by_split[split]
        spans[split] = [s for i in tqdm(range(0, len(texts), args.batch), desc=f"NER {split}")
                        for s in tag(texts[i:i + args.batch])]
    identities, records = build(by_split, spans)
    write_data(paths, records, identities)
    counts = Counter(s["type"] for r in records for s in r["spans"])
    pools = Counter(i["pool"] for i in identities)
    print(f"{len(cases)} cases -> {len(paragraphs)} records {({s: len(v) for s, v in by_split.items()})}; "
          f"spans per class {dict(counts)}; identities per pool {dict(pools)} ({args.ner} tagger)")


if __name__ == "__main__":
    main()
