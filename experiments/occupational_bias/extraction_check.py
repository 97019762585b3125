"""The extractor against a human reader: precision and recall on completions it did not write.

`data/smollm2_extraction_labels.csv` holds 300 SmolLM2 completions (sampled from a mini run, seeded), each
labelled by the developer reading it: the job title(s) the continuation states as what the person works as,
canonicalised with the paper's merges (`gold_jobs`, "|"-joined, "" = none), an `ambiguous` flag and a note
(see data/README.md for the protocol). The extractor never saw the labels; the labels were written without
looking at the extractor's output.

Per completion, gold set G and extracted set E (canonical jobs): TP = |G & E|, FP = |E - G|, FN = |G - E|.
Rows (long): scope (all | unambiguous: items not flagged ambiguous | labour: only jobs of the US labour table),
job ("" = micro-average over all jobs),
tp, fp, fn, precision, precision_low, precision_high, recall, recall_low, recall_high (Wilson 95%), n_items.

CLI: python -m experiments.occupational_bias.extraction_check --labels data/...csv --out extraction_check.csv
        [--kind gazetteer --titles job_titles.csv]
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.files import atomic_write_csv
from experiments.occupational_bias.extract import make_extractor
from experiments.occupational_bias.labour import load_labour_table
from experiments.stats import wilson

LABELS_CSV = Path(__file__).resolve().parent / "data" / "smollm2_extraction_labels.csv"
SEP = "|"


def _set(s: str) -> set[str]:
    return {j.strip() for j in str(s).split(SEP) if j.strip()}


def compare(gold: list[str], extracted: list[str]) -> pd.DataFrame:
    """Per (item, job): tp / fp / fn counts (one row per job of G | E of each item)."""
    rows = []
    for i, (g, e) in enumerate(zip(gold, extracted)):
        g, e = _set(g), _set(e)
        for j in g | e:
            rows.append(dict(item=i, job=j, tp=int(j in g and j in e), fp=int(j in e and j not in g),
                             fn=int(j in g and j not in e)))
    return pd.DataFrame(rows, columns=["item", "job", "tp", "fp", "fn"])


def scores(pairs: pd.DataFrame, n_items: int, scope: str) -> pd.DataFrame:
    """Micro (job "") and per-job precision / recall with Wilson CIs."""
    def one(job, d):
        tp, fp, fn = int(d["tp"].sum()), int(d["fp"].sum()), int(d["fn"].sum())
        p = tp / (tp + fp) if tp + fp else np.nan
        r = tp / (tp + fn) if tp + fn else np.nan
        plo, phi = wilson(tp, tp + fp)
        rlo, rhi = wilson(tp, tp + fn)
        return dict(scope=scope, job=job, tp=tp, fp=fp, fn=fn, precision=p, precision_low=plo, precision_high=phi,
                    recall=r, recall_low=rlo, recall_high=rhi, n_items=n_items)
    rows = [one("", pairs)] + [one(j, d) for j, d in pairs.groupby("job", sort=True)]
    return pd.DataFrame(rows)


def extraction_table(labels: pd.DataFrame, extractor) -> pd.DataFrame:
    """scores() for scope all, unambiguous (items not flagged) and labour (all items, only the pairs whose job
    belongs to the US labour table: what the labour comparison counts)."""
    texts = labels["continuation"].fillna("").astype(str).tolist()
    extracted = ["|".join(extractor.canonical(t) for t in ts) for ts in extractor.titles(texts)]
    out = []
    for scope, keep in (("all", np.ones(len(labels), bool)), ("unambiguous", labels["ambiguous"].to_numpy() == 0)):
        gold = labels.loc[keep, "gold_jobs"].fillna("").astype(str).tolist()
        ext = [e for e, k in zip(extracted, keep) if k]
        out.append(scores(compare(gold, ext), int(keep.sum()), scope))
    labour = {m for ms in load_labour_table()["member_list"] for m in ms}
    pairs = compare(labels["gold_jobs"].fillna("").astype(str).tolist(), extracted)
    out.append(scores(pairs[pairs["job"].isin(labour)], len(labels), "labour"))
    return pd.concat(out, ignore_index=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default=str(LABELS_CSV))
    ap.add_argument("--kind", default="gazetteer", choices=["gazetteer", "corenlp"])
    ap.add_argument("--titles", default=None)
    ap.add_argument("--corenlp-url", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    labels = pd.read_csv(args.labels, keep_default_na=False)
    table = extraction_table(labels, make_extractor(args.kind, args.titles, args.corenlp_url))
    atomic_write_csv(table, args.out, allow_nan=["precision", "precision_low", "precision_high", "recall",
                                                 "recall_low", "recall_high"])
    micro = table[table["job"] == ""].set_index("scope")
    for scope, r in micro.iterrows():
        print(f"{scope}: {r.n_items} completions; precision {r.precision:.3f} [{r.precision_low:.3f}, "
              f"{r.precision_high:.3f}], recall {r.recall:.3f} [{r.recall_low:.3f}, {r.recall_high:.3f}]")
    errors = table[(table["scope"] == "all") & (table["job"] != "") & ((table["fp"] > 0) | (table["fn"] > 0))]
    print("jobs with errors:", Counter({r.job: r.fp + r.fn for r in errors.itertuples()}).most_common(20))


if __name__ == "__main__":
    main()
