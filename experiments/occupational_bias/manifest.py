"""Intersectional occupational bias (Kirk et al. 2021): what the shared code needs to know about this result."""
from __future__ import annotations

import json
import shlex

from experiments.manifest import Figure, Manifest
from experiments.occupational_bias import external

OUT = "results/occupational_bias"
PLOTS = "experiments.occupational_bias.plots"


def model_ids(s: dict) -> list[str]:
    return [m["id"] for m in s.get("models", [])]


def planted_ids(s: dict) -> list[str]:
    return [m["id"] for m in s.get("models", []) if m["kind"] == "planted"]


FIGURES = (
    Figure("top_jobs", f"{PLOTS}:top_jobs", lambda s: [f"{OUT}/completions/{m}.csv" for m in model_ids(s)],
           "Most frequent jobs in completions of \"The man works as a\" and \"The woman works as a\" (share of "
           "completions that mention the job; a completion can mention several), per model."),
    Figure("gini", f"{PLOTS}:gini", lambda s: [f"{OUT}/diversity.csv"],
           "Gini coefficient of the job distribution per identity group (clean variant: over the jobs observed for "
           "the group; 95% bootstrap CIs over completions), women vs men. Higher = more concentrated on few jobs."),
    Figure("regression_significance", f"{PLOTS}:regression_significance", lambda s: [f"{OUT}/regression_summary.csv"],
           "Share of per-job logistic regressions (model c: category + woman + woman x category) whose term is "
           "significant (Wald p < alpha, no correction, as the paper), per intersection and term type; faithful "
           "(the original's k-squared rows) and clean (one row per completion, separated fits excluded). Dotted "
           "line: 5%."),
    Figure("labour_scatter", f"{PLOTS}:labour_scatter", lambda s: [f"{OUT}/labour.csv"],
           "Predicted % women per US labour occupation against the US 2019 share (CPS Table 11 as shipped with the "
           "original code): filled, the clean variant the claims decide on (P(W) = 0.47 times the woman prompt's "
           "rate, renormalised over both base prompts); hollow, the paper's faithful weighting (0.94 x the "
           "woman-prompt share of base-prompt mentions). Only jobs with enough mentions. Shaded: male-dominated "
           "(< 25%) and female-dominated (> 75%) jobs, where the paper reports a pull toward parity (dotted line)."),
    Figure("exact_vs_sampled", f"{PLOTS}:exact_vs_sampled", lambda s: [f"{OUT}/exact/{m}.csv" for m in model_ids(s)],
           "Sampled share of each leading job per identity prompt against its exact probability under the same "
           "model and the same top-k filtering (from the logits, walking the title trie). Points on the diagonal = "
           "sampler and extractor agree with the model; the title gives the share of cells outside +-1.96 "
           "binomial SE (5% expected)."),
)


def claims_inputs(s: dict) -> dict:
    inputs = {"diversity": f"{OUT}/diversity.csv", "regressions": f"{OUT}/regressions.csv",
              "gender_tests": f"{OUT}/gender_tests.csv", "labour_summary": f"{OUT}/labour_summary.csv",
              "extraction": f"{OUT}/extraction_check.csv"}
    if planted_ids(s):
        inputs["truth"] = f"{OUT}/truth_check.csv"
        inputs["truth_interactions"] = f"{OUT}/truth_check_interactions.csv"
    return inputs


def claims_args(s: dict, config: dict) -> str:
    models = {m["id"]: {"kind": m["kind"], "spec": m["spec"], "label": m.get("label", "")} for m in s.get("models", [])}
    return f"--models {shlex.quote(json.dumps(models, sort_keys=True))} --alpha {s['analysis']['alpha']}"


def with_seed(s: dict, seed: int) -> dict:
    """Every model this result trains (the planted world's tiny GPT-2) uses training seed `seed`. The world
    itself (planted.seed: which jobs get which rates and interactions) stays fixed, so the runs differ only in
    training noise and can be compared claim by claim; generation and bootstrap seeds stay fixed too."""
    return {"train_seed": int(seed)} if planted_ids(s) else {}


MANIFEST = Manifest(
    result="occupational_bias",
    title="Intersectional occupational bias",
    paper="Kirk et al. 2021, \"Bias Out-of-the-Box\" (NeurIPS)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    artifacts=external.artifacts,
    gpu_jobs=external.gpu_jobs,
    smoke="experiments.occupational_bias.smoke",
    with_seed=with_seed,
)
