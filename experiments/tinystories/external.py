"""TinyStories: the hub artifacts a config needs and the GPU jobs it schedules (mirrors
workflow/rules/tinystories.smk), for `check_paper` through the manifest. Imports nothing heavy."""
from __future__ import annotations

from experiments.lm.memory import SAMPLE_BATCH, Arch, describe_arch, eval_memory, model_arch, train_memory
from experiments.manifest import Artifact, GpuJob


def artifacts(ts: dict, config: dict) -> list[Artifact]:
    out = []
    if ts["data"]["source"] == "hub":
        rev = ts["data"]["hub_revision"]
        out.append(Artifact("dataset", ts["data"]["hub_dataset"] + (f"@{rev}" if rev else ""), "tinystories corpus"))
    if ts["tokenizer"]["kind"] == "pretrained":
        out.append(Artifact("model", ts["tokenizer"]["pretrained"], "tinystories tokenizer"))
    out += [Artifact("model", spec, "tinystories released checkpoints") for spec in ts["released_models"]]
    if ts["judge"]["kind"] == "hf_local":
        out.append(Artifact("model", ts["judge"]["model"], "tinystories judge"))
    return out


def model_id(width: int, depth: int, seed: int, lr: float | None, grid_lr: float) -> str:
    """As ts_model_id in the .smk: grid models w{W}_l{D}_s{S}; lr-sweep models at another lr add _lr{LR}."""
    base = f"w{width}_l{depth}_s{seed}"
    return base if lr is None or lr == grid_lr else f"{base}_lr{lr:g}"


def trained_models(ts: dict) -> list[tuple[str, int, int]]:
    """(model id, width, depth) of every model the config trains, once: the grid (less `model.exclude`),
    then the lr sweep's shapes at each of its lrs (TS_MODELS in the .smk)."""
    m, grid_lr = ts["model"], ts["train"]["lr"]
    grid = [(model_id(w, d, s, None, grid_lr), w, d) for w in m["widths"] for d in m["depths"] for s in m["seeds"]
            if [w, d] not in m["exclude"]]
    sweep = [(model_id(w, d, s, lr, grid_lr), w, d) for w, d in ts["lr_sweep"]["shapes"]
             for lr in ts["lr_sweep"]["lrs"] for s in m["seeds"]]
    return list(dict.fromkeys(grid + sweep))


def gpu_jobs(ts: dict, config: dict) -> list[GpuJob]:
    """ts_train and ts_eval per grid model (sampling at lm.sample's batch up to the context), ts_train_lr and
    ts_eval_lr (loss and cloze only: no sampling) per lr-sweep model, ts_eval_released per released checkpoint."""
    m, tr, ev = ts["model"], ts["train"], ts["eval"]
    vocab = ts["tokenizer"]["vocab_size"]
    if ts["tokenizer"]["kind"] == "pretrained":
        tok_arch, _ = model_arch(ts["tokenizer"]["pretrained"])
        vocab = tok_arch.vocab if tok_arch else vocab
    block = tr["block_size"]
    jobs: list[GpuJob] = []
    for name, w, d in trained_models(ts):
        arch = Arch(m["arch"], w, d, m["n_heads"], vocab, m["context"])
        p, lr_model = arch.params(), "_lr" in name
        jobs.append(GpuJob("ts_train_lr" if lr_model else "ts_train", name,
                           f"{p / 1e6:.1f}M params, micro-batch {tr['batch_size']} x {block}",
                           train_memory(arch, tr["batch_size"], block)))
        jobs.append(GpuJob("ts_eval_lr" if lr_model else "ts_eval", name, f"{p / 1e6:.1f}M params, blocks of {block}",
                           eval_memory(arch, seq=block, sample_batch=0 if lr_model else SAMPLE_BATCH,
                                       sample_len=0 if lr_model else m["context"])))
    for spec in ts["released_models"]:
        arch, source = model_arch(spec)
        estimate = None
        if arch:
            sample_len = min(arch.context, block + ev["max_new_tokens"])
            estimate = eval_memory(arch, seq=block, sample_batch=SAMPLE_BATCH, sample_len=sample_len)
        jobs.append(GpuJob("ts_eval_released", spec, describe_arch(arch, source), estimate))
    return jobs
