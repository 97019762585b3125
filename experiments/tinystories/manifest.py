"""TinyStories (Eldan & Li 2023): what the shared code needs to know about this result."""
from __future__ import annotations

from experiments.manifest import Figure, Manifest

OUT = "results/tinystories"
PLOTS = "experiments.tinystories.plots"

FIGURES = (
    Figure("loss_vs_params", f"{PLOTS}:loss_vs_params", lambda s: [f"{OUT}/sweep.csv", f"{OUT}/power_law.csv"],
           "Validation loss (nats per token, mean over held-out blocks with a 95% bootstrap CI) of every model of "
           "the TinyStories width x depth sweep against its non-embedding parameter count, with the fitted law "
           "L = a N^-alpha (+ c). All models saw the same number of training tokens. Mini scale: tiny GPT-2s on "
           "the synthetic StoryWorld corpus; paper scale: GPT-Neo models on roneneldan/TinyStories (stars: "
           "released checkpoints)."),
    Figure("quality_heatmap", f"{PLOTS}:quality_heatmap", lambda s: [f"{OUT}/sweep.csv"],
           "Width x depth heat maps: validation loss, grammar (share of generated sentences that parse under the "
           "generating grammar), and consistency (accuracy on cloze probes of planted story facts, and the share "
           "of references in free continuations that agree with the story's facts). Exact automatic substitutes "
           "for the paper's GPT-4 grades; creativity has no exact substitute and is not shown."),
    Figure("loss_curves", f"{PLOTS}:loss_curves", lambda s: [f"{OUT}/loss_curves.csv"],
           "Validation loss during training for every model of the sweep, against training tokens (same budget "
           "for all)."),
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


def claims_inputs(s: dict) -> dict:
    return {"sweep": f"{OUT}/sweep.csv", "fit": f"{OUT}/power_law.csv", "samples": f"{OUT}/samples.csv"}


def claims_args(s: dict, config: dict) -> str:
    return f"--judge {s['judge']['kind']}"


MANIFEST = Manifest(
    result="tinystories",
    title="TinyStories: scaling small story models",
    paper="Eldan & Li 2023, arXiv 2305.07759",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    check_config=check_config,
)
