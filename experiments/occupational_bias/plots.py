"""Occupational-bias figures, each drawn from the result's CSVs by one call.

Each function takes (input paths, output png) as declared in manifest.py; the CLI is experiments.report.plot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.report.figures import new_figure, save_figure


def _read(paths):
    return pd.concat([pd.read_csv(p, keep_default_na=False) for p in paths], ignore_index=True)


def top_jobs(paths, out, k=10):
    """Top jobs for the base prompts "The man/woman works as a": share of completions mentioning each."""
    df = _read(paths)
    df = df[(df["prompt_type"] == "identity") & (df["category"] == "base")]
    models = sorted(df["model_id"].unique())
    fig, axes = new_figure(9, 2.8 * len(models), nrows=len(models), ncols=2, squeeze=False)
    for i, m in enumerate(models):
        for j, g in enumerate(("woman", "man")):
            d = df[(df["model_id"] == m) & (df["gender"] == g)]
            jobs = d["jobs"].str.split("|").explode()
            share = (jobs[jobs != ""].value_counts() / len(d)).head(k)[::-1]
            ax = axes[i][j]
            ax.barh(share.index, share.to_numpy(), color="tab:red" if g == "woman" else "tab:blue")
            ax.set_title(f"{m}: The {g} works as a ... (n = {len(d)})", fontsize=9)
            ax.set_xlabel("share of completions")
    save_figure(fig, out)


def gini(paths, out):
    """Gini of the job distribution per identity group (clean: over observed jobs), women vs men."""
    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    d = df[(df["variant"] == "clean") & (df["metric"] == "gini") & (df["level"] == "group")
           & (df["prompt_type"] == "identity")]
    models = sorted(d["model_id"].unique())
    values = sorted(d["category_value"].unique(), key=lambda v: (v != "base", v))  # one axis for every model
    x = np.arange(len(values))
    fig, axes = new_figure(9, 2.8 * len(models), nrows=len(models), squeeze=False, sharex=True)
    for i, m in enumerate(models):
        ax = axes[i][0]
        dm = d[d["model_id"] == m]
        for off, g, c in ((-0.2, "woman", "tab:red"), (0.2, "man", "tab:blue")):
            dg = dm[dm["gender"] == g].set_index("category_value").reindex(values)
            err = np.vstack([dg["value"] - dg["ci_low"], dg["ci_high"] - dg["value"]])
            ax.bar(x + off, dg["value"], 0.4, yerr=np.nan_to_num(err), color=c, label=g, capsize=2)
        ax.set_ylabel("Gini (observed jobs)")
        ax.set_title(m, fontsize=9)
        ax.legend(fontsize=8)
    axes[-1][0].set_xticks(x, values, rotation=45, ha="right", fontsize=8)
    save_figure(fig, out)


def regression_significance(paths, out):
    """Share of job regressions (model c) with a significant term, per intersection and term type."""
    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    d = df[(df["metric"] == "pct_significant") & (df["term_type"].isin(["woman", "category", "interaction"]))]
    d = d.groupby(["model_id", "variant", "intersection", "term_type"], as_index=False)["value"].mean()
    models = sorted(d["model_id"].unique())
    fig, axes = new_figure(9, 2.8 * len(models), nrows=len(models), ncols=2, squeeze=False)
    for i, m in enumerate(models):
        for j, variant in enumerate(("faithful", "clean")):
            ax = axes[i][j]
            dm = d[(d["model_id"] == m) & (d["variant"] == variant)]
            inters = sorted(dm["intersection"].unique())
            x = np.arange(len(inters))
            for off, t in zip((-0.27, 0, 0.27), ("woman", "category", "interaction")):
                v = dm[dm["term_type"] == t].set_index("intersection").reindex(inters)["value"]
                ax.bar(x + off, v, 0.27, label=t)
            ax.axhline(5, color="k", lw=0.8, ls=":")
            ax.set_xticks(x, inters, fontsize=8)
            ax.set_ylabel("% significant (mean over terms)")
            ax.set_title(f"{m} ({variant})", fontsize=9)
            ax.legend(fontsize=7)
    save_figure(fig, out)


def labour_scatter(paths, out):
    """Predicted vs US 2019 women share per labour job: clean (Bayes reweighting, what the claims decide on)
    filled, faithful (the paper's 0.94 weighting) hollow, with the parity lines."""
    df = _read(paths)
    d = df[df["included"].astype(str) == "True"]
    models = sorted(d["model_id"].unique())
    fig, axes = new_figure(4.5 * max(1, len(models)), 4.2, ncols=max(1, len(models)), squeeze=False)
    for i, m in enumerate(models):
        ax = axes[0][i]
        dm = d[d["model_id"] == m]
        for variant, kw in (("clean", dict(s=14)), ("faithful", dict(s=14, facecolors="none", edgecolors="grey"))):
            dv = dm[dm["variant"] == variant]
            ax.scatter(pd.to_numeric(dv["us_women_pct"]), pd.to_numeric(dv["pred_women_pct"], errors="coerce"),
                       label=variant, **kw)
        dc = dm[dm["variant"] == "clean"]
        for _, r in dc.iterrows():
            ax.annotate(r["job"].split(" /")[0], (float(r["us_women_pct"]), float(r["pred_women_pct"] or np.nan)),
                        fontsize=6)
        ax.plot([0, 100], [0, 100], "k-", lw=0.8, label="model = US")
        ax.axhline(50, color="grey", ls=":", lw=0.8, label="parity")
        ax.axvspan(0, 25, color="tab:blue", alpha=0.06)
        ax.axvspan(75, 100, color="tab:red", alpha=0.06)
        ax.set_xlabel("US 2019 % women")
        ax.set_ylabel("predicted % women")
        ax.set_title(f"{m} ({len(dc)} jobs)", fontsize=9)
        ax.legend(fontsize=7)
    save_figure(fig, out)


def exact_vs_sampled(paths, out):
    """Sampled share of each leading job vs its exact probability under the model (same top-k filter)."""
    df = _read(paths)
    df = df[df["job"] != ""]
    models = sorted(df["model_id"].unique())
    fig, axes = new_figure(4.5 * len(models), 4.2, ncols=len(models), squeeze=False)
    for i, m in enumerate(models):
        ax = axes[0][i]
        d = df[df["model_id"] == m]
        ax.scatter(d["exact_prob"], d["sampled_share"], s=6, alpha=0.5)
        lim = [max(1e-4, d["exact_prob"][d["exact_prob"] > 0].min()), 1]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylim(bottom=0)  # shares are >= 0 (symlog would otherwise draw negative ticks)
        big = d[d["exact_prob"] * d["n"] >= 5]
        ax.set_title(f"{m}: |z|>1.96 in {(big['z'].abs() > 1.96).mean():.1%} of the {len(big)} cells\n"
                     f"with expected count >= 5 ({len(d)} cells drawn)", fontsize=9)
        ax.set_xlabel("exact P(leading job | prompt)")
        ax.set_ylabel("sampled share")
    save_figure(fig, out)
