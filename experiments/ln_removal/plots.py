"""LN-removal figures, each drawn from one CSV.

    loss_schedule   curves.csv: training CE (aux term excluded) through the removal schedule (LN-free run and the
                    with-LN control) per model, a vertical line at each removal event, shaded removal span
    delta_ce_size   ce.csv: ΔCE (LN-free minus control, and minus original) with 95% CIs vs non-embedding params
    dla_error       dla.csv: DLA error (NMAE vs the direct effect, mean over components, 95% CI) per model,
                    original / control / LN-free (log y)
    data_scaling    scaling.csv: relative ΔCE (vs the same-steps control) vs fine-tuning tokens per model, with
                    the small_ce_cost target

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
    d = df[(df.metric == "nmae_dla_vs_de") & (df.component == "mean_over_components")]
    models = sorted(d.model_id.unique())
    variants = [v for v in ("original", "with_ln", "ln_free") if v in set(d.variant)]
    fig, ax = new_figure(5.5, 3.8)
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        g = d[d.variant == v].set_index("model_id").reindex(models)
        x = np.arange(len(models)) + i * width
        vals = np.maximum(g.value.to_numpy(float), 1e-18)
        ax.bar(x, vals, width, label=v)
        err = np.array([vals - np.maximum(g.ci_low.to_numpy(float), 1e-18),
                        np.maximum(g.ci_high.to_numpy(float), 1e-18) - vals])
        ax.errorbar(x, vals, yerr=np.nan_to_num(err), fmt="none", color="k", capsize=3, lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(models)) + width * (len(variants) - 1) / 2, models)
    ax.set_ylabel("DLA error: NMAE vs direct effect\n(mean over components, 95% CI)")
    ax.legend()
    save_figure(fig, out)


def data_scaling(paths: list[str], out: str) -> None:
    df = pd.read_csv(paths[0])
    fig, ax = new_figure(5.5, 3.8)
    for i, (m, g) in enumerate(df.groupby("model_id")):
        g = g.sort_values("tokens")
        lo, hi = g.ci_low / g.ce_control_nats, g.ci_high / g.ce_control_nats
        ax.errorbar(g.tokens, g.rel_delta_ce, yerr=[g.rel_delta_ce - lo, hi - g.rel_delta_ce],
                    fmt="o-", capsize=3, color=f"C{i}", label=m)
    ax.axhline(df.target_rel.iloc[0], color="k", ls="--", lw=0.8, label="target (small_ce_cost)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("fine-tuning tokens")
    ax.set_ylabel("ΔCE vs control / CE(control)")
    ax.legend()
    save_figure(fig, out)
