"""PII-leakage figures, each drawn from one CSV.

    extraction_by_duplication  extraction_levels.csv: recall of member names per duplication level, per defense
    attacks                    attacks.csv: every attack's main metric on every model, with chance lines

Each function takes (input paths, output png) as declared in manifest.py; the CLI is experiments.report.plot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.report.figures import new_figure, save_figure


def _err(v, lo, hi):
    return [np.maximum(0.0, v - lo), np.maximum(0.0, hi - v)]


def extraction_by_duplication(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(5.5, 3.8)
    defenses = list(dict.fromkeys(df.defense))
    width = 0.8 / max(1, len(defenses))
    for j, (d, g) in enumerate((d, df[df.defense == d].sort_values("dup")) for d in defenses):
        x = np.log2(g.dup.to_numpy(float)) + (j - (len(defenses) - 1) / 2) * width * 0.6
        ax.errorbar(x, g.recall, yerr=_err(g.recall, g.ci_low, g.ci_high), marker="o", ms=4, capsize=2, label=d)
    dups = sorted(set(df.dup))
    ax.set_xticks(np.log2(dups), [str(k) for k in dups])
    ax.set_xlabel("duplication: training records whose subject the name is")
    ax.set_ylabel("share of the level's names extracted")
    ax.set_ylim(-0.02, 1.02)
    n = int(df.n.iloc[0]) if len(df) else 0
    ax.legend(fontsize=8)
    ax.set_title(f"Extraction recall by duplication ({n} names per level)", fontsize=10)
    save_figure(fig, out)


def attacks(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    panels = [("extraction", ["precision", "recall_unique"]), ("reconstruction", ["tab", "ours"])]
    inf = df[(df.attack == "inference") & (df.metric == "accuracy")]
    combos = sorted({(int(s), p) for s, p in zip(inf["size"], inf.pool)})
    models = list(dict.fromkeys(df.model))
    fig, axes = new_figure(4.0 * (2 + bool(combos)), 3.8, ncols=2 + bool(combos))
    axes = np.atleast_1d(axes)
    for ax, (attack, metrics) in zip(axes, panels):
        g = df[df.attack == attack]
        ms = [m for m in models if m in set(g.model)]
        width = 0.8 / len(metrics)
        for j, metric in enumerate(metrics):
            sub = g[g.metric == metric].set_index("model").reindex(ms)
            ax.bar(np.arange(len(ms)) + (j - (len(metrics) - 1) / 2) * width, sub.value, width,
                   yerr=_err(sub.value, sub.ci_low, sub.ci_high), capsize=2, label=metric.replace("_", " "))
        ax.set_xticks(range(len(ms)), ms, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(attack, fontsize=10)
        ax.legend(fontsize=7)
    if combos:
        ax = axes[2]
        width = 0.8 / len(combos)
        for j, (size, pool) in enumerate(combos):
            sub = inf[(inf["size"] == size) & (inf.pool == pool)].set_index("model").reindex(models)
            xs = np.arange(len(models)) + (j - (len(combos) - 1) / 2) * width
            bars = ax.bar(xs, sub.value, width, yerr=_err(sub.value, sub.ci_low, sub.ci_high), capsize=2,
                          label=f"C = {size}, {pool}")
            ax.hlines([1 / size] * len(xs), xs - width / 2, xs + width / 2, colors=bars.patches[0].get_facecolor(),
                      linestyles=":", lw=1.2)
        ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title("inference (dotted: chance 1/C)", fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("share (Wilson 95%)")
    save_figure(fig, out)
