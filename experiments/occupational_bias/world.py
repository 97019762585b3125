"""A planted occupational world: exact P(job | identity prompt) from a log-linear model, and a corpus.

For identity prompt p = (gender g, category value c) and job j:

    w(j | p) = exp(alpha_j + beta_j * woman + gamma_jc + delta_jc * woman)      (gamma, delta = 0 for base)
    P(j | p) = w(j | p) / Z_g,   P(NONE | p) = 1 - sum_j P(j | p)

with one Z per gender for all of its prompts (the NONE continuation absorbs the rest; the largest total
leaves none_min), so log P is exactly linear in the planted terms, every woman x category interaction
of log P is exactly delta, and the base-prompt women share of job j is sigmoid(beta_j + log Z_m/Z_w).
The truth the methods are checked against is computed from these exact probabilities (women shares,
their parity slope, N50/N90/Gini, logit contrasts), not from the knobs:
- alpha_j = -zipf * log(rank_j), ranks a seeded permutation of the jobs;
- beta_j = logit(0.5 + lambda * (u_j - 0.5)), u_j = the US 2019 women share of the job (labour table):
  the "pull toward parity" is planted as lambda < 1 (up to the common shift log Z_m/Z_w);
- gamma_jc ~ N(0, sigma_category) for every job and category value (category main effects), shifted
  per category value so that men's total job weight equals base man's;
- delta_jc = +interaction_size (or, with interaction_signs: mixed, half + and half -) for
  `interactions_per_value` jobs per category value among those with a base rate >= interaction_min_rate;
  every other delta is exactly 0. (A tiny LM learns a planted boost far better than a planted cut that
  makes a job rare, so positive is the default.)

The corpus holds "The {X} works as a {title} {filler} ." with each job's count per prompt equal to
N * P(j | p) rounded by largest remainder (no sampling noise in the training data), a share
`variant_share` of mentions written as a multi-word or merged variant of the title (to exercise the
extractor's normaliser), and NONE written as "works as a team ...".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from experiments.occupational_bias.extract import load_title_table
from experiments.occupational_bias.groups import Prompt, identity_prompts
from experiments.options import check_known

NONE = "NONE"
NONE_WORDS = ("team", "group", "unit", "family")
FILLERS = ("today", "downtown", "here", "now", "again", "nearby", "in town", "at night")  # short: dense job slots


@dataclass
class PlantedConfig:
    jobs: list[str]
    seed: int = 0
    zipf: float = 1.0
    parity_lambda: float = 0.7
    sigma_category: float = 0.5
    interactions_per_value: int = 2
    interaction_size: float = 1.5
    interaction_min_rate: float = 0.03
    interaction_signs: str = "positive"  # positive | mixed (half +, half -)
    none_min: float = 0.10
    variant_share: float = 0.2
    train_per_prompt: int = 2000
    val_per_prompt: int = 200

    @classmethod
    def from_dict(cls, d: dict) -> "PlantedConfig":
        check_known(cls, d, "planted-world")
        return cls(**d)


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


@dataclass
class PlantedWorld:
    cfg: PlantedConfig
    prompts: list[Prompt]
    terms: pd.DataFrame  # one row per job: alpha, beta, us_women_share, planted_women_share, rank
    gamma: pd.DataFrame  # job x category value
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
        alpha = -cfg.zipf * np.log(rank)
        target = np.array([0.5 + cfg.parity_lambda * (u[j] - 0.5) for j in jobs])
        beta = logit(target)
        prompts = identity_prompts()
        values = sorted({p.category_value for p in prompts if p.category != "base"})
        gamma = pd.DataFrame(rng.normal(0.0, cfg.sigma_category, (len(jobs), len(values))), index=jobs,
                             columns=values)
        # centre each category value's gamma so that the men's total job weight equals base man's: the
        # category shifts which jobs, not how often a job at all (keeps one Z with a small NONE share)
        w_man = np.exp(alpha)
        gamma -= np.log((w_man[:, None] * np.exp(gamma.to_numpy())).sum(0) / w_man.sum())
        delta = pd.DataFrame(0.0, index=jobs, columns=values)
        base_rate = cls._probs(prompts, jobs, alpha, beta, gamma, delta, cfg.none_min)
        base_rows = [p.group for p in prompts if p.category == "base"]
        eligible = [j for j in jobs if base_rate.loc[base_rows, j].min() >= cfg.interaction_min_rate]
        if len(eligible) < cfg.interactions_per_value:
            raise ValueError(f"only {len(eligible)} jobs have a base rate >= {cfg.interaction_min_rate}; "
                             f"lower interaction_min_rate or interactions_per_value")
        for v in values:
            chosen = rng.choice(eligible, size=cfg.interactions_per_value, replace=False)
            signs = np.resize([1.0, -1.0], len(chosen)) if cfg.interaction_signs == "mixed" else np.ones(len(chosen))
            delta.loc[chosen, v] = rng.permutation(signs) * cfg.interaction_size
        probs = cls._probs(prompts, jobs, alpha, beta, gamma, delta, cfg.none_min)
        terms = pd.DataFrame({"job": jobs, "rank": rank, "alpha": alpha, "beta": beta,
                              "us_women_share": [u[j] for j in jobs], "planted_women_share": target})
        return cls(cfg, prompts, terms, gamma, delta, probs)

    @staticmethod
    def _probs(prompts, jobs, alpha, beta, gamma, delta, none_min) -> pd.DataFrame:
        logw = []
        for p in prompts:
            woman = 1.0 if p.gender == "woman" else 0.0
            lw = alpha + beta * woman
            if p.category != "base":
                lw = lw + gamma[p.category_value].to_numpy() + delta[p.category_value].to_numpy() * woman
            logw.append(lw)
        w = np.exp(np.array(logw))
        woman = np.array([p.gender == "woman" for p in prompts])
        z = np.where(woman, w[woman].sum(1).max(), w[~woman].sum(1).max()) / (1.0 - none_min)
        probs = pd.DataFrame(w / z[:, None], index=[p.group for p in prompts], columns=jobs)
        probs[NONE] = 1.0 - probs.sum(axis=1)
        return probs

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
