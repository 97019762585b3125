"""Anisotropy: the hub artifacts a config needs and the GPU jobs it schedules (mirrors
workflow/rules/anisotropy.smk), for `check_paper` through the manifest. Imports nothing heavy.

The paper's texts (wit_test_set.json from the repository's data/wit.zip) and the WebText prefixes are local
files named in the config; the steps that read them fail with MissingArtifactError when they are absent."""
from __future__ import annotations

from experiments.lm.memory import describe_arch, eval_memory, model_arch
from experiments.manifest import Artifact, GpuJob


def artifacts(s: dict, config: dict) -> list[Artifact]:
    out = [Artifact("model", m["spec"], f"anisotropy isotropy model {m['id']}") for m in s["models"]
           if m["spec"].startswith("hub:")]
    d = s.get("decoding")
    if d:
        for role in ("generator", "scorer"):
            spec = d[role]["spec"]
            if spec.startswith("hub:") and all(a.name != spec for a in out):
                out.append(Artifact("model", spec, f"anisotropy decoding {role} {d[role]['id']}"))
    return out


def gpu_jobs(s: dict, config: dict) -> list[GpuJob]:
    """an_measure per pretrained model (forwards of batch_size x max_tokens with every layer's states kept),
    an_decode (beam / contrastive rows of prefix + new tokens) and an_metrics (the scorer)."""
    jobs: list[GpuJob] = []
    seq, batch = s["max_tokens"], s["measure"]["batch_size"]
    for m in s["models"]:
        arch, source = model_arch(m["spec"])
        what = describe_arch(arch, source)
        jobs.append(GpuJob("an_measure", m["id"], f"{what}, batch {batch} x {seq} tokens, all layers",
                           eval_memory(arch, seq=seq, score_batch=batch) if arch else None))
    d = s.get("decoding")
    if d:
        length = d["prefix_tokens"] + d["new_tokens"]
        width = max([1] + [m.get("num_beams", m.get("k", 1)) for m in d["methods"]])
        rows = d["batch_size"] * width
        arch, source = model_arch(d["generator"]["spec"])
        jobs.append(GpuJob("an_decode", d["generator"]["id"], f"{describe_arch(arch, source)}, {rows} rows x {length}",
                           eval_memory(arch, seq=length, score_batch=0, sample_batch=rows, sample_len=length)
                           if arch else None))
        arch, source = model_arch(d["scorer"]["spec"])
        jobs.append(GpuJob("an_metrics", d["scorer"]["id"], f"{describe_arch(arch, source)}, scoring {length} tokens",
                           eval_memory(arch, seq=length) if arch else None))
    return jobs
