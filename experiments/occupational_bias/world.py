"""A planted occupational world: exact P(job | identity prompt) from a log-linear model, and a corpus.

For identity prompt p = (gender g, category value c) and job j:

    w(j | p) = exp(alpha_j + beta_j * woman + gamma_jc + delta_jc * woman)      (gamma, delta = 0 for base)
    P(j | p) = w(j | p) / Z,   P(NONE | p) = 1 - sum_j P(j | p)

with ONE normaliser Z for every prompt of both genders (all totals are equal, leaving none_min for NONE), so
log P is exactly linear in the planted terms and every woman x category interaction of log P is exactly
delta. The terms:
- beta_j = logit(t_j), t_j = 0.5 + parity_lambda * (u_j - 0.5), u_j = the US 2019 women share of the job
  (labour table). So on the base prompts the women share of job j with equal priors,
  P(j | woman) / (P(j | woman) + P(j | man)), is exactly t_j: the planted "pull toward parity" is
  parity_lambda (the least-squares slope of (t - 0.5) on (u - 0.5) through the origin is exactly lambda);
- alpha_j = -zipf * log(rank_j) + tau * beta_j, ranks a seeded permutation of the jobs; the small tilt tau
  (solved, one root) makes base woman's total job weight equal base man's, so both base prompts leave the
  same share to NONE (one normaliser per gender let NONE absorb the gender difference: 0.505 vs 0.10);
- gamma_jc ~ N(0, sigma_category) for every job and category value (category main effects), then, per category
  value, gamma_jc + a_c + b_c * beta_j (a level and a tilt along the gender axis, common to both genders, so
  still a category main effect): the unique (a_c, b_c) that give both of its prompts the base prompts' total job
  weight, the planted interaction included. So all 28 prompts leave exactly none_min to NONE, and the NONE
  share never stands in for a gender or category difference;
- delta_jc = +-interaction_size for `interactions_per_value` jobs per category value (signs: `mixed`
  alternates + and - over the planted list, a value taking the other sign when no job is common enough for
  the first, and at least a third of each; `positive` plants boosts only), each on a different job while
  unused jobs remain (spread over jobs), chosen among the jobs whose probability is >= interaction_min_rate
  in all four cells of the contrast (man / woman x base / c) of the FINAL world (after the interaction
  itself, the per-value shift and the normaliser), so that every planted interaction has mentions to be
  detected; every other delta is exactly 0.

The corpus holds "The {X} works as a {title} {filler} ." with each job's count per prompt equal to
N * P(j | p) rounded by largest remainder (no sampling noise in the training data), a share
`variant_share` of mentions written as a multi-word or merged variant of the title (from the gazetteer, to
exercise the extractor's normaliser: a sanity check, since the extractor knows those variants by
construction), and NONE written as "works as a team ...".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import logsumexp

from experiments.occupational_bias.extract import load_title_table
from experiments.occupational_bias.groups import Prompt, identity_prompts
from experiments.options import check_known

NONE = "NONE"
NONE_WORDS = ("team", "group", "unit", "family")
FILLERS = ("today", "downtown", "here", "now", "again", "nearby", "in town", "at night")  # short: dense job slots
SIGNS = ("positive", "mixed")


@dataclass
class PlantedConfig:
    jobs: list[str]
    seed: int = 0
    zipf: float = 1.0
    parity_lambda: float = 0.7
    sigma_category: float = 0.5
    interactions_per_value: int = 1
    interaction_size: float = 1.5
    interaction_min_rate: float = 0.02
    interaction_signs: str = "mixed"  # positive | mixed (alternating + and -)
    none_min: float = 0.10
    variant_share: float = 0.2
    train_per_prompt: int = 2000
    val_per_prompt: int = 200

    @classmethod
    def from_dict(cls, d: dict) -> "PlantedConfig":
        check_known(cls, d, "planted-world")
        cfg = cls(**d)
        if cfg.interaction_signs not in SIGNS:
            raise ValueError(f"interaction_signs {cfg.interaction_signs!r}: one of {SIGNS}")
        return cfg


def us_women_share(jobs: list[str]) -> dict[str, float]:
    """u_j: the US 2019 women share (fraction) of the labour-table row whose members include job j."""
    path = resources.files("experiments.occupational_bias") / "data" / "us_labour_2019.csv"
    table = pd.read_csv(path, comment="#")
    share = {}
    for _, r in table.iterrows():
        for m in str(r["members"]).split("|"):
            share[m.strip()] = float(r["us_women_pct"]) / 100
    missing = [j for j in jobs if j not in share]
    if missing:
        raise ValueError(f"planted jobs without a US labour row (data/us_labour_2019.csv members): {missing}")
    return {j: share[j] for j in jobs}


def logit(p):
    return np.log(p) - np.log1p(-p)


def equal_totals_tilt(a0: np.ndarray, beta: np.ndarray) -> float:
    """tau with sum exp(a0 + tau beta) (exp(beta) - 1) = 0: base woman's total weight = base man's.

    The left side rises monotonically in tau (each term's derivative is beta (e^beta - 1) e^(...) >= 0), from
    negative (weight on the most male job) to positive, so the root is unique when beta has both signs."""
    if not (beta.min() < 0 < beta.max()):
        raise ValueError("the planted women shares must lie on both sides of parity to equalise the totals")

    def f(tau):
        lw = a0 + tau * beta
        return float(np.sum(np.exp(lw - lw.max()) * np.expm1(beta)))

    lo, hi = -1.0, 1.0
    while f(lo) > 0:
        lo *= 2
    while f(hi) < 0:
        hi *= 2
    return float(brentq(f, lo, hi, xtol=1e-14))


@dataclass
class PlantedWorld:
    cfg: PlantedConfig
    prompts: list[Prompt]
    terms: pd.DataFrame  # one row per job: alpha, beta, us_women_share, planted_women_share, rank
    gamma: pd.DataFrame  # job x category value (after the per-value shift: log P's category main effect)
    delta: pd.DataFrame  # job x category value
    probs: pd.DataFrame  # prompt x (jobs + NONE), rows indexed by group

    @classmethod
    def build(cls, cfg: PlantedConfig) -> "PlantedWorld":
        rng = np.random.default_rng(cfg.seed)
        jobs = list(cfg.jobs)
        if len(set(jobs)) != len(jobs):
            raise ValueError("planted jobs must be distinct")
        u = us_women_share(jobs)
        rank = rng.permutation(len(jobs)) + 1
        target = np.array([0.5 + cfg.parity_lambda * (u[j] - 0.5) for j in jobs])
        beta = logit(target)
        a0 = -cfg.zipf * np.log(rank)
        tau = equal_totals_tilt(a0, beta)
        alpha = a0 + tau * beta
        prompts = identity_prompts()
        values = sorted({p.category_value for p in prompts if p.category != "base"})
        gamma = pd.DataFrame(rng.normal(0.0, cfg.sigma_category, (len(jobs), len(values))), index=jobs,
                             columns=values)
        delta = pd.DataFrame(0.0, index=jobs, columns=values)
        mixed = cfg.interaction_signs == "mixed"
        planted: list[tuple[str, str]] = []
        used: set[str] = set()
        want = 1.0  # mixed: alternate + and -, each value taking the sign the balance needs first
        for v in rng.permutation(values):
            for _ in range(cfg.interactions_per_value):
                order = list(rng.permutation(jobs))
                cands = [j for j in order if j not in used] + [j for j in order if j in used]
                for sign in ((want, -want) if mixed else (1.0,)):
                    hit = cls._first_eligible(cands, v, sign * cfg.interaction_size, planted, prompts, jobs, alpha,
                                              beta, gamma, delta, cfg.none_min, cfg.interaction_min_rate)
                    if hit is not None:
                        break
                else:
                    raise ValueError(f"no job has a rate >= {cfg.interaction_min_rate} in the four cells of a "
                                     f"{cfg.interaction_size} woman x {v} interaction; lower interaction_min_rate "
                                     f"or interaction_size")
                delta.loc[hit, v] = sign * cfg.interaction_size
                planted.append((hit, v))
                used.add(hit)
                n_pos = sum(delta.loc[j, c] > 0 for j, c in planted)
                want = -1.0 if n_pos > len(planted) - n_pos else 1.0
        if mixed:
            n_pos = sum(delta.loc[j, c] > 0 for j, c in planted)
            if min(n_pos, len(planted) - n_pos) < len(planted) // 3:
                raise ValueError(f"only {n_pos} of {len(planted)} planted interactions are positive: too few "
                                 f"jobs are common enough for the other sign; lower interaction_min_rate")
        probs, gamma_eff = cls._final(prompts, jobs, alpha, beta, gamma, delta, cfg.none_min)
        terms = pd.DataFrame({"job": jobs, "rank": rank, "alpha": alpha, "beta": beta,
                              "us_women_share": [u[j] for j in jobs], "planted_women_share": target})
        return cls(cfg, prompts, terms, gamma_eff, delta, probs)

    @classmethod
    def _first_eligible(cls, cands, value, d, planted, prompts, jobs, alpha, beta, gamma, delta, none_min,
                        min_rate) -> str | None:
        """The first candidate job whose interaction d in `value` leaves every planted contrast (this one and
        those before) with all four cells >= min_rate in the final world; None if there is none."""
        for j in cands:
            if delta.loc[j, value] != 0:
                continue
            delta.loc[j, value] = d
            probs, _ = cls._final(prompts, jobs, alpha, beta, gamma, delta, none_min)
            ok = all(cls._cell_min(probs, prompts, jj, vv) >= min_rate for jj, vv in planted + [(j, value)])
            delta.loc[j, value] = 0.0
            if ok:
                return j
        return None

    @staticmethod
    def _cell_min(probs: pd.DataFrame, prompts: list[Prompt], job: str, value: str) -> float:
        rows = [p.group for p in prompts if p.category_value in ("base", value)]
        return float(probs.loc[rows, job].min())

    @staticmethod
    def _final(prompts, jobs, alpha, beta, gamma, delta, none_min) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(probabilities prompt x (jobs + NONE), gamma after the per-value shift and tilt)."""
        g = gamma.copy()
        t_m, t_w = logsumexp(alpha), logsumexp(alpha + beta)  # base totals (equal after the tau tilt)
        for v in gamma.columns:
            gv, dv = gamma[v].to_numpy(), delta[v].to_numpy()

            def gap(b):  # women's minus men's log total in value v, relative to base
                return (logsumexp(alpha + beta + gv + dv + b * beta) - t_w) - (logsumexp(alpha + gv + b * beta) - t_m)

            lo, hi = -1.0, 1.0
            while gap(lo) > 0:
                lo *= 2
            while gap(hi) < 0:
                hi *= 2
            b = brentq(gap, lo, hi, xtol=1e-14)
            a = t_m - logsumexp(alpha + gv + b * beta)
            g[v] = gv + a + b * beta

        w = np.exp(np.array([alpha + beta * (p.gender == "woman")
                             + (g[p.category_value].to_numpy() + delta[p.category_value].to_numpy()
                                * (p.gender == "woman") if p.category != "base" else 0.0) for p in prompts]))
        z = w.sum(1).max() / (1.0 - none_min)
        probs = pd.DataFrame(w / z, index=[p.group for p in prompts], columns=jobs)
        probs[NONE] = 1.0 - probs.sum(axis=1)
        return probs, g

    def truth_table(self) -> pd.DataFrame:
        """Long table: one row per prompt x outcome with its planted probability and terms."""
        rows = []
        terms = self.terms.set_index("job")
        for p in self.prompts:
            for j in self.probs.columns:
                is_job = j != NONE
                c = p.category_value
                rows.append({
                    **p.as_dict(), "job": j, "planted_prob": float(self.probs.loc[p.group, j]),
                    "alpha": float(terms.loc[j, "alpha"]) if is_job else math.nan,
                    "beta": float(terms.loc[j, "beta"]) if is_job else math.nan,
                    "gamma": float(self.gamma.loc[j, c]) if is_job and p.category != "base" else 0.0,
                    "delta": float(self.delta.loc[j, c]) if is_job and p.category != "base" else 0.0,
                })
        return pd.DataFrame(rows)

    def interactions(self) -> pd.DataFrame:
        """Planted gamma and delta per job x category value, with the intersection they belong to."""
        cat_of = {p.category_value: p.category for p in self.prompts}
        g = self.gamma.stack().rename("gamma")
        d = self.delta.stack().rename("delta")
        out = pd.concat([g, d], axis=1).reset_index(names=["job", "category_value"])
        out.insert(0, "intersection", out["category_value"].map(cat_of))
        out["planted_nonzero"] = out["delta"] != 0
        return out

    def variants(self) -> dict[str, list[str]]:
        """Other surface titles that the gazetteer maps to each planted job (the normaliser's inputs)."""
        table = load_title_table()
        out = {j: [] for j in self.cfg.jobs}
        for title, canon in table.items():
            if canon in out and title != canon:
                out[canon].append(title)
        return {j: sorted(v) for j, v in out.items()}

    def sentences(self, per_prompt: int, rng: np.random.Generator, exact_counts: bool = True):
        """(sentence, prompt group, planted job or NONE, continuation) tuples, shuffled."""
        variants = self.variants()
        out = []
        for p in self.prompts:
            probs = self.probs.loc[p.group].to_numpy()
            counts = largest_remainder(probs, per_prompt) if exact_counts else rng.multinomial(per_prompt, probs)
            for job, n in zip(self.probs.columns, counts):
                for _ in range(int(n)):
                    filler = FILLERS[rng.integers(len(FILLERS))]
                    if job == NONE:
                        title = NONE_WORDS[rng.integers(len(NONE_WORDS))]
                    elif variants[job] and rng.random() < self.cfg.variant_share:
                        title = variants[job][rng.integers(len(variants[job]))]
                    else:
                        title = job
                    cont = f" {title} {filler} ."
                    out.append((f"{p.prompt}{cont}", p.group, job, cont))
        order = rng.permutation(len(out))
        return [out[i] for i in order]


def largest_remainder(probs: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to n, as close as possible to n * probs (Hamilton's method)."""
    raw = np.asarray(probs, dtype=float) * n
    counts = np.floor(raw).astype(int)
    short = n - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts
