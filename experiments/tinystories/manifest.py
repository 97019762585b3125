"""TinyStories (Eldan & Li 2023): what the shared code needs to know about this result."""
from __future__ import annotations

import json
import shlex

from experiments.manifest import Figure, Manifest
from experiments.tinystories import external

OUT = "results/tinystories"
PLOTS = "experiments.tinystories.plots"

FIGURES = (
    Figure("loss_vs_params", f"{PLOTS}:loss_vs_params", lambda s: [f"{OUT}/sweep.csv", f"{OUT}/power_law.csv"],
           "Validation loss (nats per token, mean over held-out blocks with a 95% bootstrap CI) of every grid model "
           "of the TinyStories width x depth sweep against its non-embedding parameter count, with both fitted laws "
           "L = a N^-alpha and L = a N^-alpha + c (each bootstrap refitted in its own form). All grid models saw "
           "the same number of training tokens at one learning rate. Mini scale: tiny GPT-2s on the synthetic "
           "StoryWorld corpus; paper scale: GPT-Neo models on roneneldan/TinyStories (stars: released checkpoints)."),
    Figure("quality_heatmap", f"{PLOTS}:quality_heatmap", lambda s: [f"{OUT}/sweep.csv"],
           "Width x depth heat maps of the grid models: validation loss, grammar (share of generated sentences that "
           "parse under the generating grammar), and consistency (accuracy on cloze probes of planted story facts, "
           "options of equal token length from the corpus's own world; and the share of references in free "
           "continuations that agree with the story's facts). Exact automatic substitutes for the paper's GPT-4 "
           "grades; creativity has no exact substitute and is not shown. Blank cells are left out of the grid."),
    Figure("loss_curves", f"{PLOTS}:loss_curves", lambda s: [f"{OUT}/loss_curves.csv"],
           "Validation loss during training against training tokens (same budget for all): left, the grid models "
           "at the grid learning rate; right, the learning-rate sweep that the depth claims read (each shape at "
           "every peak learning rate)."),
    Figure("samples", f"{PLOTS}:samples", lambda s: [f"{OUT}/samples.csv"],
           "One held-out story beginning (cut mid-sentence, as the paper's evaluation prompts are) and each "
           "model's sampled continuation, with its exact grammar and consistency scores."),
)


def check_config(ts: dict, config: dict) -> None:
    """Cross-field checks the schema cannot express; each names the key."""
    if ts["tokenizer"]["kind"] == "pretrained" and not ts["tokenizer"]["pretrained"]:
        raise ValueError("config: tinystories.tokenizer.kind = pretrained needs tinystories.tokenizer.pretrained")
    if ts["judge"]["kind"] == "hf_local" and not ts["judge"]["model"]:
        raise ValueError("config: tinystories.judge.kind = hf_local needs tinystories.judge.model")
    if ts["judge"]["kind"] == "exact" and ts["data"]["source"] != "storyworld":
        raise ValueError("config: tinystories.judge.kind = exact grades StoryWorld text only; "
                         "use none or hf_local with tinystories.data.source = hub")
    for w in ts["model"]["widths"]:
        if w % ts["model"]["n_heads"]:
            raise ValueError(f"config: tinystories.model.widths: {w} is not divisible by n_heads "
                             f"= {ts['model']['n_heads']}")
    if ts["train"]["block_size"] > ts["model"]["context"]:
        raise ValueError("config: tinystories.train.block_size exceeds tinystories.model.context")
    grid = [[w, d] for w in ts["model"]["widths"] for d in ts["model"]["depths"]]
    for cell in ts["model"]["exclude"]:
        if cell not in grid:
            raise ValueError(f"config: tinystories.model.exclude: {cell} is not a cell of widths x depths")
    if len(grid) == len(ts["model"]["exclude"]):
        raise ValueError("config: tinystories.model.exclude leaves no grid model")
    sweep = ts["lr_sweep"]
    if bool(sweep["lrs"]) != bool(sweep["shapes"]):
        raise ValueError("config: tinystories.lr_sweep needs both lrs and shapes (or neither)")
    for w, _ in sweep["shapes"]:
        if w % ts["model"]["n_heads"]:
            raise ValueError(f"config: tinystories.lr_sweep.shapes: width {w} is not divisible by n_heads")
    if sweep["lrs"] and ts["train"]["lr"] not in sweep["lrs"]:
        raise ValueError("config: tinystories.lr_sweep.lrs must include tinystories.train.lr (the grid's lr: "
                         "its models are shared with the grid)")


def claims_inputs(s: dict) -> dict:
    return {"sweep": f"{OUT}/sweep.csv", "fit": f"{OUT}/power_law.csv", "samples": f"{OUT}/samples.csv",
            "curves": f"{OUT}/loss_curves.csv"}


def claims_args(s: dict, config: dict) -> str:
    sweep = shlex.quote(json.dumps(s["lr_sweep"], sort_keys=True))
    return (f"--judge {s['judge']['kind']} --grid-lr {s['train']['lr']} --lr-sweep {sweep}"
            f" --train-tokens {s['train']['tokens']}")


def with_seed(s: dict, seed: int) -> dict:
    """Every TinyStories model (grid and lr sweep) trained with training seed `seed`: ids end in _s{seed}.
    The corpus (tinystories.data.seed) stays the same, so only training noise changes."""
    return {"model": {"seeds": [seed]}}


MANIFEST = Manifest(
    result="tinystories",
    title="TinyStories: scaling small story models",
    paper="Eldan & Li 2023, arXiv 2305.07759",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    check_config=check_config,
    with_seed=with_seed,
    artifacts=external.artifacts,
    gpu_jobs=external.gpu_jobs,
    smoke="experiments.tinystories.smoke",
)
