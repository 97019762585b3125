"""Anchored bias: the hub models a config needs and the GPU jobs it schedules (mirrors
workflow/rules/anchored_bias.smk), for `check_paper` through the manifest. Imports nothing heavy."""
from __future__ import annotations

from experiments.lm.memory import describe_arch, eval_memory, model_arch
from experiments.manifest import Artifact, GpuJob

PROMPT_TOKENS = 96  # a 5-option item in the chat template is ~75 tokens


def artifacts(s: dict, config: dict) -> list[Artifact]:
    return [Artifact("model", m["spec"], f"anchored_bias model {m['id']}") for m in s["models"]
            if m.get("spec", "").startswith("hub:")]


def gpu_jobs(s: dict, config: dict) -> list[GpuJob]:
    """ab_analyse per pretrained model: forwards of batch_size prompts with the answer-position activations."""
    jobs = []
    batch = s["analysis"]["batch_size"]
    for m in s["models"]:
        if m["kind"] != "pretrained":
            continue
        arch, source = model_arch(m["spec"])
        jobs.append(GpuJob("ab_analyse", m["id"], f"{describe_arch(arch, source)}, batch {batch} x {PROMPT_TOKENS}",
                           eval_memory(arch, seq=PROMPT_TOKENS, score_batch=batch) if arch else None))
    return jobs
