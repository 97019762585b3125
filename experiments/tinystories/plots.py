"""TinyStories figures, each drawn from one CSV (so one figure can be regenerated alone).

    loss_vs_params   sweep.csv (+ power_law.csv): validation loss vs non-embedding parameters, fitted laws
    quality_heatmap  sweep.csv: width x depth heat maps of loss, grammar, consistency (cloze, free text)
    loss_curves      loss_curves.csv: validation loss vs training tokens per model (grid; lr sweep)
    samples          samples.csv: one held-out beginning and each model's continuation

Each function takes (input paths, output png) as declared in manifest.py; the CLI is
experiments.report.plot (`python -m experiments.report.plot --result tinystories --figure NAME --inp ... --out PNG`).
"""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from experiments.report.figures import new_figure, save_figure

HEATMAP_METRICS = [
    ("val_loss_nats", "validation loss (nats/token)", "viridis_r"),
    ("grammar_rate", "grammar: share of sentences that parse", "viridis"),
    ("cloze_accuracy", "consistency: cloze accuracy on planted facts", "viridis"),
    ("consistency_rate", "consistency: free-text references agreeing with facts", "viridis"),
]


def trained(sweep: pd.DataFrame) -> pd.DataFrame:
    """The grid models (aggregate.in_grid): one learning rate, one token budget."""
    return sweep[sweep.in_grid.astype(bool)]


def loss_vs_params(paths: list[str], out: str) -> None:
    sweep = pd.read_csv(paths[0])
    fit = pd.read_csv(paths[1]) if len(paths) > 1 else None
    fig, ax = new_figure(6, 4)
    loss = sweep[sweep.metric == "val_loss_nats"]
    ours = trained(loss)
    markers = dict(zip(sorted(ours.width.unique()), "os^Dv<>p"))
    for depth, g in ours.groupby("depth"):
        for _, r in g.iterrows():
            ax.errorbar(r.params_non_embedding, r.value, yerr=[[r.value - r.ci_low], [r.ci_high - r.value]],
                        fmt=markers[r.width], color=f"C{sorted(ours.depth.unique()).index(depth)}", ms=6, capsize=2,
                        label=f"{depth} layer{'s' if depth > 1 else ''}" if r.width == g.width.min() else None)
    released = loss[loss.model_id.str.startswith("released--")]
    for _, r in released.iterrows():
        ax.plot(r.params_non_embedding, r.value, "k*", ms=8)
        ax.annotate(r.model_id.replace("released--", ""), (r.params_non_embedding, r.value), fontsize=6)
    if fit is not None and len(fit):
        n = np.geomspace(ours.params_non_embedding.min() * 0.8, ours.params_non_embedding.max() * 1.25, 100)
        for style, (_, f) in zip(("k--", "k:"), fit[fit.x == "params_non_embedding"].iterrows()):
            if not np.isfinite(f.alpha):
                continue
            ci = f"[{f.alpha_ci_low:.2f}, {f.alpha_ci_high:.2f}]" if np.isfinite(f.alpha_ci_low) else "n/a"
            ax.plot(n, f.a * n ** (-f.alpha) + f.c, style, lw=1,
                    label=f"fit {f.form}: alpha={f.alpha:.2f} (95% CI {ci}), c={f.c:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters")
    ax.set_ylabel("validation loss (nats/token)")
    widths = ", ".join(f"{m}={w}" for w, m in markers.items())
    ax.set_title(f"TinyStories sweep: loss vs size (markers: width {widths})")
    ax.legend(fontsize=7)
    save_figure(fig, out)


def quality_heatmap(paths: list[str], out: str) -> None:
    sweep = pd.read_csv(paths[0])
    ours = trained(sweep)
    present = [m for m in HEATMAP_METRICS if m[0] in set(ours.metric)]
    fig, axes = new_figure(4.2 * len(present), 3.6, ncols=len(present), squeeze=False)
    for ax, (metric, title, cmap) in zip(axes[0], present):
        table = ours[ours.metric == metric].groupby(["depth", "width"])["value"].mean().unstack("width")
        im = ax.imshow(table.to_numpy(), cmap=cmap, aspect="auto", origin="lower")
        ax.set_xticks(range(table.shape[1]), table.columns)
        ax.set_yticks(range(table.shape[0]), table.index)
        ax.set_xlabel("width (d_model)")
        ax.set_ylabel("depth (layers)")
        ax.set_title("\n".join(textwrap.wrap(title, 30)), fontsize=8)
        ax.grid(False)
        lo, span = np.nanmin(table.values), max(float(np.nanmax(table.values) - np.nanmin(table.values)), 1e-12)
        for (i, j), v in np.ndenumerate(table.to_numpy()):
            if not np.isfinite(v):
                continue  # a cell left out of the grid (tinystories.model.exclude)
            t = (v - lo) / span
            dark = (1 - t if cmap.endswith("_r") else t) < 0.5  # the dark end of viridis
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
        fig.colorbar(im, ax=ax, shrink=0.8)
    save_figure(fig, out)


def loss_curves(paths: list[str], out: str) -> None:
    curves = pd.read_csv(paths[0])
    curves["peak_lr"] = curves.groupby("model_id").lr.transform("max")  # over every step (warmup ends at the peak)
    val = curves.dropna(subset=["val_loss_nats"]).copy()
    swept = val.model_id.str.contains("_lr")  # lr-sweep models other than the grid's (ids end in _lr<LR>)
    grid_lr = val.loc[~swept, "peak_lr"].max()
    swept_shape = val.groupby(["width", "depth"]).model_id.transform(lambda m: m.str.contains("_lr").any())
    shapes = val[swept_shape.astype(bool)]  # every model (every lr) of a shape the lr sweep covers
    fig, axes = new_figure(11 if len(shapes) else 6, 4, ncols=2 if len(shapes) else 1, squeeze=False)
    ax = axes[0][0]
    grid = val[~swept]
    for mid, g in grid.groupby("model_id", sort=False):
        r = g.iloc[0]
        ax.plot(g.tokens, g.val_loss_nats, color=f"C{sorted(grid.depth.unique()).index(r.depth)}",
                alpha=0.35 + 0.65 * sorted(grid.width.unique()).index(r.width) / max(1, grid.width.nunique() - 1),
                label=f"d{r.width} L{r.depth}")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(f"Grid at lr {grid_lr:g} (colour: depth, shade: width)")
    ax.legend(fontsize=6, ncol=3)
    if len(shapes):
        ax = axes[0][1]
        lrs = sorted(shapes.peak_lr.unique())
        for i, ((w, d), g) in enumerate(shapes.groupby(["width", "depth"])):
            for mid, m in g.groupby("model_id"):
                lr = m.peak_lr.iloc[0]
                ax.plot(m.tokens, m.val_loss_nats, color=f"C{i}", lw=0.8 + lrs.index(lr) * 0.5,
                        alpha=0.4 + 0.6 * lrs.index(lr) / max(1, len(lrs) - 1), label=f"d{w} L{d} lr {lr:g}")
        ax.set_xlabel("training tokens")
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title("Learning-rate sweep (colour: shape, weight: lr)")
        ax.set_ylim(top=float(shapes.val_loss_nats.quantile(0.9)))
        ax.legend(fontsize=5, ncol=2)
    save_figure(fig, out)


def printable(text: str) -> str:
    """Model output may hold control characters or broken bytes (byte-level BPE): show them as '?'."""
    return "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in str(text)).replace("\ufffd", "?")


def samples(paths: list[str], out: str) -> None:
    table = pd.read_csv(paths[0])
    first = table[table.prompt_index == table.prompt_index.min()]
    first = first[first.sample_index == first.sample_index.min()]
    prompt = printable(first.prompt.iloc[0])
    lines = ["PROMPT: " + prompt, ""]
    for _, r in first.iterrows():
        flag = (f"[grammar {r.grammar_rate:.2f}, consistent {r.consistent_refs}/{r.checked_refs}]"
                 if "grammar_rate" in r and pd.notna(r.grammar_rate) else "")
        lines += textwrap.wrap(f"{r.model_id} {flag}: {printable(r.completion)}", 120) + [""]
    wrapped = [w for line in lines for w in (textwrap.wrap(line, 120) or [""])]
    fig, ax = new_figure(9, 0.16 * len(wrapped) + 0.5)
    ax.axis("off")
    ax.text(0, 1, "\n".join(wrapped), va="top", ha="left", family="monospace", fontsize=6.5,
            transform=ax.transAxes)
    save_figure(fig, out)
