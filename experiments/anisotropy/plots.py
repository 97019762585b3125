"""Anisotropy figures, each drawn from one CSV.

    isotropy_by_language  isotropy_final.csv: last layer after the final norm, pooled isotropy with 95% CIs per
                          language (x) and model (bars), per-sequence mean as crosses, 0.5 threshold dashed
    isotropy_by_depth     isotropy.csv: pooled isotropy per layer (resid_pre.0 .. final residual, final norm) per
                          model and language, with (solid) and without (dashed) position 0, CI bands
    decoding              decoding.csv: diversity vs coherence per method, 95% CIs, the human reference

Each function takes (input paths, output png) as declared in manifest.py; the CLI is experiments.report.plot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.report.figures import new_figure, save_figure

FINAL = "final_norm"
FINAL_X = 1.15  # where the depth figure puts the last layer after the final norm


def _flag(series: pd.Series, value: bool) -> pd.Series:
    return series.astype(str).str.lower() == str(value).lower()


def isotropy_by_language(paths: list[str], out: str) -> None:
    """Language groups (left to right as in the table); in each, one bar per model measured on that language."""
    df = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    fin = df[(df.layer == FINAL) & _flag(df.exclude_first, False) & (df.status == "measured")]
    pooled = fin[fin.measure == "pooled"]
    per_seq = fin[fin.measure == "per_sequence_mean"].set_index(["model_id", "lang"]).isotropy
    models = list(dict.fromkeys(pooled.model_id))
    colour = {m: f"C{i % 10}" for i, m in enumerate(models)}
    xs, labels, groups, x = [], [], [], 0.0
    fig, ax = new_figure(max(5.0, 0.35 * len(pooled) + 2.5), 4.0)
    for lang in dict.fromkeys(pooled.lang):
        g = pooled[pooled.lang == lang]
        start = x
        for r in g.itertuples():
            ax.bar(x, r.isotropy, 0.8, yerr=[[r.isotropy - r.ci_low], [r.ci_high - r.isotropy]], capsize=2,
                   color=colour[r.model_id], label=r.model_id if r.model_id not in labels else None)
            if (r.model_id, lang) in per_seq.index:
                ax.plot(x, per_seq[r.model_id, lang], "x", color="k", ms=4)
            xs.append(x)
            labels.append(r.model_id)
            x += 1.0
        groups.append(((start + x - 1) / 2, lang))
        x += 0.8
    ax.axhline(0.5, ls="--", color="grey", lw=0.8)
    ax.set_xticks([])
    for centre, lang in groups:
        ax.text(centre, -0.06, lang, ha="center", va="top", transform=ax.get_xaxis_transform(), fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("isotropy (1 - pooled self-similarity)")
    ax.set_title("Last layer after the final norm, per language (x: per-sequence mean)")
    missing = df[df.status != "measured"][["model_id", "lang"]].drop_duplicates()
    if len(missing):
        ax.text(0.0, -0.16, "not run (missing data): " + ", ".join(f"{r.model_id}/{r.lang}"
                                                                    for r in missing.itertuples()),
                transform=ax.transAxes, fontsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=1 + len(models) // 25)
    save_figure(fig, out)


def isotropy_by_depth(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    d = df[(df.measure == "pooled") & (df.status == "measured")].copy()
    combos = list(dict.fromkeys(zip(d.model_id, d.lang)))
    fig, ax = new_figure(6.5, 3.8)
    for i, (m, lang) in enumerate(combos):
        g = d[(d.model_id == m) & (d.lang == lang)]
        for ex, ls in ((False, "-"), (True, "--")):
            h = g[_flag(g.exclude_first, ex)].sort_values("depth")
            # 0 = embeddings, 1 = the final residual; the final norm (the paper's layer) at FINAL_X for every model
            x = np.where(h.layer == FINAL, FINAL_X, h.depth / h.n_layers.clip(lower=1))
            ax.plot(x, h.isotropy, ls, color=f"C{i % 10}", marker="o" if not ex else None, ms=3,
                    label=f"{m} / {lang}" if not ex else None)
            if not ex:
                ax.fill_between(x, h.ci_low, h.ci_high, color=f"C{i % 10}", alpha=0.15, lw=0)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0, FINAL_X], ["0\nembeddings", "0.25", "0.5", "0.75", "1\nfinal residual",
                                                       "final\nnorm"])
    ax.set_xlabel("depth: residual stream entering block l, as l / n_layers")
    ax.set_ylabel("isotropy (pooled)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Isotropy by depth (solid: all positions, dashed: without position 0)")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, out)


def decoding(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    fig, ax = new_figure(5.5, 3.8)
    for i, r in enumerate(df.itertuples()):
        if pd.isna(r.coherence):
            continue
        ax.errorbar(r.diversity, r.coherence, xerr=[[r.diversity - r.diversity_ci_low],
                                                    [r.diversity_ci_high - r.diversity]],
                    yerr=[[r.coherence - r.coherence_ci_low], [r.coherence_ci_high - r.coherence]],
                    fmt="o", color="k" if r.method == "human" else f"C{i % 10}", capsize=2, label=r.method)
    human = df[df.method == "human"]
    if len(human):
        ax.axvline(float(human.diversity.iloc[0]), ls="--", color="grey", lw=0.8)
    ax.set_xlabel("diversity (SimCTG, x100)")
    ax.set_ylabel(f"coherence: mean log p per token under {df.coherence_scorer.iloc[0]}")
    ax.set_title(f"Decoding with {df.generator.iloc[0]} ({int(df.n_prompts.max())} prefixes)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, out)
