"""LayerNorm removal: the hub artifacts a config needs and the GPU jobs it schedules (mirrors
workflow/rules/ln_removal.smk), for `check_paper` through the manifest. Imports nothing heavy."""
from __future__ import annotations

from experiments.lm.memory import describe_arch, eval_memory, model_arch, train_memory
from experiments.manifest import Artifact, GpuJob

# FakeLayerNorm keeps ln_1's Q/K and V outputs side by side (2d) in fp32 while the two paths differ:
# 8 bytes per layer x token x hidden unit on top of the usual saved activations.
FAKE_NORM_EXTRA_ACT_BYTES = 8
EVAL_MODELS = 3  # lnr_evaluate / lnr_scaling_eval hold the original, the LN-free model and the control
HUB_TOKENS = ("resources/ln_removal/tokens/train.npy", "resources/ln_removal/tokens/val.npy")  # rule lnr_tokens


def model_opt(lnr: dict, model_id: str, key: str):
    """A config block for one model: the shared block updated by its per_model override (as lnr_opt in the .smk)."""
    base, over = lnr[key], lnr["per_model"].get(model_id, {}).get(key)
    return {**base, **(over or {})} if isinstance(base, dict) else (base if over is None else over)


def artifacts(lnr: dict, config: dict) -> list[Artifact]:
    out = [Artifact("model", m["spec"], f"ln_removal base model {m['id']}") for m in lnr["models"]
           if m["spec"].startswith("hub:")]
    data = lnr["data"]
    if data["train"] in HUB_TOKENS or data["val"] in HUB_TOKENS:  # lnr_tokens builds them from the hub dataset
        rev = data["hub_revision"]
        out.append(Artifact("dataset", data["hub_dataset"] + (f"@{rev}" if rev else ""), "ln_removal fine-tuning text"))
        out.append(Artifact("model", data["tokenizer"], "ln_removal tokenizer"))
    return out


def gpu_jobs(lnr: dict, config: dict) -> list[GpuJob]:
    """lnr_remove (fine-tuning with FakeLayerNorm), lnr_evaluate (3 models, float64 DLA) and, with
    scaling_steps, lnr_scaling_eval, per model."""
    jobs: list[GpuJob] = []
    for mdl in lnr["models"]:
        arch, source = model_arch(mdl["spec"])
        tr = model_opt(lnr, mdl["id"], "train")
        b, t = tr["batch_size"], tr["block_size"]
        what = describe_arch(arch, source)
        jobs.append(GpuJob("lnr_remove", mdl["id"], f"{what}, micro-batch {b} x {t}",
                           train_memory(arch, b, t, extra_act_per_token_dim=FAKE_NORM_EXTRA_ACT_BYTES)
                           if arch else None))
        # analysis.dla_check / ablate_neurons run one block per float64 forward: t tokens live at a time
        jobs.append(GpuJob("lnr_evaluate", mdl["id"],
                           f"{what}, {EVAL_MODELS} models, float64 DLA {lnr['eval']['dla_blocks']} x {t} tokens, "
                           f"one block at a time",
                           eval_memory(arch, seq=t, n_models=EVAL_MODELS, dla_tokens=t) if arch else None))
        if lnr["scaling_steps"]:
            jobs.append(GpuJob("lnr_scaling_eval", mdl["id"], f"{what}, {EVAL_MODELS} models",
                               eval_memory(arch, seq=t, n_models=EVAL_MODELS) if arch else None))
    return jobs
