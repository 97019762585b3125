"""Occupational bias: the hub artifacts a config needs and the GPU jobs it schedules (mirrors
workflow/rules/occupational_bias.smk), for `check_paper` through the manifest. Imports nothing heavy."""
from __future__ import annotations

from experiments.lm.memory import describe_arch, eval_memory, model_arch
from experiments.manifest import Artifact, GpuJob

# With sampling.max_length null, each prompt gets max_new_tokens on top of its own tokens: "The {X} works as a"
# is 6 GPT-2 tokens for a one-token X; two-word groups and split names reach about 10.
PROMPT_TOKENS = 10


def sample_tokens(sampling: dict) -> int:
    """Tokens per sampled row (prompt + new ones): max_length counts the prompt (the paper's convention,
    experiments.occupational_bias.generate.new_tokens); else PROMPT_TOKENS + max_new_tokens."""
    if sampling["max_length"] is not None:
        return sampling["max_length"]
    if sampling["max_new_tokens"] is None:
        raise ValueError("config: occupational_bias.sampling needs max_length or max_new_tokens")
    return PROMPT_TOKENS + sampling["max_new_tokens"]


def artifacts(ob: dict, config: dict) -> list[Artifact]:
    return [Artifact("model", m["spec"], f"occupational_bias model {m['id']}") for m in ob["models"]
            if m["spec"].startswith("hub:")]


def gpu_jobs(ob: dict, config: dict) -> list[GpuJob]:
    """ob_generate per model: sampling at the model's batch_size, rows of sample_tokens() tokens."""
    length = sample_tokens(ob["sampling"])
    jobs: list[GpuJob] = []
    for mdl in ob["models"]:
        arch, source = model_arch(mdl["spec"])
        batch, what = mdl["batch_size"], describe_arch(arch, source)
        jobs.append(GpuJob("ob_generate", mdl["id"], f"{what}, batch {batch} x {length}" if arch else what,
                           eval_memory(arch, seq=length, score_batch=0, sample_batch=batch, sample_len=length)
                           if arch else None))
    return jobs
