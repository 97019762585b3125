"""Anchored positional bias in MCQs (Li & Gao 2025): what the shared code needs to know about this result."""
from __future__ import annotations

import json
import shlex

from experiments.anchored_bias import external
from experiments.manifest import Figure, Manifest

OUT = "results/anchored_bias"
PLOTS = "experiments.anchored_bias.plots"
VARIANTS = ("clean", "data_planted", "weight_planted")

FIGURES = (
    Figure("anchored_rate", f"{PLOTS}:anchored_rate", lambda s: [f"{OUT}/summary.csv"],
           "Before any edit, on the held-out eval items: accuracy (option-restricted argmax of the letter logits) "
           "and anchored rate (share of items with gold != A predicted A, the paper's anchored-bias frequency), "
           "per model and prompt format, with Wilson 95% CIs. Dotted line: the claims' minimum anchored rate. "
           "SmolLM2-135M is a real pretrained LM but not GPT-2; the tiny GPT-2s are trained here (clean, "
           "data-planted, weight-planted)."),
    Figure("layer_scan", f"{PLOTS}:layer_scan", lambda s: [f"{OUT}/layers.csv"],
           "Logit lens of each layer's MLP output at the answer position (the notebook's lens: the final norm "
           "applied to the component alone): mean lens(A) - lens(gold) over the locate split's failing items (over "
           "all its gold != A items for a model with no failing item, e.g. the clean tiny GPT-2; n in the legend), "
           "per model and layer (relative depth). Positive = the layer's MLP pushes toward A."),
    Figure("edits", f"{PLOTS}:edits", lambda s: [f"{OUT}/summary.csv"],
           "Accuracy on the held-out failing items (gold != A, predicted A before: 0% by construction) after each "
           "edit, per model: the paper's oracle value-vector update for each lambda2 (lambda1 = 1), the "
           "label-free edit (v - lambda1 u_A, lambda1 fitted on the locate split without labels), the oracle "
           "attention swap of the A and gold letter (and option-end) positions, and its label-free "
           "equalisation; hollow markers: accuracy on the gold = A items after the same edit (the side effect)."),
    Figure("by_gold_position", f"{PLOTS}:by_gold_position", lambda s: [f"{OUT}/predictions.csv"],
           "Predicted letter by gold letter (rows sum to 1), eval split before any edit, per model and format: "
           "an anchored bias is a bright first column."),
)


def tiny_variants(s: dict) -> list[str]:
    return [m["id"] for m in s["models"] if m["kind"] == "tiny"]


def claims_inputs(s: dict) -> dict:
    inputs = {k: f"{OUT}/{k}.csv" for k in ("summary", "neurons", "meta", "predictions")}
    if "weight_planted" in tiny_variants(s):
        inputs["truth"] = f"{OUT}/truth.csv"
    return inputs


def claims_args(s: dict, config: dict) -> str:
    models = {m["id"]: {"kind": m["kind"], "label": m["label"], "gpt2": m.get("gpt2", False),
                        "formats": m["formats"], "edit_formats": m["edit_formats"]} for m in s["models"]}
    topics = s["items"].get("plant_categories", [])
    return (f"--models {shlex.quote(json.dumps(models, sort_keys=True))}"
            f" --plant-topics {shlex.quote(json.dumps(topics))} --lam2 {s['analysis']['lam2']}")


def with_seed(s: dict, seed: int) -> dict:
    """The tiny GPT-2s use training seed `seed` (the item world and the plant stay fixed)."""
    return {"train_seed": int(seed)} if tiny_variants(s) else {}


def check_config(s: dict, config: dict) -> None:
    tiny = tiny_variants(s)
    bad = [v for v in tiny if v not in VARIANTS]
    if bad:
        raise ValueError(f"anchored_bias.models: tiny models must be one of {VARIANTS} (the variant is the id); "
                         f"got {bad}")
    if tiny and not s["items"].get("n_train"):
        raise ValueError("anchored_bias: tiny models need items.n_train > 0 (their training corpus)")
    if tiny and ("tiny_model" not in s or "train" not in s):
        raise ValueError("anchored_bias: tiny models need tiny_model and train")
    if "weight_planted" in tiny and ("clean" not in tiny or "weight_plant" not in s):
        raise ValueError("anchored_bias: weight_planted needs the clean model and a weight_plant block")
    if "data_planted" in tiny and not (s["items"].get("plant_categories") and s["items"].get("plant_share")):
        raise ValueError("anchored_bias: data_planted needs items.plant_categories and items.plant_share > 0")
    for m in s["models"]:
        if m["kind"] == "pretrained" and not m.get("spec"):
            raise ValueError(f"anchored_bias.models {m['id']}: a pretrained model needs a spec")
        if not set(m["edit_formats"]) <= set(m["formats"]):
            raise ValueError(f"anchored_bias.models {m['id']}: edit_formats must be among its formats")


MANIFEST = Manifest(
    result="anchored_bias",
    title="Anchored positional bias in multiple-choice questions",
    paper="Li & Gao 2025, \"Anchored Answers: Unravelling Positional Bias in GPT-2's Multiple-Choice Questions\" "
          "(Findings of ACL; arXiv 2405.03205)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    claims_args=claims_args,
    artifacts=external.artifacts,
    gpu_jobs=external.gpu_jobs,
    check_config=check_config,
    with_seed=with_seed,
)
