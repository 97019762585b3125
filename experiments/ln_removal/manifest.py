"""LayerNorm removal (Heimersheim 2024; Baroni et al. 2025): what the shared code needs to know."""
from __future__ import annotations

import re

from experiments.ln_removal import external
from experiments.manifest import Figure, Manifest

OUT = "results/ln_removal"
PLOTS = "experiments.ln_removal.plots"

FIGURES = (
    Figure("loss_schedule", f"{PLOTS}:loss_schedule", lambda s: [f"{OUT}/curves.csv"],
           "Training cross-entropy (nats per token, 5-step running mean; the auxiliary std-uniformity term is "
           "excluded; dots: validation CE) while LayerNorms are removed by fine-tuning, for the LN-free run and "
           "the control fine-tuned for the same steps with LN kept. Vertical lines mark the removal events in the "
           "papers' order: each block's ln_2 (MLP input), each ln_1 for the query/key path, each ln_1 for the "
           "value path, then the final LN."),
    Figure("delta_ce_size", f"{PLOTS}:delta_ce_size", lambda s: [f"{OUT}/ce.csv"],
           "Delta CE on held-out blocks: CE(LN-free) minus CE(control, same fine-tuning steps with LN) and minus "
           "CE(original: the base LN was removed from, after its LN-kept rounds at mini), with 95% bootstrap CIs "
           "over paired block differences, against the model's non-embedding parameter count. While a base still "
           "learns, the two bracket the removal cost (the control end over-states it, the original end "
           "under-states it)."),
    Figure("dla_error", f"{PLOTS}:dla_error", lambda s: [f"{OUT}/dla.csv"],
           "Direct logit attribution error: normalised mean absolute error between each component's DLA with the "
           "cached final-norm scale and its true direct effect logit(R) - logit(R - component) (final norm "
           "recomputed), averaged over the components (embeddings, each attention block, each MLP), in float64 "
           "over held-out positions and the whole vocabulary, with 95% CIs resampling blocks; original model, "
           "control fine-tuned with LN kept, and LN-free model (exact, about 1e-14, by construction)."),
    Figure("data_scaling", f"{PLOTS}:data_scaling", lambda s: [f"{OUT}/scaling.csv"],
           "Data scaling: Delta CE of the LN-free model against the control fine-tuned for the same number of "
           "steps, relative to the control's CE (95% bootstrap CIs), vs fine-tuning tokens, per model size; the "
           "dashed line is the small-CE-cost target. Tokens needed per size = the smallest budget below it."),
)


def claims_inputs(s: dict) -> dict:
    return {"ce": f"{OUT}/ce.csv", "dla": f"{OUT}/dla.csv", "neurons": f"{OUT}/neurons.csv",
            "scaling_fit": f"{OUT}/scaling_fit.csv", "converge": f"{OUT}/converge.csv"}


_SEED_SUFFIX = re.compile(r"_s\d+$")


def with_seed(section: dict, seed: int) -> dict:
    """Overlay for `make robustness`: fine-tuning seed `seed`, and base models of the TinyStories sweep of that
    seed (ids and dir: specs ending in _s<k> become _s<seed>; hub models keep their spec). per_model keys follow
    the ids."""

    def swap(text: str) -> str:
        return _SEED_SUFFIX.sub(f"_s{seed}", text)

    models = [dict(m, id=swap(m["id"]), spec=swap(m["spec"]) if m["spec"].startswith("dir:") else m["spec"])
              for m in section["models"]]
    overlay = {"seed": seed, "models": models}
    if section.get("per_model"):
        overlay["per_model"] = {swap(k): v for k, v in section["per_model"].items()}
    return overlay


MANIFEST = Manifest(
    result="ln_removal",
    title="LayerNorm removal",
    paper="Heimersheim 2024 (arXiv 2409.13710); Baroni et al. 2025 (arXiv 2507.02559)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
    with_seed=with_seed,
    artifacts=external.artifacts,
    gpu_jobs=external.gpu_jobs,
    smoke="experiments.ln_removal.smoke",
)
