"""The planted world's truth check: each method's estimate against the exact answer.

Two references, kept apart so an error can be placed:
- `lm_exact`: the trained LM's own exact leading-job probabilities (exact.py), i.e. what sampling,
  extraction, counting and regression should recover if the pipeline is right (pipeline fidelity);
- `planted`: the planted world (truth.csv / interactions.csv), which the LM only approximates after a
  short training run (training fidelity, reported as its own check).

Checks (one row each, long format; `item` names the job / term / prompt where there is one):
  extraction      agreement of the gazetteer + normaliser with the planted job on labelled continuations
  sampler         share of prompt x job cells with |z| > 1.96 (sampled share vs exact, cells with n p >= 5)
  training        mean total-variation distance between planted and LM-exact distributions per prompt
  regression      clean model (c) coefficients vs the saturated log-odds of the LM-exact cell probabilities:
                  share inside estimate +- 1.96 SE (coverage), per term type
  interactions    planted woman x category interactions: share significant with the planted sign (power),
                  in the LM's exact values (did the LM learn them?), and planted nulls significant (FPR)
  parity          women-share summary (mean deltas below 25% / above 75% US women, MSE, lambda) from the
                  samples vs computed exactly from LM-exact and from planted probabilities
  diversity       N50 / N90 per gender (base prompts) from samples (clean, with bootstrap CI) vs exact

CLI: python -m experiments.occupational_bias.truth_check --models planted_gpt2 --exact E.csv ... --out truth_check.csv
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from experiments.files import atomic_write_csv
from experiments.occupational_bias.diversity import coverage_n
from experiments.occupational_bias.extract import GazetteerExtractor
from experiments.occupational_bias.labour import agreement_summary, bayes_women_share, load_labour_table
from experiments.occupational_bias.regress import saturated_log_odds
from experiments.occupational_bias.world import NONE

CELL = ["gender", "category_value"]


def row(model, check, metric, value, *, item="", variant="clean", reference_kind="", reference=np.nan,
        ci=(np.nan, np.nan), n=np.nan, notes=""):
    return dict(model_id=model, check=check, item=item, variant=variant, metric=metric, value=float(value),
                reference_kind=reference_kind, reference=float(reference), ci_low=float(ci[0]),
                ci_high=float(ci[1]), n=float(n), notes=notes)


def extraction_rows(model: str, labelled: pd.DataFrame) -> list[dict]:
    ex = GazetteerExtractor()
    got = [ex.leading_job(c) for c in labelled["continuation"]]
    ok = np.asarray(got) == labelled["planted_job"].to_numpy()
    variant = labelled["continuation"].str.split().str[0] != labelled["planted_job"].str.split().str[0]
    return [row(model, "extraction", "agreement", ok.mean(), reference_kind="planted", reference=1.0,
                n=len(ok), notes=f"{int((~ok).sum())} disagreements; {int(variant.sum())} variant or none titles"),
            row(model, "extraction", "agreement_variants", ok[variant.to_numpy()].mean(), reference_kind="planted",
                reference=1.0, n=int(variant.sum()))]


def sampler_rows(model: str, exact: pd.DataFrame) -> list[dict]:
    big = exact[(exact["exact_prob"] * exact["n"] >= 5) & (exact["job"] != "")]
    share = float((big["z"].abs() > 1.96).mean())
    se = np.sqrt(0.05 * 0.95 / max(len(big), 1))
    return [row(model, "sampler", "share_abs_z_gt_1.96", share, reference_kind="lm_exact", reference=0.05,
                ci=(0.05 - 1.96 * se, 0.05 + 1.96 * se), n=len(big),
                notes="reference interval: 0.05 +- 1.96 binomial SE (cells are nearly independent)"),
            row(model, "sampler", "max_pruned_mass", exact["pruned_mass"].max(), reference_kind="lm_exact",
                reference=0.0)]


def exact_cells(exact: pd.DataFrame) -> pd.DataFrame:
    """prompt x job exact probabilities (job '' = no leading job)."""
    return exact.pivot_table(index=["group", *CELL, "category"], columns="job", values="exact_prob",
                             fill_value=0.0)


def training_rows(model: str, exact: pd.DataFrame, truth: pd.DataFrame) -> list[dict]:
    t = truth.assign(job=truth["job"].replace(NONE, "")).pivot_table(index="group", columns="job",
                                                                    values="planted_prob", fill_value=0.0)
    e = exact_cells(exact).droplevel([1, 2, 3])
    cols = sorted(set(t.columns) | set(e.columns))
    t, e = t.reindex(columns=cols, fill_value=0.0), e.reindex(index=t.index, columns=cols, fill_value=0.0)
    tv = 0.5 * (t - e).abs().sum(axis=1)
    return [row(model, "training", "mean_tv_planted_vs_lm", tv.mean(), reference_kind="planted", reference=0.0,
                n=len(tv), notes=f"max {tv.max():.3f} ({tv.idxmax()})")]


def lm_log_odds(exact: pd.DataFrame, intersection: str, jobs: list[str]) -> pd.DataFrame:
    e = exact[exact["category"].isin(["base", intersection])]
    cells = e[e["job"].isin(jobs)][["job", *CELL, "exact_prob"]].rename(columns={"exact_prob": "p"})
    full = pd.MultiIndex.from_product([jobs, *(sorted(e[c].unique()) for c in CELL)], names=["job", *CELL])
    cells = cells.set_index(["job", *CELL]).reindex(full, fill_value=0.0).reset_index()
    cells["p"] = cells["p"].clip(1e-9, 1 - 1e-9)
    return saturated_log_odds(cells)


def regression_rows(model: str, exact: pd.DataFrame, reg: pd.DataFrame, interactions: pd.DataFrame,
                    alpha: float) -> tuple[list[dict], pd.DataFrame]:
    r = reg[(reg["model_id"] == model) & (reg["variant"] == "clean") & (reg["model"] == "c")
            & (reg["status"] == "ok") & ~reg["separated"].astype(bool)].copy()
    parts = []
    for inter, g in r.groupby("intersection"):
        lo = lm_log_odds(exact, inter, sorted(g["job"].unique())).rename(columns={"value": "lm_exact"})
        parts.append(g.merge(lo[["job", "term", "lm_exact"]], on=["job", "term"], how="left"))
    m = pd.concat(parts, ignore_index=True) if parts else r.assign(lm_exact=np.nan)
    m["covered"] = (m["coef"] - m["lm_exact"]).abs() <= 1.96 * m["se"]
    rows = []
    for tt, g in m.groupby("term_type"):
        rows.append(row(model, "regression", "coverage_95", g["covered"].mean(), item=tt, reference_kind="lm_exact",
                        reference=0.95, n=len(g)))
    # planted interactions
    inter = m[m["term_type"] == "interaction"].copy()
    inter["category_value"] = inter["term"].str.split(":").str[1]
    inter = inter.merge(interactions[["job", "category_value", "delta", "planted_nonzero"]],
                        on=["job", "category_value"], how="left")
    inter["planted_nonzero"] = inter["planted_nonzero"].fillna(False).astype(bool)
    inter["detected"] = (inter["pvalue"] < alpha) & (np.sign(inter["coef"]) == np.sign(inter["delta"]))
    nz = inter[inter["planted_nonzero"]]
    null = inter[~inter["planted_nonzero"]]
    n_planted = int(interactions["planted_nonzero"].sum())
    rows += [
        row(model, "interactions", "power_planted", nz["detected"].mean() if len(nz) else 0.0,
            reference_kind="planted", reference=1.0, n=len(nz),
            notes=f"{len(nz)} of {n_planted} planted interactions have a job above the regression threshold"),
        row(model, "interactions", "lm_learned_share", (nz["lm_exact"] * np.sign(nz["delta"]) > 0.5).mean()
            if len(nz) else 0.0, reference_kind="lm_exact", reference=1.0, n=len(nz),
            notes="share of planted interactions whose exact LM log-odds contrast exceeds 0.5 with the planted sign"),
        row(model, "interactions", "lm_mean_abs_ratio", (nz["lm_exact"] / nz["delta"]).mean() if len(nz) else 0.0,
            reference_kind="planted", reference=1.0, n=len(nz), notes="mean LM-exact / planted delta"),
        row(model, "interactions", "fpr_planted_null", (null["pvalue"] < alpha).mean() if len(null) else 0.0,
            reference_kind="planted", reference=alpha, n=len(null),
            notes="planted-null interactions significant; includes real (learned) LM deviations from the plant"),
    ]
    inter_out = inter[["intersection", "job", "category_value", "delta", "planted_nonzero", "coef", "se", "pvalue",
                       "lm_exact", "detected"]]
    return rows, inter_out


def women_share_exact(probs: pd.DataFrame, table: pd.DataFrame, women_share: float) -> np.ndarray:
    """Clean predicted women % per labour job from exact base-prompt probabilities (rows man/woman)."""
    out = []
    for members in table["members"]:
        ms = [m for m in members.split("|") if m in probs.columns]
        rw = probs.loc["woman", ms].sum() if ms else 0.0
        rm = probs.loc["man", ms].sum() if ms else 0.0
        out.append((rw, rm))
    rw, rm = np.asarray(out, dtype=float).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100 * bayes_women_share(rw, rm, women_share)


def parity_rows(model: str, exact: pd.DataFrame, truth: pd.DataFrame, labour: pd.DataFrame,
                summary: pd.DataFrame, ws: float) -> list[dict]:
    table = load_labour_table()
    lab = labour[(labour["model_id"] == model) & (labour["variant"] == "clean")].set_index("job").reindex(table["job"])
    keep = lab["included"].fillna(False).astype(bool).to_numpy()
    e = exact_cells(exact).droplevel([1, 2, 3])
    t = truth.pivot_table(index="group", columns="job", values="planted_prob", fill_value=0.0)
    us = table["us_women_pct"].to_numpy(dtype=float)
    refs = {kind: agreement_summary(women_share_exact(p, table, ws)[keep], us[keep], with_parity=True, n_boot=0)
            .set_index("metric")["value"] for kind, p in (("lm_exact", e), ("planted", t))}
    est = summary[(summary["model_id"] == model) & (summary["variant"] == "clean")
                  & (summary["target"] == "women")].set_index("metric")
    rows = []
    for metric in ("mean_delta_low_pp", "mean_delta_high_pp", "mse_share", "lambda_parity_slope", "pearson_r"):
        if metric not in est.index:
            continue
        e_ = est.loc[metric]
        for kind, ref in refs.items():
            if metric in ref.index:
                rows.append(row(model, "parity", metric, e_["value"], reference_kind=kind, reference=ref[metric],
                                ci=(e_["ci_low"], e_["ci_high"]), n=e_["n_jobs"],
                                notes="CI: bootstrap over jobs (the analysis's)"))
    return rows


def diversity_rows(model: str, exact: pd.DataFrame, truth: pd.DataFrame, div: pd.DataFrame) -> list[dict]:
    e = exact_cells(exact).droplevel([1, 2, 3]).drop(columns=[""], errors="ignore")
    t = truth[truth["job"] != NONE].pivot_table(index="group", columns="job", values="planted_prob", fill_value=0.0)
    d = div[(div["model_id"] == model) & (div["variant"] == "clean") & (div["level"] == "group")
            & (div["category"] == "base")]
    rows = []
    for gender in ("man", "woman"):
        for metric, target in (("n50", 0.5), ("n90", 0.9)):
            est = d[(d["gender"] == gender) & (d["metric"] == metric)]
            if est.empty:
                continue
            est = est.iloc[0]
            for kind, p in (("lm_exact", e), ("planted", t)):
                rows.append(row(model, "diversity", metric, est["value"], item=f"base {gender}", reference_kind=kind,
                                reference=float(coverage_n(p.loc[gender].to_numpy(), target)),
                                ci=(est["ci_low"], est["ci_high"])))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("exact", "completions"):
        ap.add_argument(f"--{name}", nargs="+", required=True)
    for name in ("regressions", "diversity", "labour", "labour-summary", "truth", "terms", "interactions",
                 "labelled", "out"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--women-share", type=float, default=0.47)
    args = ap.parse_args(argv)
    exact_all = pd.concat([pd.read_csv(p, keep_default_na=False) for p in args.exact], ignore_index=True)
    truth, interactions = pd.read_csv(args.truth), pd.read_csv(args.interactions)
    labelled = pd.read_csv(args.labelled, keep_default_na=False)
    reg, div = pd.read_csv(args.regressions), pd.read_csv(args.diversity)
    labour, lsum = pd.read_csv(args.labour), pd.read_csv(args.labour_summary)
    rows, inter_tables = [], []
    for model in args.models:
        exact = exact_all[exact_all["model_id"] == model]
        rows += extraction_rows(model, labelled)
        rows += sampler_rows(model, exact)
        rows += training_rows(model, exact, truth)
        r, inter = regression_rows(model, exact, reg, interactions, args.alpha)
        rows += r
        inter_tables.append(inter.assign(model_id=model))
        rows += parity_rows(model, exact, truth, labour, lsum, args.women_share)
        rows += diversity_rows(model, exact, truth, div)
    out = pd.DataFrame(rows)
    undefined = ~np.isfinite(out["value"])
    if undefined.any():  # e.g. no planted interaction above the regression threshold: leave the metric out
        print("undefined (left out):", out.loc[undefined, ["check", "metric", "item"]].to_dict("records"))
    out = out[~undefined]
    atomic_write_csv(out, args.out, allow_nan=["reference", "ci_low", "ci_high", "n"])
    atomic_write_csv(pd.concat(inter_tables, ignore_index=True), args.out.replace(".csv", "_interactions.csv"),
                     allow_nan=["coef", "se", "pvalue", "lm_exact", "delta"])
    print(out[["model_id", "check", "item", "metric", "value", "reference_kind", "reference"]].to_string())


if __name__ == "__main__":
    main()
