"""Which external artifacts a config needs, whether each is in the local HF cache (no network), how big each
is, and how much GPU memory each GPU rule is expected to need.

Lists every hub model (tokenizers, released checkpoints, judges, base models) and hub dataset named in the
config, checks each one with the same checks the rules run before any compute, and prints one line per
artifact with its expected size (parameter count -> bytes in fp32 / bf16). Then, when `compute.gpu` is true,
one line per GPU rule: the estimated peak GPU memory of its largest job, from parameter counts, micro-batch
and sequence length, compared with `compute.gpu_mem_mb` (WARNING where the estimate exceeds it, "tight"
above 85% of it).
Exits 1 with the full list of what is missing and how to get it; memory warnings do not change the status.

Parameter counts: from the model's cached config.json when it is in the HF cache, else from KNOWN_ARCHS
(the hub config.json values, recorded below with their source), else "unknown". Models the pipeline builds
(the TinyStories grid) are counted from the config's widths / depths.

Memory model (bytes; P parameters, B micro-batch, T tokens, L layers, d width, h heads, V vocabulary):
  training (experiments.lm.train: fp32 master weights, AdamW, bf16 autocast on GPU)
    states       16 P        fp32 weights 4 + grads 4 + AdamW exp_avg 4 + exp_avg_sq 4
    autocast      2 P        bf16 copies of the weights cached by autocast for the forward
    activations  34 B T d L  saved 16-bit activations per layer (Korthikanti et al. 2022, "Reducing Activation
                             Recomputation in Large Transformer Models", eq. 1 without its attention-score term)
    scores        s B h T^2 L  saved attention scores: s = 6 for eager attention computed in fp32 (GPT-Neo:
                             fp32 softmax output + its bf16 copy), 0 for fused SDPA attention (GPT-2, Llama)
    logits       10 B T V    bf16 logits 2 + fp32 copy 4 + fp32 log-softmax saved by cross-entropy 4
  evaluation / generation (fp32 weights, no autocast; the larger of the phases counts)
    weights       4 P per model held on the GPU (LN-removal evaluation holds 3)
    scoring       8 b T V    fp32 logits + log-softmax of block_losses' batch b = 16 (+ eager scores 8 b h T^2)
    sampling      8 L B_s T_s d  fp32 KV cache (keys + values) of a sampling batch B_s of T_s tokens
    DLA           8 P + 5 * 8 N V + 16 V d   float64 model copy, ~5 live (N tokens, V) float64 logit tensors,
                                              and the SVD of the unembedding (LN-removal evaluation)
Allocator overhead and fragmentation are not included: keep ~10-20% headroom.

CLI: python -m experiments.check_paper --config config/paper.yaml
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from experiments.data.hub import cached_dataset_snapshot, check_dataset_available
from experiments.errors import MissingArtifactError
from experiments.hfcache import hf_hub_cache
from experiments.lm.load import check_available
from experiments.lm.spec import parse_spec

MB = 2**20
GB = 2**30

# --------------------------------------------------------------------------- architectures and sizes


@dataclass(frozen=True)
class Arch:
    """What the size and memory estimates need to know about a causal LM."""

    family: str  # gpt2 | gpt_neo | llama
    d_model: int
    n_layers: int
    n_heads: int
    vocab: int
    context: int
    d_mlp: int | None = None  # default 4 d (GPT-2 / GPT-Neo)
    n_kv_heads: int | None = None  # llama (grouped-query attention)
    tied: bool = True  # unembedding tied to the token embedding

    @property
    def mlp(self) -> int:
        return self.d_mlp or 4 * self.d_model

    def params(self) -> int:
        """Distinct parameters (tied weights once), as experiments.lm.load.param_count counts them."""
        d, L, V, f = self.d_model, self.n_layers, self.vocab, self.mlp
        if self.family == "gpt2":  # wte, wpe; per block ln_1, c_attn (+bias), c_proj, ln_2, c_fc, c_proj; ln_f
            per_layer = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) + (f * d + d)
            return V * d + self.context * d + L * per_layer + 2 * d + (0 if self.tied else V * d)
        if self.family == "gpt_neo":  # as gpt2, but q/k/v without bias
            per_layer = 2 * d + 3 * d * d + (d * d + d) + 2 * d + (d * f + f) + (f * d + d)
            return V * d + self.context * d + L * per_layer + 2 * d + (0 if self.tied else V * d)
        if self.family == "llama":  # no position table, RMSNorm (weight only), SwiGLU, no biases
            kv = (self.n_kv_heads or self.n_heads) * (d // self.n_heads)
            per_layer = 2 * d + d * d + 2 * d * kv + d * d + 3 * d * f
            return V * d + L * per_layer + d + (0 if self.tied else V * d)
        raise ValueError(f"unknown family {self.family!r}")

    @property
    def attention(self) -> str:
        """How transformers 5.x runs this family's attention: GPT-Neo has only eager (fp32 scores) kernels."""
        return "eager_fp32" if self.family == "gpt_neo" else "sdpa"


# Hub config.json values. gpt2*: Radford et al. 2019 Table 2 / the hub configs (n_positions 1024; counts
# 124,439,808 / 354,823,168 / 774,030,080 / 1,557,611,200 as transformers reports them). EleutherAI/gpt-neo-125M:
# its config.json (hidden 768, 12 layers, 12 heads, 2048 positions; 125,198,592). roneneldan/TinyStories-*:
# GPT-Neo, 16 heads, 2048 positions, window 256, vocabulary 50257 (their config.json); widths / depths as read
# from the configs: 1M 64x8, 3M 128x8, 8M 256x8, 28M 512x8, 33M 768x4 (68,514,048, checked against a
# published count), 1Layer-21M 1024x1, 2Layers-33M 1024x2. The names count roughly the non-embedding part.
KNOWN_ARCHS: dict[str, Arch] = {
    "gpt2": Arch("gpt2", 768, 12, 12, 50257, 1024),
    "gpt2-medium": Arch("gpt2", 1024, 24, 16, 50257, 1024),
    "gpt2-large": Arch("gpt2", 1280, 36, 20, 50257, 1024),
    "gpt2-xl": Arch("gpt2", 1600, 48, 25, 50257, 1024),
    "EleutherAI/gpt-neo-125M": Arch("gpt_neo", 768, 12, 12, 50257, 2048),
    "roneneldan/TinyStories-1M": Arch("gpt_neo", 64, 8, 16, 50257, 2048),
    "roneneldan/TinyStories-3M": Arch("gpt_neo", 128, 8, 16, 50257, 2048),
    "roneneldan/TinyStories-8M": Arch("gpt_neo", 256, 8, 16, 50257, 2048),
    "roneneldan/TinyStories-28M": Arch("gpt_neo", 512, 8, 16, 50257, 2048),
    "roneneldan/TinyStories-33M": Arch("gpt_neo", 768, 4, 16, 50257, 2048),
    "roneneldan/TinyStories-1Layer-21M": Arch("gpt_neo", 1024, 1, 16, 50257, 2048),
    "roneneldan/TinyStories-2Layers-33M": Arch("gpt_neo", 1024, 2, 16, 50257, 2048),
}
# Hub datasets: approximate download size, for planning disk (the cache holds the files plus Arrow copies).
# Skylion007/openwebtext: its dataset card ("Size of downloaded dataset files: 13.51 GB; generated: 41.70 GB").
KNOWN_DATASET_SIZES: dict[str, str] = {
    "Skylion007/openwebtext": "~13.5 GB download, ~41.7 GB as Arrow (dataset card)",
}


def arch_from_config(cfg: dict) -> Arch | None:
    """An Arch from a transformers config.json dict (gpt2 / gpt_neo / llama), else None."""
    t = cfg.get("model_type")
    tied = cfg.get("tie_word_embeddings", True)
    if t == "gpt2":
        return Arch("gpt2", cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["vocab_size"], cfg["n_positions"],
                    d_mlp=cfg.get("n_inner"), tied=tied)
    if t == "gpt_neo":
        return Arch("gpt_neo", cfg["hidden_size"], cfg["num_layers"], cfg["num_heads"], cfg["vocab_size"],
                    cfg["max_position_embeddings"], d_mlp=cfg.get("intermediate_size"), tied=tied)
    if t == "llama":
        return Arch("llama", cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                    cfg["vocab_size"], cfg.get("max_position_embeddings", 2048), d_mlp=cfg["intermediate_size"],
                    n_kv_heads=cfg.get("num_key_value_heads"), tied=cfg.get("tie_word_embeddings", False))
    return None


def _cached_config(repo_id: str, revision: str | None) -> dict | None:
    """config.json of a hub model from the local cache only (never the network), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hf_hub_cache(), revision=revision or "main")
    if not isinstance(found, str):
        return None
    try:
        return json.loads(Path(found).read_text())
    except (OSError, ValueError):
        return None


def model_arch(spec: str) -> tuple[Arch | None, str]:
    """(Arch or None, where it came from) for a model spec: cached config.json, then KNOWN_ARCHS."""
    try:
        ms = parse_spec(spec)
    except ValueError:
        return None, "bad spec"
    cfg = None
    if ms.kind == "hub":
        cfg = _cached_config(ms.target, ms.revision)
    elif ms.kind == "dir" and (Path(ms.target) / "config.json").is_file():
        cfg = json.loads((Path(ms.target) / "config.json").read_text())
    if cfg is not None:
        arch = arch_from_config(cfg)
        if arch is not None:
            return arch, "cached config.json"
    if ms.kind == "hub" and ms.target in KNOWN_ARCHS:
        return KNOWN_ARCHS[ms.target], "table"
    return None, "unknown"


def fmt_bytes(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB"


def model_size_text(spec: str) -> str:
    arch, source = model_arch(spec)
    if arch is None:
        return "size unknown (no cached config.json, not in the table)"
    p = arch.params()
    return f"{p / 1e6:,.1f}M params [{source}]: {fmt_bytes(4 * p)} fp32, {fmt_bytes(2 * p)} bf16"


def dataset_size_text(name: str) -> str:
    dataset, _, rev = name.partition("@")
    snapshot = cached_dataset_snapshot(dataset, rev or None)
    if snapshot is not None:
        size = sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())  # follows blob symlinks
        return f"{fmt_bytes(size)} cached"
    return KNOWN_DATASET_SIZES.get(dataset, "size unknown until downloaded")


# --------------------------------------------------------------------------- memory estimates

ADAMW_STATE_BYTES = 16  # per parameter: fp32 weight, grad, exp_avg, exp_avg_sq
AUTOCAST_COPY_BYTES = 2  # per parameter: bf16 weight copies autocast caches during the forward
ACT_BYTES = 34  # per layer x token x hidden unit (Korthikanti et al. 2022, eq. 1, 16-bit activations)
SCORE_BYTES_TRAIN = {"eager_fp32": 6, "sdpa": 0}  # per layer x batch x head x query x key
LOGIT_TRAIN_BYTES = 10  # per token x vocabulary entry (bf16 logits, fp32 copy, fp32 log-softmax)
LOGIT_EVAL_BYTES = 8  # per token x vocabulary entry (fp32 logits, fp32 log-softmax)
SCORE_BYTES_EVAL = {"eager_fp32": 8, "sdpa": 0}  # one layer's fp32 scores + softmax at a time
DLA_LIVE_TENSORS = 5  # float64 (tokens, vocab) tensors alive at once in analysis.dla_check
EVAL_SCORE_BATCH = 16  # experiments.lm.score.block_losses default batch
SAMPLE_BATCH = 32  # experiments.lm.sample default batch (TinyStories evaluation)


@dataclass
class Estimate:
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        return ", ".join(f"{k} {v / GB:.1f}" for k, v in self.parts.items() if v) + " GB"


def train_memory(arch: Arch, batch: int, seq: int, *, extra_act_per_token_dim: int = 0) -> Estimate:
    """Peak GPU memory of experiments.lm.train at micro-batch `batch` x `seq` tokens (bf16 autocast)."""
    p, tokens = arch.params(), batch * seq
    return Estimate({
        "weights+grads+AdamW": ADAMW_STATE_BYTES * p,
        "autocast copies": AUTOCAST_COPY_BYTES * p,
        "activations": (ACT_BYTES + extra_act_per_token_dim) * tokens * arch.d_model * arch.n_layers,
        "attention scores": SCORE_BYTES_TRAIN[arch.attention] * batch * arch.n_heads * seq * seq * arch.n_layers,
        "logits": LOGIT_TRAIN_BYTES * tokens * arch.vocab,
    })


def eval_memory(arch: Arch, *, seq: int, n_models: int = 1, score_batch: int = EVAL_SCORE_BATCH,
                sample_batch: int = 0, sample_len: int = 0, dla_tokens: int = 0) -> Estimate:
    """Peak GPU memory of an evaluation job: fp32 weights + the largest of scoring, sampling and DLA."""
    p = arch.params()
    scoring = (LOGIT_EVAL_BYTES * score_batch * seq * arch.vocab
               + SCORE_BYTES_EVAL[arch.attention] * score_batch * arch.n_heads * seq * seq) if score_batch else 0
    sampling = 8 * arch.n_layers * sample_batch * sample_len * arch.d_model + 8 * sample_batch * arch.vocab
    dla = (8 * p + DLA_LIVE_TENSORS * 8 * dla_tokens * arch.vocab + 16 * arch.vocab * arch.d_model) if dla_tokens else 0
    phases = {"scoring": scoring, "sampling": sampling, "float64 DLA": dla}
    worst = max(phases, key=phases.get)
    return Estimate({f"weights x{n_models}": 4 * p * n_models, worst: phases[worst]})


@dataclass
class Job:
    rule: str
    target: str
    what: str  # e.g. "203.1M params, micro-batch 80 x 512"
    estimate: Estimate | None  # None: architecture unknown


def _lnr_opt(lnr: dict, model_id: str, key: str):
    base, over = lnr.get(key), lnr.get("per_model", {}).get(model_id, {}).get(key)
    return {**base, **(over or {})} if isinstance(base, dict) else (base if over is None else over)


def gpu_jobs(cfg: dict) -> list[Job]:
    """Every job of a GPU rule the config schedules (mirrors workflow/rules/*.smk), with its estimate."""
    results = cfg.get("results", [])
    jobs: list[Job] = []
    ts = cfg.get("tinystories") if "tinystories" in results else None
    if ts:
        m, tr, ev = ts["model"], ts["train"], ts.get("eval", {})
        vocab = ts["tokenizer"].get("vocab_size", 50257)
        if ts["tokenizer"]["kind"] == "pretrained":
            tok_arch, _ = model_arch(ts["tokenizer"]["pretrained"])
            vocab = tok_arch.vocab if tok_arch else vocab
        block = tr["block_size"]
        for w in m["widths"]:
            for d in m["depths"]:
                for seed in m["seeds"]:
                    arch = Arch(m["arch"], w, d, m["n_heads"], vocab, m["context"])
                    name, p = f"w{w}_l{d}_s{seed}", arch.params()
                    jobs.append(Job("ts_train", name, f"{p / 1e6:.1f}M params, micro-batch {tr['batch_size']} x {block}",
                                    train_memory(arch, tr["batch_size"], block)))
                    jobs.append(Job("ts_eval", name, f"{p / 1e6:.1f}M params, blocks of {block}",
                                    eval_memory(arch, seq=block, sample_batch=SAMPLE_BATCH, sample_len=m["context"])))
        for spec in ts.get("released_models", []):
            arch, source = model_arch(spec)
            sample_len = min(arch.context, block + ev.get("max_new_tokens", 64)) if arch else 0
            jobs.append(Job("ts_eval_released", spec, f"{arch.params() / 1e6:.1f}M params [{source}]" if arch
                            else "architecture unknown",
                            eval_memory(arch, seq=block, sample_batch=SAMPLE_BATCH, sample_len=sample_len)
                            if arch else None))
    lnr = cfg.get("ln_removal") if "ln_removal" in results else None
    if lnr:
        ev = lnr.get("eval", {})
        for mdl in lnr["models"]:
            arch, source = model_arch(mdl["spec"])
            tr = _lnr_opt(lnr, mdl["id"], "train")
            b, t = tr["batch_size"], tr["block_size"]
            what = f"{arch.params() / 1e6:.1f}M params [{source}]" if arch else "architecture unknown"
            # FakeLayerNorm: ln_1's Q/K and V outputs side by side (2d) in fp32 while the paths differ: +8 B/unit
            jobs.append(Job("lnr_remove", mdl["id"], f"{what}, micro-batch {b} x {t}",
                            train_memory(arch, b, t, extra_act_per_token_dim=8) if arch else None))
            dla_tokens = ev.get("dla_blocks", 4) * t
            jobs.append(Job("lnr_evaluate", mdl["id"], f"{what}, 3 models, DLA {dla_tokens} tokens",
                            eval_memory(arch, seq=t, n_models=3, dla_tokens=dla_tokens) if arch else None))
            if lnr.get("scaling_steps"):
                jobs.append(Job("lnr_scaling_eval", mdl["id"], f"{what}, 3 models",
                                eval_memory(arch, seq=t, n_models=3) if arch else None))
    # Extension point: the occupational-bias result (experiments/occupational_bias). Its section is not in
    # the schema yet; until it states its own batch sizes, generation is sized at batch 256 x 32 tokens.
    ob = cfg.get("occupational_bias") if "occupational_bias" in results else None
    if ob:
        for mdl in ob.get("models", []):
            arch, source = model_arch(mdl["spec"])
            batch, length = ob.get("batch_size", 256), ob.get("max_len", 32)
            jobs.append(Job("ob_generate", mdl["id"], f"{arch.params() / 1e6:.1f}M params [{source}], batch "
                            f"{batch} x {length}" if arch else "architecture unknown",
                            eval_memory(arch, seq=length, score_batch=0, sample_batch=batch, sample_len=length)
                            if arch else None))
    return jobs


TIGHT = 0.85  # "tight": the estimate leaves less than 15% of compute.gpu_mem_mb for allocator overhead


def memory_report(cfg: dict) -> list[str]:
    """One line per GPU rule (its largest job): WARNING where the estimate exceeds compute.gpu_mem_mb,
    "tight" where it uses more than 85% of it, else ok."""
    compute = cfg.get("compute", {})
    if not compute.get("gpu"):
        return ["GPU memory: compute.gpu is false, no rule asks for a GPU"]
    limit = compute.get("gpu_mem_mb", 16000) * MB
    jobs = gpu_jobs(cfg)
    lines = [f"GPU memory per GPU rule (estimated peak of its largest job; compute.gpu_mem_mb = "
             f"{limit / MB:,.0f} MB = {limit / GB:.1f} GB):"]
    for rule in dict.fromkeys(j.rule for j in jobs):
        mine = [j for j in jobs if j.rule == rule]
        unknown = [j.target for j in mine if j.estimate is None]
        known = [j for j in mine if j.estimate is not None]
        if known:
            worst = max(known, key=lambda j: j.estimate.total)
            over = [j.target for j in known if j.estimate.total > limit]
            tight = worst.estimate.total > TIGHT * limit
            flag = "WARNING" if over else ("tight  " if tight else "ok     ")
            lines.append(f"{flag} {rule:17s} {worst.target} ({worst.what}): {fmt_bytes(worst.estimate.total)} "
                         f"[{worst.estimate.describe()}]")
            if over:
                lines.append(f"        {len(over)}/{len(mine)} {rule} job(s) over {limit / GB:.1f} GB: {', '.join(over)}")
        if unknown:
            lines.append(f"?       {rule:17s} no estimate (architecture unknown): {', '.join(unknown)}")
    return lines


# --------------------------------------------------------------------------- artifacts


def artifacts(cfg: dict) -> list[tuple[str, str, str]]:
    """(kind, name, used by) for every external model and dataset the config names."""
    out = []
    ts = cfg.get("tinystories") if "tinystories" in cfg.get("results", []) else None
    if ts:
        if ts["data"]["source"] == "hub":
            rev = ts["data"].get("hub_revision")
            out.append(("dataset", ts["data"]["hub_dataset"] + (f"@{rev}" if rev else ""), "tinystories corpus"))
        if ts["tokenizer"]["kind"] == "pretrained":
            out.append(("model", ts["tokenizer"]["pretrained"], "tinystories tokenizer"))
        out += [("model", spec, "tinystories released checkpoints") for spec in ts.get("released_models", [])]
        if ts["judge"].get("kind") == "hf_local":
            out.append(("model", ts["judge"]["model"], "tinystories judge"))
    lnr = cfg.get("ln_removal") if "ln_removal" in cfg.get("results", []) else None
    if lnr:
        out += [("model", m["spec"], f"ln_removal base model {m['id']}") for m in lnr["models"]
                if m["spec"].startswith("hub:")]
        data = lnr.get("data", {})
        if data.get("hub_dataset") and not data.get("train", "").startswith("resources/tinystories"):
            rev = data.get("hub_revision")
            out.append(("dataset", data["hub_dataset"] + (f"@{rev}" if rev else ""), "ln_removal fine-tuning text"))
            if data.get("tokenizer"):
                out.append(("model", data["tokenizer"], "ln_removal tokenizer"))
    # Extension point for the occupational-bias result: `occupational_bias.models` is a list of
    # {id, spec, kind, identity_samples, name_samples}; hub models among them must be pre-downloaded.
    ob = (cfg.get("occupational_bias") or {}) if "occupational_bias" in cfg.get("results", []) else {}
    out += [("model", m["spec"], f"occupational_bias model {m.get('id', m['spec'])}")
            for m in ob.get("models", []) if str(m.get("spec", "")).startswith("hub:")]
    return out


def check(kind: str, name: str) -> str | None:
    try:
        if kind == "model":
            check_available(name)
        else:
            dataset, _, rev = name.partition("@")
            check_dataset_available(dataset, rev or None)
    except MissingArtifactError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    cfg = yaml.safe_load(open(args.config))
    missing = []
    for kind, name, used_by in artifacts(cfg):
        problem = check(kind, name)
        size = model_size_text(name) if kind == "model" else dataset_size_text(name)
        print(f"{'ok     ' if problem is None else 'MISSING'} {kind:7s} {name}  ({used_by})  {size}")
        if problem:
            missing.append(problem)
    print()
    print("\n".join(memory_report(cfg)))
    if missing:
        print(f"\n{len(missing)} artifact(s) missing:\n" + "\n".join(f"- {m}" for m in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
