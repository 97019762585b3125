"""Anchored-bias figures, each drawn from one CSV.

    anchored_rate     summary.csv: baseline accuracy and anchored rate per model x format (Wilson CIs)
    layer_scan        layers.csv: mean lens(A) - lens(gold) of each layer's MLP output on the failing items
    edits             summary.csv: accuracy on the held-out failing items after each edit
    by_gold_position  predictions.csv: predicted letter by gold letter, before any edit

Each function takes (input paths, output png) as declared in manifest.py; the CLI is experiments.report.plot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.anchored_bias.items import LETTERS
from experiments.report.figures import new_figure, save_figure
from experiments.stats import wilson

MIN_ANCHORED = 0.30  # the claims' default min_anchored_rate (config/schemas/anchored_bias.yaml)


def _base(s: pd.DataFrame) -> pd.DataFrame:
    return s[(s.split == "eval") & (s.condition == "baseline") & (s.readout == "option")]


def anchored_rate(paths: list[str], out: str) -> None:
    s = _base(pd.read_csv(paths[0]))
    runs = list(dict.fromkeys(zip(s.model, s.format)))
    fig, ax = new_figure(max(5.0, 1.1 * len(runs) + 1.5), 3.8)
    for j, (metric, subset, colour) in enumerate((("accuracy", "all", "C0"), ("anchored_rate", "all", "C3"))):
        for i, (m, f) in enumerate(runs):
            r = s[(s.model == m) & (s.format == f) & (s.subset == subset)].iloc[0]
            n = r["n"] if metric == "accuracy" else r["n_gold_not_A"]
            v = r[metric]
            lo, hi = wilson(v * n, n)
            ax.bar(i + (j - 0.5) * 0.38, v, 0.36, color=colour, yerr=[[max(0.0, v - lo)], [max(0.0, hi - v)]],
                   capsize=2,
                   label=metric.replace("_", " ") if i == 0 else None)
    ax.axhline(MIN_ANCHORED, ls=":", c="k", lw=0.8)
    ax.set_xticks(range(len(runs)), [f"{m}\n({f})" for m, f in runs], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of eval items")
    ax.legend()
    ax.set_title("Anchored rate and accuracy before editing")
    save_figure(fig, out)


def layer_scan(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(5.5, 3.8)
    for (m, f), g in df.groupby(["model", "format"], sort=False):
        g = g.sort_values("layer")
        depth = (g.layer + 1) / len(g)
        ax.plot(depth, g.delta_mean, marker="o", ms=3, label=f"{m} ({f}), n={int(g.n.iloc[0])}")
    ax.axhline(0, c="k", lw=0.6)
    ax.set_xlabel("layer / number of layers")
    ax.set_ylabel("mean lens(A) - lens(gold) of the MLP output")
    ax.legend(fontsize=7)
    ax.set_title("Which MLP layers push toward A (failing items; all gold != A where none fail)", fontsize=9)
    save_figure(fig, out)


def edits(paths: list[str], out: str) -> None:
    s = pd.read_csv(paths[0])
    s = s[(s.split == "eval") & (s.readout == "option")]
    edited = s[s.condition != "baseline"]
    runs = list(dict.fromkeys(zip(edited.model, edited.format)))
    conds = []
    for r in edited[["condition", "lam2"]].drop_duplicates().itertuples():
        conds.append((r.condition, r.lam2))
    labels = [f"{c} λ2={l:g}" if np.isfinite(l) else c for c, l in conds]
    fig, ax = new_figure(max(6.0, 0.9 * len(conds) + 2), 4.0)
    width = 0.8 / max(1, len(runs))
    for i, (m, f) in enumerate(runs):
        xs, ys, ys_a, los, his = [], [], [], [], []
        for k, (c, l) in enumerate(conds):
            q = edited[(edited.model == m) & (edited.format == f) & (edited.condition == c)]
            q = q[np.isclose(q.lam2, l)] if np.isfinite(l) else q[q.lam2.isna()]
            fail, gold_a = q[q.subset == "failing"], q[q.subset == "gold_A"]
            if not len(fail) or not fail.n.iloc[0]:
                continue
            v, n = fail.accuracy.iloc[0], fail.n.iloc[0]
            lo, hi = wilson(v * n, n)
            xs.append(k + (i - (len(runs) - 1) / 2) * width)
            ys.append(v)
            los.append(max(0.0, v - lo))
            his.append(max(0.0, hi - v))
            ys_a.append(gold_a.accuracy.iloc[0] if len(gold_a) else np.nan)
        if xs:
            ax.errorbar(xs, ys, yerr=[los, his], fmt="o", color=f"C{i}", capsize=2, label=f"{m} ({f})")
            ax.plot(xs, ys_a, "o", mfc="none", color=f"C{i}")
    ax.set_xticks(range(len(conds)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(-0.03, 1.05)
    ax.set_ylabel("accuracy on held-out failing items")
    ax.legend(fontsize=7)
    ax.set_title("Edits: filled = failing items, hollow = gold = A items")
    save_figure(fig, out)


def by_gold_position(paths: list[str], out: str) -> None:
    p = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    p = p[p.condition == "baseline"]
    runs = list(dict.fromkeys(zip(p.model, p.format)))
    fig, axes = new_figure(2.3 * len(runs), 2.6, ncols=len(runs), squeeze=False)
    for ax, (m, f) in zip(axes[0], runs):
        q = p[(p.model == m) & (p.format == f)]
        tab = pd.crosstab(q.gold, q.pred_option, normalize="index").reindex(index=list(LETTERS),
                                                                             columns=list(LETTERS)).fillna(0)
        ax.imshow(tab.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(5), LETTERS)
        ax.set_yticks(range(5), LETTERS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.grid(False)
        ax.set_title(f"{m}\n({f})", fontsize=8)
    save_figure(fig, out)
