"""Job extraction: continuation text -> occupation titles -> canonical jobs.

The paper ran Stanford CoreNLP NER and kept TITLE mentions, then merged titles with a replacement
table. CoreNLP needs Java and model jars, so the default extractor here is a gazetteer: the longest
title of `job_titles.csv` (or a user-supplied table with the same columns, e.g. the paper's 791-row
replacement file) at each word position, scanning left to right without overlaps. Both extractors
implement `Extractor.titles(texts) -> list[list[str]]`; `CoreNLPExtractor` talks to a CoreNLP server
for the paper-scale run.

CLI (adds titles / jobs / n_jobs columns to a completions CSV):
    python -m experiments.occupational_bias.extract --completions raw.csv --out completions.csv \
        [--kind gazetteer|corenlp] [--titles job_titles.csv] [--corenlp-url http://localhost:9000]
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Protocol

import pandas as pd

from experiments.errors import MissingArtifactError
from experiments.files import atomic_write_csv

WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
SEP = "|"


def load_title_table(path: str | Path | None = None) -> dict[str, str]:
    """title -> canonical job, lowercased; `#` lines are comments. Default: the package's job_titles.csv."""
    src = Path(path) if path else resources.files("experiments.occupational_bias") / "job_titles.csv"
    with open(src, encoding="utf-8") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        table = {" ".join(WORD.findall(r["title"].lower())): r["canonical"].strip().lower() for r in rows}
    table.pop("", None)
    return table


class Extractor(Protocol):
    def titles(self, texts: list[str]) -> list[list[str]]: ...


class GazetteerExtractor:
    """Longest-match title lookup over lowercased words; `canonical` applies the replacement table."""

    def __init__(self, table: dict[str, str] | None = None):
        self.table = table if table is not None else load_title_table()
        self.max_words = max(len(t.split()) for t in self.table)

    def matches(self, text: str) -> list[tuple[int, str]]:
        """(word index, title) of each match, left to right, longest first at each position, no overlaps."""
        words = WORD.findall(text.lower())
        out, i = [], 0
        while i < len(words):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                title = " ".join(words[i:i + n])
                if title in self.table:
                    out.append((i, title))
                    i += n
                    break
            else:
                i += 1
        return out

    def titles(self, texts: list[str]) -> list[list[str]]:
        return [[t for _, t in self.matches(text)] for text in texts]

    def leading_title(self, text: str, skip: tuple[str, ...] = ("n",)) -> str | None:
        """The title that starts the text (after an optional "n" of "a(n)"), or None."""
        m = self.matches(text)
        words = WORD.findall(text.lower())
        start = 1 if words and words[0] in skip else 0
        return m[0][1] if m and m[0][0] == start else None

    def canonical(self, title: str) -> str:
        return self.table.get(title, title)

    def leading_job(self, text: str) -> str:
        """The canonical job whose title starts the text (no "n" of "an" skipped), or "" (the exact check's
        definition: exact.py computes the same event from the model's logits)."""
        t = self.leading_title(text, skip=())
        return self.canonical(t) if t else ""


class CoreNLPExtractor:
    """TITLE mentions from a running Stanford CoreNLP server (paper-scale option; needs Java + CoreNLP)."""

    def __init__(self, url: str = "http://localhost:9000", table: dict[str, str] | None = None):
        self.url = url.rstrip("/")
        self.table = table if table is not None else load_title_table()
        try:
            urllib.request.urlopen(self.url + "/ping", timeout=5).read()
        except OSError as err:
            raise MissingArtifactError(
                f"Stanford CoreNLP server at {self.url}",
                "start one: java -mx4g -cp 'stanford-corenlp-4.2.0/*' "
                "edu.stanford.nlp.pipeline.StanfordCoreNLPServer -port 9000 (or use extraction.kind: gazetteer)",
                str(err)) from err

    def _one(self, text: str) -> list[str]:
        props = {"annotators": "tokenize,ssplit,pos,lemma,ner", "outputFormat": "json"}
        url = f"{self.url}/?properties={urllib.parse.quote(json.dumps(props))}"
        with urllib.request.urlopen(url, data=text.encode("utf-8"), timeout=60) as r:
            doc = json.load(r)
        return [m["text"].lower() for s in doc["sentences"] for m in s.get("entitymentions", [])
                if m.get("ner") == "TITLE"]

    def titles(self, texts: list[str]) -> list[list[str]]:
        return [self._one(t) for t in texts]

    def canonical(self, title: str) -> str:
        return self.table.get(title, title)


def make_extractor(kind: str, titles_path: str | None = None, url: str | None = None):
    table = load_title_table(titles_path)
    if kind == "gazetteer":
        return GazetteerExtractor(table)
    if kind == "corenlp":
        return CoreNLPExtractor(url or "http://localhost:9000", table)
    raise ValueError(f"unknown extractor {kind!r}: gazetteer | corenlp")


def add_jobs(df: pd.DataFrame, extractor) -> pd.DataFrame:
    """Columns titles (raw, '|'-joined), jobs (canonical, '|'-joined, '' if none) and n_jobs."""
    texts = df["continuation"].fillna("").astype(str).tolist()
    titles = extractor.titles(texts)
    out = df.copy()
    out["titles"] = [SEP.join(t) for t in titles]
    jobs = [[extractor.canonical(t) for t in ts] for ts in titles]
    out["jobs"] = [SEP.join(j) for j in jobs]
    out["n_jobs"] = [len(j) for j in jobs]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--completions", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", default="gazetteer", choices=["gazetteer", "corenlp"])
    ap.add_argument("--titles", default=None, help="title,canonical CSV (default: the package's job_titles.csv)")
    ap.add_argument("--corenlp-url", default=None)
    args = ap.parse_args(argv)
    df = pd.read_csv(args.completions, keep_default_na=False)
    out = add_jobs(df, make_extractor(args.kind, args.titles, args.corenlp_url))
    atomic_write_csv(out, args.out)
    print(f"{len(out)} completions: {(out['n_jobs'] > 0).mean():.1%} with a job, "
          f"{(out['n_jobs'] > 1).mean():.1%} with several -> {args.out}")


if __name__ == "__main__":
    main()
