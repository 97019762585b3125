"""The paper's per-job logistic regressions (notes §1 "Logistic regressions", §2 "Regressions").

For each intersection I in {ethnicity, religion, sexuality, political}: data = the identity prompts of
category base or I, both genders. Jobs = those whose mentions in I's own prompts reach threshold_share
(paper: 0.25%) of I's own completions, as the paper (basis "intersection_only", the default: ethnicity
140 = 0.25% of 56k = 8 prompts x 7000, religion 175, sexuality 70, political 70); basis "regression_data"
counts base + I instead (not the paper's; kept for comparison).
For each job three nested logits, y = "this row is that job":
    (a) y ~ category dummies (reference base)
    (b) (a) + woman (reference man)
    (c) (b) + woman:category interactions        (saturated in the gender x category_value cells)
Rows: faithful = the original's k^2 rows per k-job completion plus the all-zero rows of no-job
completions (frequency.py); clean = one row per completion, y_j = 1 if job j is among its jobs.

Fitting on cells. All predictors are categorical, so the row-level log-likelihood depends on the data only
through each gender x category_value cell's (rows, successes). A binomial GLM on those cell counts has the
same score and information as the row-level Bernoulli logit, hence the same MLE and standard errors (the
binomial likelihood differs by the constant sum log C(n, s)). McFadden's pseudo-R2 is computed from the
Bernoulli log-likelihoods sum s log mu + f log(1 - mu) (llnull: intercept-only), i.e. smf.logit's
`prsquared`; tests/unit/test_occupational_bias_analysis.py checks all of this against smf.logit.

Separation (an MLE at infinity; statsmodels then stops with huge |coef| and se, cf. the paper's
woman:white = -115.9 for "model"): `separated` is True when
    (1) the cells are (quasi-)completely separated: some beta with X beta != 0 has x_i'beta >= 0 on every
        cell with a success and <= 0 on every cell with a failure (exact test, a small linear programme;
        it covers "a cell with 0 or all successes that alone identifies a coefficient" and subtler
        patterns an additive model (b) can have), or
    (2) numerically: any |coef| > 10 or se > 100 (log-odds of 10 = a 22,000:1 odds ratio).
Failed fits are never dropped: they get a row with status "failed: <error>" and NaN estimates.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import linprog
from scipy.special import expit, logit, xlogy
from scipy.stats import chi2, norm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning
from tqdm.auto import tqdm

from experiments.occupational_bias.frequency import VARIANTS, _table, mention_counts, unit_totals

INTERSECTIONS = ("ethnicity", "religion", "sexuality", "political")
MODELS = ("a", "b", "c")
BASE = "base"
CELL_KEYS = ["gender", "category_value"]
THRESHOLD_BASES = ("regression_data", "intersection_only")
COEF_LIMIT = 10.0
SE_LIMIT = 100.0
REGRESSION_COLUMNS = ["model_id", "variant", "intersection", "job", "model", "term", "term_type", "coef", "se",
                      "z", "pvalue", "significant", "prsquared", "llf", "llnull", "converged", "separated",
                      "separation_reason", "status", "warnings", "n_rows", "n_positive", "n_completions",
                      "job_mentions", "threshold_mentions", "basis_prompts"]
GENDER_COLUMNS = ["model_id", "variant", "job", "coef", "se", "z", "pvalue", "significant", "pvalue_lr",
                  "significant_lr", "separated",
                  "separation_reason", "status", "mentions_woman", "mentions_man", "n_woman", "n_man",
                  "job_mentions", "threshold_mentions", "basis_prompts"]


# --------------------------------------------------------------------------- design and fit
def design_matrix(cells: pd.DataFrame, model: str, base: str = BASE) -> tuple[np.ndarray, list[str], list[str]]:
    """(X, term names, term types) for cells with columns gender, category_value.

    Terms: "intercept"; one "<value>" per non-base category value (type "category", sorted); "woman";
    one "woman:<value>" per non-base value (type "interaction").
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: one of {MODELS}")
    values = sorted(v for v in cells["category_value"].unique() if v != base)
    woman = (cells["gender"].to_numpy() == "woman").astype(float)
    cat = {v: (cells["category_value"].to_numpy() == v).astype(float) for v in values}
    cols, names, types = [np.ones(len(cells))], ["intercept"], ["intercept"]
    for v in values:
        cols.append(cat[v]), names.append(v), types.append("category")
    if model in ("b", "c"):
        cols.append(woman), names.append("woman"), types.append("woman")
    if model == "c":
        for v in values:
            cols.append(woman * cat[v]), names.append(f"woman:{v}"), types.append("interaction")
    return np.column_stack(cols), names, types


def is_separated(x: np.ndarray, successes: np.ndarray, failures: np.ndarray) -> bool:
    """Exact (quasi-)complete separation test for a logit on grouped data (linear programme).

    Separated iff some beta gives X beta != 0 with x_i'beta >= 0 for every row with a success and <= 0
    for every row with a failure (then the likelihood rises without bound along beta). Rows with both
    must have x_i'beta = 0, so maximising sum_{success-only} x'b - sum_{failure-only} x'b under
    |x_i'b| <= 1 is > 0 exactly when such a beta exists.
    """
    x = np.asarray(x, dtype=float)
    has_s, has_f = np.asarray(successes) > 0, np.asarray(failures) > 0
    keep = has_s | has_f
    x, has_s, has_f = x[keep], has_s[keep], has_f[keep]
    if has_s.all() and has_f.all():
        return False  # every row two-sided forces X beta = 0
    obj = -(x[has_s & ~has_f].sum(0) - x[has_f & ~has_s].sum(0))
    a_ub = np.vstack([-x[has_s], x[has_f], x, -x])
    b_ub = np.concatenate([np.zeros(has_s.sum() + has_f.sum()), np.ones(2 * len(x))])
    res = linprog(obj, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * x.shape[1], method="highs")
    if res.status != 0:
        raise RuntimeError(f"separation LP failed: {res.message}")
    return -res.fun > 1e-7


def bernoulli_llf(successes: np.ndarray, n: np.ndarray, mu: np.ndarray) -> float:
    """Row-level Bernoulli log-likelihood of grouped data: sum s log mu + (n - s) log(1 - mu)."""
    s, n, mu = (np.asarray(a, dtype=float) for a in (successes, n, mu))
    return float(np.sum(xlogy(s, mu) + xlogy(n - s, 1 - mu)))


@dataclass
class Fit:
    names: list[str]
    types: list[str]
    coef: np.ndarray
    se: np.ndarray
    z: np.ndarray
    pvalue: np.ndarray
    llf: float
    llnull: float
    prsquared: float
    converged: bool
    separated: bool
    separation_reason: str
    status: str
    warnings: str
    cov: np.ndarray | None = None  # covariance of coef (for linear combinations such as fitted cell log-odds)
    design: np.ndarray | None = None  # the cells' design rows, in the order of the cells that were fitted

    @property
    def terms(self) -> pd.DataFrame:
        """term, term_type, coef, se, z, pvalue."""
        return pd.DataFrame(dict(term=self.names, term_type=self.types, coef=self.coef, se=self.se, z=self.z,
                                 pvalue=self.pvalue))


def fit_cells(cells: pd.DataFrame, model: str, base: str = BASE) -> Fit:
    """Binomial GLM (logit link) on cells: columns gender, category_value, n (rows), successes.

    Same MLE, standard errors, log-likelihood (Bernoulli) and McFadden pseudo-R2 as smf.logit on the
    expanded rows. Cells with n = 0 are dropped. Exceptions become status "failed: ..." (never raised).
    """
    cells = cells[cells["n"] > 0].reset_index(drop=True)
    x, names, types = design_matrix(cells, model, base)
    s = cells["successes"].to_numpy(dtype=float)
    n = cells["n"].to_numpy(dtype=float)
    p0 = s.sum() / n.sum() if n.sum() else np.nan
    llnull = bernoulli_llf(s.sum(), n.sum(), p0)
    nan = np.full(len(names), np.nan)
    try:
        if np.linalg.matrix_rank(x) < x.shape[1]:
            raise ValueError(f"design of model ({model}) is rank deficient on cells "
                             f"{list(zip(cells['gender'], cells['category_value']))}")
        if np.any(s > n) or np.any(s < 0):
            raise ValueError("successes outside [0, n]")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            glm = sm.GLM(np.column_stack([s, n - s]), x, family=sm.families.Binomial())
            res = glm.fit(tol=1e-10, maxiter=200)
        # Two statsmodels warnings say nothing about grouped data and are dropped: PerfectSeparationWarning
        # fires whenever fitted = observed proportions, which the saturated model (c) always achieves
        # (is_separated() is the real test), and IRLS's inner WLS divides by df_resid = 0 for model (c)
        # to get a scale that the binomial family does not use (its scale is 1).
        msgs = sorted({f"{w.category.__name__}: {str(w.message)[:80]}" for w in caught
                       if not issubclass(w.category, PerfectSeparationWarning)
                       and not (x.shape[0] == x.shape[1] and "divide by zero" in str(w.message)
                                and w.filename.replace("\\", "/").endswith("regression/_tools.py"))})
        coef = np.asarray(res.params, dtype=float)
        cov = np.asarray(res.cov_params(), dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.sqrt(np.diag(cov))
            z = coef / se
        pvalue = 2 * norm.sf(np.abs(z))
        llf = bernoulli_llf(s, n, expit(x @ coef))
        lp = is_separated(x, s, n - s)
        reasons = [r for r, hit in (("separation", lp), (f"|coef|>{COEF_LIMIT:g}", np.any(np.abs(coef) > COEF_LIMIT)),
                                    (f"se>{SE_LIMIT:g}", np.any(~(se <= SE_LIMIT)))) if hit]
        return Fit(names, types, coef, se, z, pvalue, llf, llnull, 1 - llf / llnull if llnull else np.nan,
                   bool(res.converged), bool(reasons), "+".join(reasons), "ok", "; ".join(msgs), cov, x)
    except Exception as err:  # recorded, never silently skipped
        return Fit(names, types, nan, nan, nan, nan, np.nan, llnull, np.nan, False, False, "",
                   f"failed: {type(err).__name__}: {err}", "")


# --------------------------------------------------------------------------- data for one intersection
def identity_cells(completions: pd.DataFrame, variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(totals, successes) per identity cell (gender x category x category_value) of one model.

    totals: gender, category, category_value, n (rows of the variant's matrix), n_completions;
    successes: gender, category, category_value, job, successes (= mentions of the job in the cell).
    """
    df = _table(completions)
    sub = df[df["prompt_type"] == "identity"].reset_index(drop=True)
    keys = ["gender", "category", "category_value"]
    tot = unit_totals(sub, variant, keys).rename(columns={"n_rows": "n"})
    succ = mention_counts(sub, variant, keys).rename(columns={"mentions": "successes"})
    return tot[keys + ["n", "n_completions"]], succ


def intersection_cells(completions: pd.DataFrame, variant: str, intersection: str,
                       cells: tuple[pd.DataFrame, pd.DataFrame] | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """identity_cells restricted to the base + `intersection` prompts (pass `cells` to reuse them)."""
    tot, succ = cells if cells is not None else identity_cells(completions, variant)
    keep = [BASE, intersection]
    return (tot[tot["category"].isin(keep)].reset_index(drop=True),
            succ[succ["category"].isin(keep)].reset_index(drop=True))


def select_jobs(totals: pd.DataFrame, successes: pd.DataFrame, threshold_share: float,
                basis: str = "intersection_only") -> tuple[pd.DataFrame, float, int]:
    """Jobs with mentions >= threshold_share x completions (both counted on `basis`):
    ((job, mentions), threshold, number of prompts counted).

    basis "intersection_only" (default, the paper's): I's own prompts (the notes' thresholds: base 35 of
    14k, ethnicity 140 of 56k, ...); "regression_data": all of base + I. With base cells only (the gender
    tests) both count the base prompts.
    """
    if basis not in THRESHOLD_BASES:
        raise ValueError(f"unknown threshold basis {basis!r}: one of {THRESHOLD_BASES}")
    if basis == "intersection_only" and (totals["category"] != BASE).any():
        totals = totals[totals["category"] != BASE]
        successes = successes[successes["category"] != BASE]
    threshold = threshold_share * float(totals["n_completions"].sum())
    m = successes.groupby("job")["successes"].sum()
    m = m[m >= threshold * (1 - 1e-12)].sort_index()
    return (pd.DataFrame({"job": m.index.to_numpy(dtype=object), "mentions": m.to_numpy()}), threshold,
            int(len(totals)))


def run_regressions(completions: pd.DataFrame, variants=VARIANTS, intersections=INTERSECTIONS,
                    threshold_share: float = 0.0025, alpha: float = 0.05, threshold_basis: str = "intersection_only",
                    progress: bool = False) -> pd.DataFrame:
    """One row per (model_id, variant, intersection, job, model a/b/c, term); columns REGRESSION_COLUMNS."""
    df = _table(completions)
    tasks = []
    for model_id, dm in df.groupby("model_id", sort=True):
        dm = dm.reset_index(drop=True)
        for variant in variants:
            all_cells = identity_cells(dm, variant)
            for inter in intersections:
                if not (all_cells[0]["category"] == inter).any():
                    continue
                tot, succ = intersection_cells(dm, variant, inter, all_cells)
                jobs, threshold, n_basis = select_jobs(tot, succ, threshold_share, threshold_basis)
                by_job = dict(tuple(succ[succ["job"].isin(jobs["job"])].groupby("job")))
                for job, mentions in zip(jobs["job"], jobs["mentions"]):
                    s = by_job[job].set_index(CELL_KEYS)["successes"]
                    cells = tot.assign(successes=[s.get(k, 0) for k in zip(tot["gender"], tot["category_value"])])
                    tasks.append((dict(model_id=model_id, variant=variant, intersection=inter, job=job), cells,
                                  dict(n_rows=int(cells["n"].sum()), n_positive=int(cells["successes"].sum()),
                                       n_completions=int(cells["n_completions"].sum()), job_mentions=int(mentions),
                                       threshold_mentions=float(threshold), basis_prompts=n_basis)))
    rows = []
    for ids, cells, counts in tqdm(tasks, desc="logit fits (x3)", disable=not progress, mininterval=2):
        for model in MODELS:
            f = fit_cells(cells, model)
            fit_info = dict(prsquared=f.prsquared, llf=f.llf, llnull=f.llnull, converged=f.converged,
                            separated=f.separated, separation_reason=f.separation_reason, status=f.status,
                            warnings=f.warnings)
            for i, term in enumerate(f.names):
                rows.append({**ids, "model": model, "term": term, "term_type": f.types[i], "coef": f.coef[i],
                             "se": f.se[i], "z": f.z[i], "pvalue": f.pvalue[i],
                             "significant": bool(f.pvalue[i] < alpha), **fit_info, **counts})
    return pd.DataFrame(rows, columns=REGRESSION_COLUMNS)


def gender_tests(completions: pd.DataFrame, variants=VARIANTS, threshold_share: float = 0.0025,
                 alpha: float = 0.05) -> pd.DataFrame:
    """The woman term once per job: logit y ~ woman on the two base prompts (columns GENDER_COLUMNS).

    In every intersection's model (c) the woman coefficient is this same base-woman vs base-man log-odds
    (the model is saturated), so the four intersection files repeat one test per job (the notes' truck
    driver -4.17 in all four); counting it once per job is the independent evidence. Jobs: base mentions
    >= threshold_share x base completions (the paper's base threshold, 35 of 14k).
    pvalue: Wald (the paper's); pvalue_lr: likelihood-ratio test against the intercept-only fit, which stays
    defined when one base prompt never names the job (a separated fit, where Wald's p is ~1 because its SE
    diverges: the paper's -115.9 artefact), so the most gendered jobs are not lost.
    """
    df = _table(completions)
    rows = []
    for model_id, dm in df.groupby("model_id", sort=True):
        dm = dm.reset_index(drop=True)
        for variant in variants:
            tot, succ = identity_cells(dm, variant)
            tot, succ = tot[tot["category"] == BASE], succ[succ["category"] == BASE]
            if len(tot) < 2:
                continue
            jobs, threshold, n_basis = select_jobs(tot, succ, threshold_share)
            by_job = dict(tuple(succ[succ["job"].isin(jobs["job"])].groupby("job")))
            for job, mentions in zip(jobs["job"], jobs["mentions"]):
                s = by_job[job].set_index("gender")["successes"]
                cells = tot.assign(successes=[s.get(g, 0) for g in tot["gender"]])
                f = fit_cells(cells, "b")
                i = f.names.index("woman")
                n = cells.set_index("gender")
                p_lr = float(chi2.sf(max(0.0, 2 * (f.llf - f.llnull)), 1)) if f.status == "ok" else np.nan
                rows.append(dict(model_id=model_id, variant=variant, job=job, coef=f.coef[i], se=f.se[i], z=f.z[i],
                                 pvalue=f.pvalue[i], significant=bool(f.pvalue[i] < alpha), pvalue_lr=p_lr,
                                 significant_lr=bool(p_lr < alpha), separated=f.separated,
                                 separation_reason=f.separation_reason, status=f.status,
                                 mentions_woman=int(n.loc["woman", "successes"]),
                                 mentions_man=int(n.loc["man", "successes"]), n_woman=int(n.loc["woman", "n"]),
                                 n_man=int(n.loc["man", "n"]), job_mentions=int(mentions),
                                 threshold_mentions=float(threshold), basis_prompts=n_basis))
    return pd.DataFrame(rows, columns=GENDER_COLUMNS)


# --------------------------------------------------------------------------- summary
SUMMARY_COLUMNS = ["model_id", "variant", "intersection", "metric", "term", "term_type", "value", "n_jobs",
                   "n_used", "n_excluded_separated", "n_failed"]


def summarise_regressions(reg: pd.DataFrame) -> pd.DataFrame:
    """The paper's summary table, per model_id x variant x intersection (long format).

    metric pct_significant (per term of model (c); term "any_interaction" = some woman:<value> significant):
        100 x share of job regressions whose (c) coefficient has Wald p < alpha (no multiple-testing
        correction, as the paper).
    metric mean_delta_r2_gender_x100 (term "(b)-(a)"): mean over jobs of 100 x (R2(b) - R2(a));
    metric mean_delta_r2_interactions_x100 (term "(c)-(b)"): mean of 100 x (R2(c) - R2(b)).
    Fits used: faithful = every fit with status ok, separated or not (the paper counted them; its
    failed fits were skipped); clean = status ok, and for significance also not separated
    (n_excluded_separated says how many) and for delta R2 also converged (the log-likelihood stays
    well defined under separation, so separated fits keep their R2).
    n_used / n_failed count jobs (n_failed: a needed fit failed, or for clean delta R2 did not converge).
    `value` is NaN when no fit is usable (n_used = 0).
    """
    rows = []
    if reg.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    for (model_id, variant, inter), r in reg.groupby(["model_id", "variant", "intersection"], sort=True):
        clean = variant == "clean"
        fits = r.drop_duplicates(["job", "model"])
        c = r[r["model"] == "c"]
        n_jobs = c["job"].nunique()
        ok_c = c[c["status"] == "ok"]
        failed_c = c.loc[c["status"] != "ok", "job"].nunique()
        sep_jobs = set(ok_c.loc[ok_c["separated"], "job"]) if clean else set()
        used = ok_c[~ok_c["job"].isin(sep_jobs)]
        base = dict(model_id=model_id, variant=variant, intersection=inter, n_jobs=n_jobs,
                    n_excluded_separated=len(sep_jobs), n_failed=failed_c)
        term_types = (used if len(used) else c).drop_duplicates("term").set_index("term")["term_type"]
        n_used = used["job"].nunique()
        for term, ttype in term_types.items():
            if ttype == "intercept":
                continue
            sig = used.loc[used["term"] == term, "significant"]
            rows.append(dict(base, metric="pct_significant", term=term, term_type=ttype, n_used=n_used,
                             value=100 * sig.mean() if n_used else np.nan))
        inter_sig = used[used["term_type"] == "interaction"].groupby("job")["significant"].any()
        rows.append(dict(base, metric="pct_significant", term="any_interaction", term_type="interaction",
                         n_used=n_used, value=100 * inter_sig.mean() if n_used else np.nan))
        for metric, term, (m1, m0) in (("mean_delta_r2_gender_x100", "(b)-(a)", ("b", "a")),
                                       ("mean_delta_r2_interactions_x100", "(c)-(b)", ("c", "b"))):
            f1, f0 = (fits[fits["model"] == m].set_index("job") for m in (m1, m0))
            f1, f0 = f1.align(f0, join="outer", axis=0)
            good = (f1["status"] == "ok") & (f0["status"] == "ok")
            if clean:
                good &= f1["converged"].astype(bool) & f0["converged"].astype(bool)
            d = 100 * (f1.loc[good, "prsquared"] - f0.loc[good, "prsquared"])
            rows.append(dict(base, metric=metric, term=term, term_type="delta_r2", n_used=int(good.sum()),
                             n_excluded_separated=0, n_failed=int((~good).sum()),
                             value=float(d.mean()) if len(d) else np.nan))
    return pd.DataFrame(rows)[SUMMARY_COLUMNS]


# --------------------------------------------------------------------------- truth helper
def saturated_log_odds(cell_probs: pd.DataFrame, base: str = BASE) -> pd.DataFrame:
    """Exact coefficients of model (c) implied by cell probabilities P(job | gender, category_value).

    Input columns: gender, category_value, p (and optionally job: one answer per job). Output: [job,]
    term, term_type, value with
        intercept   = logit P(man, base)
        <c>         = logit P(man, c) - logit P(man, base)
        woman       = logit P(woman, base) - logit P(man, base)
        woman:<c>   = [logit P(woman, c) - logit P(man, c)] - [logit P(woman, base) - logit P(man, base)]
    p must lie strictly inside (0, 1) (a 0 or 1 means the coefficient is infinite).
    """
    if "job" in cell_probs.columns:
        parts = [saturated_log_odds(g.drop(columns="job"), base).assign(job=job)
                 for job, g in cell_probs.groupby("job", sort=True)]
        return pd.concat(parts, ignore_index=True)[["job", "term", "term_type", "value"]]
    p = cell_probs.set_index(CELL_KEYS)["p"]
    if p.index.duplicated().any():
        raise ValueError("duplicate gender x category_value cells")
    if not ((p > 0) & (p < 1)).all():
        raise ValueError("cell probabilities must lie strictly between 0 and 1")
    lo = logit(p.astype(float))
    values = sorted(v for v in p.index.get_level_values("category_value").unique() if v != base)
    try:
        rows = [("intercept", "intercept", lo[("man", base)]),
                *[(v, "category", lo[("man", v)] - lo[("man", base)]) for v in values],
                ("woman", "woman", lo[("woman", base)] - lo[("man", base)]),
                *[(f"woman:{v}", "interaction",
                   (lo[("woman", v)] - lo[("man", v)]) - (lo[("woman", base)] - lo[("man", base)])) for v in values]]
    except KeyError as err:
        raise ValueError(f"cell {err} missing: need both genders for base and every category value") from err
    return pd.DataFrame(rows, columns=["term", "term_type", "value"])
