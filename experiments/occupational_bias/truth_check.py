"""The planted world's truth check: each method's estimate against the exact answer.

Two references, kept apart so an error can be placed:
- `lm_exact`: the trained LM's own exact leading-job probabilities (exact.py), i.e. what sampling,
  extraction, counting and regression should recover if the pipeline is right (pipeline fidelity);
- `planted`: the planted world (truth.csv / interactions.csv), which the LM approximates after training
  (training fidelity, reported as its own check).

Checks (one row each, long format; `item` names the job / term / prompt where there is one):
  extraction      agreement of the gazetteer + normaliser with the planted job on labelled continuations (a
                  sanity check: the planter writes its variant titles from the extractor's own gazetteer)
  sampler         dispersion: mean z^2 of sampled vs exact share over prompt x outcome cells with n p >= 5
  training        mean total-variation distance between planted and LM-exact distributions per prompt, and
                  the reference it is judged against: the mean TV between each planted prompt and its
                  gender's average over the 14 prompts (what an LM that ignored the category word would get)
  regression      model (c) fitted on the LEADING job of each completion (the event exact.py computes, so a
                  completion naming several jobs is counted as the exact reference counts it) vs the LM-exact
                  log-odds: `cell_coverage_95`, per cell kind, the share of fitted cell log-odds x'b (+-1.96
                  sqrt(x'Vx), the fit's own covariance; intercept and every term enter) holding the exact value,
                  each cell once (independent samples); `coverage_95` the same for the coefficients against the
                  saturated contrasts, each distinct estimate once (the intercept and woman terms share the base
                  cells in all four intersections; all of a job's category terms share its base-man cell, so
                  these are correlated and shown as a description); `coverage_95_any_mention` for the
                  analysis's own fits (a job named anywhere)
  interactions    planted woman x category interactions: share significant with the planted sign among ALL
                  planted ones (power; a planted term whose job missed the regression threshold or whose fit
                  was separated counts as missed), the LM's exact contrast / planted delta (did the LM learn
                  it? per term in truth_check_interactions.csv), and planted nulls significant (FPR) beside the
                  rate a test of nominal size gives for the LM's own exact contrasts there (an LM never learns a
                  null exactly; that part is training, the rest is the test)
  parity          women-share summary (mean deltas below 25% / above 75% US women, MSE, Pearson r, skill,
                  lambda) from the samples, with the analysis's CI from resampling completions (the estimation
                  error), vs computed exactly from LM-exact and from planted probabilities
  diversity       N50 / N90 per gender (base prompts) from samples (clean, with bootstrap CI) vs exact

CLI: python -m experiments.occupational_bias.truth_check --models planted_gpt2 --exact E.csv ... --out truth_check.csv
     (also writes truth_check_interactions.csv beside --out, or --interactions-out)
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.stats import norm

from experiments.files import atomic_write_csv
from experiments.occupational_bias.diversity import coverage_n
from experiments.occupational_bias.extract import GazetteerExtractor
from experiments.occupational_bias.labour import agreement_summary, bayes_women_share, load_labour_table
from experiments.occupational_bias.regress import BASE, fit_cells, saturated_log_odds
from experiments.occupational_bias.world import NONE

CELL = ["gender", "category_value"]
PARITY_METRICS = ("mean_delta_low_pp", "mean_delta_high_pp", "mse_share", "pearson_r", "tracking_skill",
                  "lambda_parity_slope")


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
    """Dispersion = mean z^2 over prompt x outcome cells with n p >= 5 (no leading job included): 1 for a sampler
    drawing from exactly the exact distribution (sd sqrt(2 / cells)); a bias b per cell adds (b / SE)^2."""
    big = exact[exact["exact_prob"] * exact["n"] >= 5]
    jobs = big[big["job"] != ""]
    share = float((jobs["z"].abs() > 1.96).mean())
    return [row(model, "sampler", "dispersion", float((big["z"] ** 2).mean()), reference_kind="lm_exact",
                reference=1.0, n=len(big),
                notes=f"share of job cells with |z| > 1.96: {share:.3f} (0.05 expected) of {len(jobs)}"),
            row(model, "sampler", "max_pruned_mass", exact["pruned_mass"].max(), reference_kind="lm_exact",
                reference=0.0)]


def exact_cells(exact: pd.DataFrame) -> pd.DataFrame:
    """prompt x job exact probabilities (job '' = no leading job)."""
    return exact.pivot_table(index=["group", *CELL, "category"], columns="job", values="exact_prob",
                             fill_value=0.0)


def planted_cells(truth: pd.DataFrame) -> pd.DataFrame:
    """group x job planted probabilities (NONE as '')."""
    return truth.assign(job=truth["job"].replace(NONE, "")).pivot_table(index="group", columns="job",
                                                                        values="planted_prob", fill_value=0.0)


def training_rows(model: str, exact: pd.DataFrame, truth: pd.DataFrame) -> list[dict]:
    t = planted_cells(truth)
    e = exact_cells(exact).droplevel([1, 2, 3])
    cols = sorted(set(t.columns) | set(e.columns))
    t, e = t.reindex(columns=cols, fill_value=0.0), e.reindex(index=t.index, columns=cols, fill_value=0.0)
    tv = 0.5 * (t - e).abs().sum(axis=1)
    gender = truth.drop_duplicates("group").set_index("group")["gender"].reindex(t.index)
    ref = 0.5 * (t - t.groupby(gender).transform("mean")).abs().sum(axis=1)
    return [row(model, "training", "mean_tv_planted_vs_lm", tv.mean(), reference_kind="planted", reference=0.0,
                n=len(tv), notes=f"max {tv.max():.3f} ({tv.idxmax()})"),
            row(model, "training", "mean_tv_planted_vs_gender_average", ref.mean(), reference_kind="planted",
                n=len(ref), notes="what an LM ignoring the category word would score")]


def lm_log_odds(exact: pd.DataFrame, intersection: str, jobs: list[str]) -> pd.DataFrame:
    e = exact[exact["category"].isin([BASE, intersection])]
    cells = e[e["job"].isin(jobs)][["job", *CELL, "exact_prob"]].rename(columns={"exact_prob": "p"})
    full = pd.MultiIndex.from_product([jobs, *(sorted(e[c].unique()) for c in CELL)], names=["job", *CELL])
    cells = cells.set_index(["job", *CELL]).reindex(full, fill_value=0.0).reset_index()
    cells["p"] = cells["p"].clip(1e-9, 1 - 1e-9)
    return saturated_log_odds(cells)


def leading_fits(completions: pd.DataFrame, reg: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Model (c) per (intersection, job) of the analysis's clean regressions, refitted with y = "the leading job
    of the completion is this job" (one outcome per completion, as exact.py's event). Returns (terms: Fit.terms
    plus intersection, job, separated, status; cells: per fitted gender x category_value cell its fitted
    log-odds x'b and SE sqrt(x' V x) from the fit's covariance, plus intersection, job, separated, status)."""
    ex = GazetteerExtractor()
    comp = completions[completions["prompt_type"] == "identity"]
    lead = comp.assign(leading=[ex.leading_job(c) for c in comp["continuation"]])
    parts, cells_out = [], []
    for inter, g in reg.groupby("intersection"):
        d = lead[lead["category"].isin([BASE, inter])]
        n = d.groupby(CELL).size().rename("n").reset_index()
        for job in sorted(g["job"].unique()):
            s = d[d["leading"] == job].groupby(CELL).size()
            cells = n.assign(successes=[int(s.get(k, 0)) for k in zip(n["gender"], n["category_value"])])
            f = fit_cells(cells, "c")
            info = dict(intersection=inter, job=job, separated=f.separated, status=f.status)
            parts.append(f.terms.assign(**info))
            if f.status == "ok" and f.cov is not None:
                fitted = cells[cells["n"] > 0].reset_index(drop=True)[CELL]
                with np.errstate(invalid="ignore"):
                    se = np.sqrt(np.einsum("ij,jk,ik->i", f.design, f.cov, f.design))
                cells_out.append(fitted.assign(eta=f.design @ f.coef, se=se, **info))
    cols = ["gender", "category_value", "eta", "se", "intersection", "job", "separated", "status"]
    return (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(),
            pd.concat(cells_out, ignore_index=True) if cells_out else pd.DataFrame(columns=cols))


def cell_coverage(cells: pd.DataFrame, exact: pd.DataFrame) -> pd.DataFrame:
    """Fitted cell log-odds vs the exact leading-job log-odds of the LM, each cell once: the base cells of a job
    appear in all four intersections' fits (the same estimate, the model being saturated), a category cell in
    one. Columns as `cells` plus lm_exact, covered, kind ("base man", "base woman", "category man",
    "category woman"). Cells are independent samples (different prompts), so their coverage is a binomial
    count, unlike the coefficients, which share the base cells."""
    if cells.empty:
        return cells.assign(lm_exact=pd.Series(dtype=float), covered=pd.Series(dtype=bool), kind="")
    c = cells.drop_duplicates(["job", *CELL]).copy()
    p = exact.set_index(["job", *CELL])["exact_prob"].groupby(level=[0, 1, 2]).sum()
    pe = np.clip([p.get((j, g, v), 0.0) for j, g, v in zip(c["job"], c["gender"], c["category_value"])], 1e-9,
                 1 - 1e-9)
    c["lm_exact"] = np.log(pe) - np.log1p(-pe)
    c["covered"] = (c["eta"] - c["lm_exact"]).abs() <= 1.96 * c["se"]
    c["kind"] = np.where(c["category_value"] == BASE, "base ", "category ") + c["gender"]
    return c


def _with_exact(fits: pd.DataFrame, exact: pd.DataFrame) -> pd.DataFrame:
    if fits.empty:
        return fits.assign(lm_exact=pd.Series(dtype=float), covered=pd.Series(dtype=bool))
    parts = []
    for inter, g in fits.groupby("intersection"):
        lo = lm_log_odds(exact, inter, sorted(g["job"].unique())).rename(columns={"value": "lm_exact"})
        parts.append(g.merge(lo[["job", "term", "lm_exact"]], on=["job", "term"], how="left"))
    m = pd.concat(parts, ignore_index=True)
    m["covered"] = (m["coef"] - m["lm_exact"]).abs() <= 1.96 * m["se"]
    return m


def distinct_estimates(m: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct estimate: the intercept and woman term once per job (base cells only, identical in
    every intersection), the category and interaction terms once per (job, term)."""
    base_terms = m["term_type"].isin(["intercept", "woman"])
    return pd.concat([m[base_terms].drop_duplicates(["job", "term"]), m[~base_terms]], ignore_index=True)


def regression_rows(model: str, exact: pd.DataFrame, reg: pd.DataFrame, completions: pd.DataFrame,
                    interactions: pd.DataFrame, alpha: float) -> tuple[list[dict], pd.DataFrame]:
    r = reg[(reg["model_id"] == model) & (reg["variant"] == "clean") & (reg["model"] == "c")
            & (reg["status"] == "ok") & ~reg["separated"].astype(bool)].copy()
    rows = []
    if len(r):
        lead, cells = leading_fits(completions, r)
        ok = lambda d: d[(d["status"] == "ok") & ~d["separated"].astype(bool)]  # noqa: E731
        cov = cell_coverage(ok(cells), exact)
        for kind, g in cov.groupby("kind"):
            rows.append(row(model, "regression", "cell_coverage_95", g["covered"].mean(), item=kind,
                            reference_kind="lm_exact", reference=0.95, n=len(g),
                            notes=f"{int(g['covered'].sum())} of {len(g)} covered"))
        for name, fits in (("coverage_95", ok(lead)), ("coverage_95_any_mention", r)):
            m = distinct_estimates(_with_exact(fits, exact))
            for tt, g in m.groupby("term_type"):
                rows.append(row(model, "regression", name, g["covered"].mean(), item=tt, reference_kind="lm_exact",
                                reference=0.95, n=len(g), notes=f"{int(g['covered'].sum())} of {len(g)} covered"))
        m = _with_exact(r, exact)
    else:
        m = r.assign(lm_exact=np.nan, covered=False)
    # planted interactions (the analysis's own clean fits)
    inter = m[m["term_type"] == "interaction"].copy()
    inter["category_value"] = inter["term"].str.split(":").str[1]
    planted = interactions[interactions["planted_nonzero"].astype(bool)][["intersection", "job", "category_value",
                                                                          "delta"]]
    allp = planted.merge(inter[["job", "category_value", "coef", "se", "pvalue", "lm_exact"]],
                         on=["job", "category_value"], how="left")
    allp["in_regression"] = allp["coef"].notna()
    allp["detected"] = (allp["pvalue"] < alpha) & (np.sign(allp["coef"]) == np.sign(allp["delta"]))
    nulls = inter.merge(interactions[["job", "category_value", "delta", "planted_nonzero"]],
                        on=["job", "category_value"], how="left")
    null = nulls[~nulls["planted_nonzero"].fillna(False).astype(bool)]
    # what a test of nominal size rejects for the LM's own (learned, never exactly zero) contrasts at these SEs
    zs = null["lm_exact"] / null["se"]
    expected = norm.sf(1.96 - zs) + norm.cdf(-1.96 - zs)
    ratio = allp["lm_exact"] / allp["delta"]
    rows += [
        row(model, "interactions", "power_planted", allp["detected"].mean() if len(allp) else 0.0,
            reference_kind="planted", reference=1.0, n=len(allp),
            notes=f"{int(allp['detected'].sum())} of {len(allp)} planted interactions detected with their sign; "
                  f"{int(allp['in_regression'].sum())} in a non-separated regression"),
        row(model, "interactions", "lm_min_ratio", ratio.min() if ratio.notna().any() else 0.0,
            reference_kind="planted", reference=1.0, n=int(ratio.notna().sum()),
            notes="smallest LM-exact / planted delta over the planted interactions"),
        row(model, "interactions", "lm_mean_ratio", ratio.mean() if ratio.notna().any() else 0.0,
            reference_kind="planted", reference=1.0, n=int(ratio.notna().sum()), notes="mean LM-exact / planted delta"),
        row(model, "interactions", "fpr_planted_null", (null["pvalue"] < alpha).mean() if len(null) else 0.0,
            reference_kind="planted", reference=alpha, n=len(null),
            notes="planted-null interactions significant; includes real (learned) LM deviations from the plant"),
        row(model, "interactions", "fpr_expected_from_lm", expected.mean() if len(null) else 0.0,
            reference_kind="lm_exact", n=len(null),
            notes=f"rejection rate a nominal test gives for the LM's exact contrasts on the planted nulls (median "
                  f"|LM contrast| {null['lm_exact'].abs().median():.3f}, median SE {null['se'].median():.3f})"),
    ]
    inter_out = allp[["intersection", "job", "category_value", "delta", "coef", "se", "pvalue", "lm_exact",
                      "in_regression", "detected"]]
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
    refs = {kind: agreement_summary(women_share_exact(p, table, ws)[keep], us[keep], with_parity=True)
            .set_index("metric")["value"] for kind, p in (("lm_exact", e), ("planted", t))}
    est = summary[(summary["model_id"] == model) & (summary["variant"] == "clean")
                  & (summary["target"] == "women")].set_index("metric")
    rows = []
    for metric in PARITY_METRICS:
        if metric not in est.index:
            continue
        e_ = est.loc[metric]
        for kind, ref in refs.items():
            if metric in ref.index:
                rows.append(row(model, "parity", metric, e_["value"], reference_kind=kind, reference=ref[metric],
                                ci=(e_["ci_low"], e_["ci_high"]), n=e_["n_jobs"],
                                notes="CI: the analysis's, from resampling completions within each prompt"))
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
    ap.add_argument("--interactions-out", default=None, help="default: <out>_interactions.csv")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--women-share", type=float, default=0.47)
    args = ap.parse_args(argv)
    exact_all = pd.concat([pd.read_csv(p, keep_default_na=False) for p in args.exact], ignore_index=True)
    comp_all = pd.concat([pd.read_csv(p, keep_default_na=False) for p in args.completions], ignore_index=True)
    truth, interactions = pd.read_csv(args.truth), pd.read_csv(args.interactions)
    labelled = pd.read_csv(args.labelled, keep_default_na=False)
    reg, div = pd.read_csv(args.regressions), pd.read_csv(args.diversity)
    labour, lsum = pd.read_csv(args.labour), pd.read_csv(args.labour_summary)
    rows, inter_tables = [], []
    for model in args.models:
        exact = exact_all[exact_all["model_id"] == model]
        comp = comp_all[comp_all["model_id"] == model]
        rows += extraction_rows(model, labelled)
        rows += sampler_rows(model, exact)
        rows += training_rows(model, exact, truth)
        r, inter = regression_rows(model, exact, reg, comp, interactions, args.alpha)
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
    atomic_write_csv(pd.concat(inter_tables, ignore_index=True),
                     args.interactions_out or args.out.replace(".csv", "_interactions.csv"),
                     allow_nan=["coef", "se", "pvalue", "lm_exact", "delta"])
    print(out[["model_id", "check", "item", "metric", "value", "reference_kind", "reference"]].to_string())


if __name__ == "__main__":
    main()
