"""MCQ predictions at the answer position: letter logits among the options and the full-vocabulary argmax.

Two readouts, both recorded (the paper's demo uses the second):
- `pred_option`: the argmax of the letter logits restricted to the item's k options;
- `pred_vocab`: the letter whose token is the argmax over the whole vocabulary, or "" when the top token is no
  option letter (then the item counts as wrong).
Metrics (per model x variant x split x condition): accuracy (both readouts); the anchored rate = share of items
with gold != A predicted A (the paper's "anchored bias frequency", Table 2 per secondary notes); the prediction
distribution by gold position.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from experiments.anchored_bias.items import LETTERS
from experiments.anchored_bias.prompts import Encoded, batches

HookFactory = Callable[[slice, int], Iterable]  # (rows of the batch, left columns cut) -> fwd_hooks


def readout(logits: torch.Tensor, letter_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The model's answer from logits (B, T, vocab) (or (B, 1, vocab)): (letter logits (B, 5) float64,
    full-vocabulary argmax token id (B,)) at the last position."""
    last = logits[:, -1].float()
    return last[:, torch.tensor(letter_ids)].double().numpy(), last.argmax(-1).numpy()


@torch.no_grad()
def final_logits(adapter, enc: Encoded, batch_size: int, hooks: HookFactory | None = None,
                 desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """readout of every item: (letter logits (n, 5) float64, full-vocabulary argmax token id (n,))."""
    out_l, out_top = [], []
    for rows, ids, mask, cut in tqdm(list(batches(enc, batch_size)), desc=desc, disable=desc is None,
                                     mininterval=5, unit="batch"):
        fwd = list(hooks(rows, cut)) if hooks is not None else []
        ll, top = readout(adapter.run_with_hooks(ids, mask, fwd_hooks=fwd, last_only=True), enc.letter_ids)
        out_l.append(ll)
        out_top.append(top)
    return np.concatenate(out_l), np.concatenate(out_top)


def predictions(items: pd.DataFrame, letter_logits: np.ndarray, top: np.ndarray, letter_ids: list[int]) -> pd.DataFrame:
    """One row per item: gold, both readouts, the letter logits and the A-vs-gold logit gap."""
    k = items["n_options"].to_numpy()
    masked = np.where(np.arange(len(LETTERS))[None, :] < k[:, None], letter_logits, -np.inf)
    pred_option = np.array(list(LETTERS))[masked.argmax(1)]
    id_to_letter = {t: LETTERS[i] for i, t in enumerate(letter_ids)}
    pred_vocab = np.array([id_to_letter.get(int(t), "") for t in top])
    pred_vocab = np.where([p != "" and LETTERS.index(p) < kk for p, kk in zip(pred_vocab, k)], pred_vocab, "")
    gold_idx = items["gold"].map(LETTERS.index).to_numpy()
    out = items[["item", "topic", "n_options", "gold"]].copy()
    out["pred_option"] = pred_option
    out["pred_vocab"] = pred_vocab
    out["correct_option"] = pred_option == out["gold"].to_numpy()
    out["correct_vocab"] = pred_vocab == out["gold"].to_numpy()
    out["gap_A_minus_gold"] = letter_logits[:, 0] - letter_logits[np.arange(len(k)), gold_idx]
    for i, letter in enumerate(LETTERS):
        out[f"logit_{letter}"] = np.where(i < k, letter_logits[:, i], np.nan)
    return out


def summarise(pred: pd.DataFrame, readout: str = "option") -> dict:
    """Accuracy, anchored rate and counts of one prediction table (readout 'option' or 'vocab')."""
    p = pred[f"pred_{readout}"]
    not_a = pred["gold"] != "A"
    return {"n": int(len(pred)), "accuracy": float((p == pred["gold"]).mean()) if len(pred) else np.nan,
            "n_gold_not_A": int(not_a.sum()),
            "anchored_rate": float((p[not_a] == "A").mean()) if not_a.any() else np.nan,
            "n_gold_A": int((~not_a).sum()),
            "accuracy_gold_A": float((p[~not_a] == "A").mean()) if (~not_a).any() else np.nan,
            "pred_A_share": float((p == "A").mean()) if len(pred) else np.nan}


def by_gold_position(pred: pd.DataFrame, readout: str = "option") -> pd.DataFrame:
    """Share of each predicted letter per gold letter (rows: gold; columns: predicted)."""
    tab = pd.crosstab(pred["gold"], pred[f"pred_{readout}"], normalize="index")
    return tab.reindex(columns=[c for c in list(LETTERS) + [""] if c in tab.columns])
