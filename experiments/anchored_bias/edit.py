"""Edits of MLP value vectors and of attention at the answer position, each undone bit for bit.

- `RowEdits`: adds a d_model vector to chosen rows of W_out (value vectors) through the adapter; the original rows
  are saved and `undo()` copies them back, so the model is restored exactly (not `w + d - d`, which rounds).
- The paper's update (notebook, exact): `v <- v - lambda1 * W_U[A] + lambda2 * W_U[gold]` in TransformerLens
  coordinates (W_U with gamma_f folded in, centred over the vocabulary; `lens.lens_direction`), lambda1 = 1,
  lambda2 = 8, per item with that item's gold letter (an oracle).
- Label-free global edit: `v <- v - lambda1 * W_U[A]` on the located vectors, no gold label; lambda1 chosen on the
  locate split so that the share of "A" predictions matches what balanced gold positions imply (mean 1/k).
- Weight plant: `v <- v + beta * W_U[A]` on a configured neuron (the inverse of the label-free edit at
  lambda1 = beta).
- Attention at the last query, in chosen heads: `swap` exchanges the weights on the " A" letter and on the gold
  letter (oracle, the paper's recalibration); `equalise` gives every option letter the mean of their weights
  (label-free; the row still sums to 1).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

import torch

from experiments.anchored_bias.lens import lens_direction


class RowEdits:
    """Add `delta` (d_model,) to row `neuron` of W_out(layer) for each (layer, neuron, delta)."""

    def __init__(self, adapter, edits: Iterable[tuple[int, int, torch.Tensor]]):
        self.adapter = adapter
        self.edits = [(int(l), int(n), d.detach()) for l, n, d in edits]
        self.saved: list[tuple[int, int, torch.Tensor]] = []

    def apply(self) -> "RowEdits":
        if self.saved:
            raise RuntimeError("edits already applied")
        try:
            with torch.no_grad():
                for l, n, d in self.edits:
                    row = self.adapter.W_out(l)[n]
                    self.saved.append((l, n, row.clone()))
                    row.add_(d.to(row.dtype))
        except BaseException:
            self.undo()  # a failing edit leaves the model as it was
            raise
        return self

    def undo(self) -> None:
        with torch.no_grad():
            for l, n, orig in reversed(self.saved):
                self.adapter.W_out(l)[n].copy_(orig)
        self.saved = []


@contextmanager
def edited(adapter, edits: Iterable[tuple[int, int, torch.Tensor]]):
    e = RowEdits(adapter, edits).apply()
    try:
        yield e
    finally:
        e.undo()


def paper_delta(adapter, letter_ids: list[int], gold: int, lam1: float, lam2: float) -> torch.Tensor:
    """-lambda1 * u_A + lambda2 * u_gold (gold: letter index)."""
    u = lens_direction(adapter, letter_ids)
    return -lam1 * u[0] + lam2 * u[gold]


def anchor_delta(adapter, letter_ids: list[int], scale: float) -> torch.Tensor:
    """scale * u_A: +beta plants the bias, -lambda1 is the label-free edit."""
    return scale * lens_direction(adapter, letter_ids)[0]


def attention_hooks(layers_heads: list[tuple[int, int]], position_sets: list[torch.Tensor], gold: torch.Tensor | None,
                    mode: str):
    """fwd_hooks on hook_pattern for a batch. position_sets: tensors (b, 5) of key positions per option in the
    batch's columns (-1 absent), e.g. the option letters and the last token of each option's text; each set is
    swapped (or equalised) on its own. gold: (b,) letter index (swap only)."""
    if mode not in ("swap", "equalise"):
        raise ValueError(f"unknown attention edit {mode!r}")
    by_layer: dict[int, list[int]] = {}
    for l, h in layers_heads:
        by_layer.setdefault(int(l), []).append(int(h))
    rows = torch.arange(position_sets[0].shape[0])

    def make(heads: list[int]):
        def fn(pattern, hook):
            p = pattern.clone()
            last = p[:, :, -1]  # (b, H, K)
            for h, letter_pos in ((h, ps) for h in heads for ps in position_sets):
                w = last[:, h]
                if mode == "swap":
                    pa, pg = letter_pos[:, 0], letter_pos[rows, gold]
                    wa, wg = w[rows, pa].clone(), w[rows, pg].clone()
                    w[rows, pa], w[rows, pg] = wg, wa
                else:
                    present = letter_pos >= 0
                    idx = letter_pos.clamp(min=0)
                    vals = torch.gather(w, 1, idx) * present
                    mean = vals.sum(1, keepdim=True) / present.sum(1, keepdim=True)
                    new = torch.where(present, mean.expand_as(vals), torch.gather(w, 1, idx))
                    w.scatter_(1, idx, new)
            return p

        return fn

    return [(f"blocks.{l}.attn.hook_pattern", make(hs)) for l, hs in by_layer.items()]
