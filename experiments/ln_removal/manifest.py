"""LayerNorm removal (Heimersheim 2024; Baroni et al. 2025): what the shared code needs to know."""
from __future__ import annotations

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
           "CE(original), with 95% bootstrap CIs over paired block differences, against the model's "
           "non-embedding parameter count."),
    Figure("dla_error", f"{PLOTS}:dla_error", lambda s: [f"{OUT}/dla.csv"],
           "Direct logit attribution check: the maximum absolute difference between the sum over components "
           "(embeddings, each attention block, each MLP) of logit(R) - logit(R - component), plus the final-norm "
           "bias term, and the logit, in float64 over held-out positions and the whole vocabulary. Exact (about "
           "1e-10) once the final norm is affine (LN-free); large with LayerNorm."),
    Figure("data_scaling", f"{PLOTS}:data_scaling", lambda s: [f"{OUT}/scaling.csv"],
           "Exploratory data scaling: Delta CE of the LN-free model against the control fine-tuned for the same "
           "number of steps, vs fine-tuning tokens, per model size (95% bootstrap CIs)."),
)


def claims_inputs(s: dict) -> dict:
    return {"ce": f"{OUT}/ce.csv", "dla": f"{OUT}/dla.csv", "neurons": f"{OUT}/neurons.csv",
            "scaling_fit": f"{OUT}/scaling_fit.csv"}


MANIFEST = Manifest(
    result="ln_removal",
    title="LayerNorm removal",
    paper="Heimersheim 2024 (arXiv 2409.13710); Baroni et al. 2025 (arXiv 2507.02559)",
    figures=FIGURES,
    claims_inputs=claims_inputs,
)
