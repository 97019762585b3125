"""Cloze consistency probes: scoring them fairly under a model, and their empirical chance level.

Each probe (eval_sets.make_cloze_items) offers the planted fact word and distractors of the same word
class from the corpus's own world. Scoring (`score_items`):
  * options are compared only at equal length: the options whose token count under the model's
    tokenizer differs from the answer's are dropped (an item left with one option is not scored), so a
    summed log-prob cannot prefer an option for being shorter; on the kept options the choice by summed
    log-prob equals the choice by log-prob per token (`lm.score.multiple_choice`, normalization "sum");
  * theoretical chance is the mean of 1 / (options kept) over scored items.

Empirical chance (`python -m experiments.tinystories.cloze`): a unigram and a bigram model fitted on the
same training token stream answer the same items through the same scorer. They know word frequencies
(and the previous token) but not the story, so their accuracy is what the options' frequencies alone
give away; a model is consistent only as far as it beats them.

CLI: python -m experiments.tinystories.cloze --tokenizer DIR --train-tokens train.npy --cloze cloze.jsonl \
        --eval-config '{"n_cloze": 400, "bootstrap": 1000}' --scale mini --out eval/chance.csv
"""
from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from experiments.files import atomic_write_csv
from experiments.lm.score import multiple_choice
from experiments.stats import bootstrap_ci

NGRAM_ADD_K = 0.1  # add-k smoothing of the n-gram baselines (1M training tokens: every option is seen often)


def equal_length(tokenizer, item: dict) -> tuple[list[str], int] | None:
    """The item's options with the answer's token count, and the answer's index among them (None: < 2 left)."""
    lengths = [len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in item["options"]]
    want = lengths[item["answer"]]
    keep = [i for i, n in enumerate(lengths) if n == want]
    if len(keep) < 2:
        return None
    return [item["options"][i] for i in keep], keep.index(item["answer"])


def score_items(model, tokenizer, items: list[dict], progress: bool = False) -> pd.DataFrame:
    """One row per scored item: kind, n_options (kept), correct (0/1). Items dropped by `equal_length`
    are absent; len(result) is the number scored."""
    kept = [(it, equal_length(tokenizer, it)) for it in items]
    kept = [(it, eq) for it, eq in kept if eq is not None]
    if not kept:
        return pd.DataFrame(columns=["kind", "n_options", "correct"])
    with torch.inference_mode():
        picks = multiple_choice(model, tokenizer, [it["prefix"] for it, _ in kept], [eq[0] for _, eq in kept],
                                normalization="sum")
    return pd.DataFrame({"kind": [it["kind"] for it, _ in kept],
                         "n_options": [len(eq[0]) for _, eq in kept],
                         "correct": [float(c.chosen == eq[1]) for c, (_, eq) in zip(picks, kept)]})


def cloze_metrics(scored: pd.DataFrame, n_items: int, n_boot: int) -> list[tuple[str, float, tuple, int]]:
    """(metric, value, ci, n) rows: accuracy overall and per kind, theoretical chance, items scored/dropped."""
    out = [("cloze_items_dropped", float(n_items - len(scored)), (float("nan"), float("nan")), n_items)]
    if not len(scored):
        return out
    acc = scored.correct.to_numpy()
    out.append(("cloze_chance", float((1 / scored.n_options).mean()), (float("nan"), float("nan")), len(scored)))
    out.append(("cloze_accuracy", float(acc.mean()), bootstrap_ci(acc, n_boot), len(acc)))
    for kind, g in scored.groupby("kind"):
        sel = g.correct.to_numpy()
        out.append((f"cloze_accuracy_{kind}", float(sel.mean()), bootstrap_ci(sel, n_boot), len(sel)))
        out.append((f"cloze_chance_{kind}", float((1 / g.n_options).mean()), (float("nan"), float("nan")), len(sel)))
    return out


class NGramLM(torch.nn.Module):
    """A unigram (order 1) or bigram (order 2) model of a token stream with add-k smoothing, answering
    like an HF causal LM: `model(input_ids=...).logits` (batch, time, vocab) of log-probabilities."""

    device = torch.device("cpu")

    def __init__(self, tokens: np.ndarray, vocab_size: int, order: int, add_k: float = NGRAM_ADD_K):
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"order {order}: only unigram (1) and bigram (2) baselines")
        tokens = np.asarray(tokens, dtype=np.int64)
        self.order = order
        if order == 1:
            counts = np.bincount(tokens, minlength=vocab_size).astype(float) + add_k
            table = np.log(counts / counts.sum())
        else:
            counts = np.zeros((vocab_size, vocab_size))
            np.add.at(counts, (tokens[:-1], tokens[1:]), 1.0)
            counts += add_k
            table = np.log(counts / counts.sum(1, keepdims=True))
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        if self.order == 1:
            logits = self.table.expand(*input_ids.shape, -1)
        else:
            logits = self.table[input_ids]
        return SimpleNamespace(logits=logits)


def main(argv: list[str] | None = None) -> None:
    from experiments.lm.tokenizer import load_tokenizer
    from experiments.tinystories.evaluate import read_jsonl, row

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--train-tokens", required=True)
    ap.add_argument("--cloze", required=True)
    ap.add_argument("--eval-config", required=True)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    cfg = json.loads(args.eval_config)
    tok = load_tokenizer(args.tokenizer)
    items = read_jsonl(args.cloze, cfg["n_cloze"]) if cfg["n_cloze"] else []
    stream = np.load(args.train_tokens, mmap_mode="r")
    rows = []
    for order, name in ((1, "unigram"), (2, "bigram")):
        info = dict(model_id=name, arch="ngram", width=0, depth=0, n_heads=0, seed=0, lr=float("nan"),
                    scale=args.scale, params_total=0, params_non_embedding=0)
        if not items:
            continue
        scored = score_items(NGramLM(stream, len(tok), order), tok, items)
        rows += [row(info, m, v, ci, n) for m, v, ci, n in cloze_metrics(scored, len(items), cfg["bootstrap"])]
    df = pd.DataFrame(rows, columns=None if rows else ["model_id", "metric", "value"])
    atomic_write_csv(df, args.out, allow_nan=["ci_low", "ci_high", "lr"])
    if len(df):
        print(df[["model_id", "metric", "value", "ci_low", "ci_high", "n"]].to_string(index=False))


if __name__ == "__main__":
    main()
