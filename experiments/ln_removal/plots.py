"""LN-removal figures, each drawn from one CSV.

    loss_schedule   curves.csv: training CE (aux term excluded) through the removal schedule (LN-free run and the with-LN
                    control) per model, a vertical line at each removal event, shaded removal span
    delta_ce_size   ce.csv: ΔCE (LN-free minus control, and minus original) with 95% CIs vs non-embedding params
    dla_error       dla.csv: max |sum of direct effects - logit| per model, original / LN-free / control (log y)
    data_scaling    scaling.csv: ΔCE (vs the same-steps control) vs fine-tuning tokens per model (exploratory)

Each function takes (input paths, output png) as declared in manifest.py; the CLI is experiments.report.plot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.report.figures import new_figure, save_figure

EVENT_COLOURS = {"ln_2": "C2", "ln_1qk": "C3", "ln_1v": "C4", "ln_f": "C5", "bos": "C6"}


def loss_schedule(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    df = df[df["max_steps"] == df.groupby("model_id")["max_steps"].transform("max")]
    models = sorted(df.model_id.unique())
    fig, axes = new_figure(6, 2.6 * len(models), nrows=len(models), squeeze=False)
    for ax, m in zip(axes[:, 0], models):
        g = df[df.model_id == m]
        for mode, colour in (("with_ln", "C0"), ("ln_free", "C1")):
            c = g[g["mode"] == mode].sort_values("step")
            if len(c):
                col = "train_ce_nats" if "train_ce_nats" in c else "train_loss_nats"
                smooth = c[col].rolling(5, min_periods=1).mean()
                ax.plot(c.step, smooth, color=colour, lw=1, label=f"{mode} (train CE, 5-step mean; dots: val)")
                v = c.dropna(subset=["val_loss_nats"])
                ax.plot(v.step, v.val_loss_nats, "o", color=colour, ms=3)
        ev = g[(g["mode"] == "ln_free") & g["event"].fillna("").astype(str).str.len().gt(0)]
        seen = set()
        for _, r in ev.iterrows():
            for name in str(r.event).split():
                kind = name.split(".")[0]
                ax.axvline(r.step, color=EVENT_COLOURS.get(kind, "k"), lw=0.6, alpha=0.7,
                           label=kind if kind not in seen else None)
                seen.add(kind)
        ax.set_title(m)
        ax.set_ylabel("loss (nats/token)")
        ax.legend(fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("fine-tuning step")
    save_figure(fig, out)


def delta_ce_size(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(5.5, 3.8)
    for metric, colour, label in (("delta_ce_vs_control_nats", "C1", "LN-free − control (LN kept)"),
                                  ("delta_ce_vs_original_nats", "C0", "LN-free − original")):
        d = df[df.metric == metric].sort_values("params_non_embedding")
        if len(d):
            ax.errorbar(d.params_non_embedding, d.value, yerr=[d.value - d.ci_low, d.ci_high - d.value], fmt="o-",
                        color=colour, capsize=3, label=label)
            for _, r in d.iterrows():
                ax.annotate(r.model_id, (r.params_non_embedding, r.value), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters")
    ax.set_ylabel("ΔCE (nats/token), 95% CI")
    ax.legend()
    save_figure(fig, out)


def dla_error(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    d = df[df.metric == "max_abs_sum_error"]
    models = sorted(d.model_id.unique())
    variants = [v for v in ("original", "with_ln", "ln_free") if v in set(d.variant)]
    fig, ax = new_figure(5.5, 3.8)
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        vals = [float(d[(d.model_id == m) & (d.variant == v)].value.max()) for m in models]
        ax.bar(np.arange(len(models)) + i * width, np.maximum(vals, 1e-18), width, label=v)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(models)) + width * (len(variants) - 1) / 2, models)
    ax.set_ylabel("max |Σ direct effects + bias − logit| (float64)")
    ax.legend()
    save_figure(fig, out)


def data_scaling(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(5.5, 3.8)
    for i, (m, g) in enumerate(df.groupby("model_id")):
        g = g.sort_values("tokens")
        ax.errorbar(g.tokens, g.delta_ce_nats, yerr=[g.delta_ce_nats - g.ci_low, g.ci_high - g.delta_ce_nats],
                    fmt="o-", capsize=3, color=f"C{i}", label=m)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("fine-tuning tokens")
    ax.set_ylabel(f"ΔCE vs {df['reference'].iloc[0]} (nats/token)")
    ax.set_title("exploratory")
    ax.legend()
    save_figure(fig, out)
