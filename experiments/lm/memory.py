"""Parameter counts and peak-GPU-memory estimates of causal LMs, from their architecture alone (no weights,
no torch): what `check_paper` prints per model and per GPU rule, and what each result's `gpu_jobs` (in its
`external.py`) builds its `experiments.manifest.GpuJob` estimates with.

Architectures: from the model's config.json (the local HF cache or a `dir:` model) when it is there, else from
KNOWN_ARCHS (the hub config.json values, recorded below with their source), else unknown.

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
    weights       4 P per model held on the GPU
    scoring       8 b T V    fp32 logits + log-softmax of block_losses' batch b = 16 (+ eager scores 8 b h T^2)
    sampling      8 L B_s T_s d  fp32 KV cache (keys + values) of a sampling batch B_s of T_s tokens
    DLA           8 P + 8 * 8 N V + 16 V d   float64 model copy, ~8 live (N tokens, V) float64 logit tensors
                                              (N: the tokens of one float64 forward), and the float64 SVD of
                                              the unembedding (direct logit attribution, confidence neurons)
Allocator overhead and fragmentation are not included: keep ~10-20% headroom.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from experiments.hfcache import hf_hub_cache
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


def describe_arch(arch: Arch | None, source: str) -> str:
    """"124.4M params [table]" (the `what` of a job on a released model), or "architecture unknown"."""
    return f"{arch.params() / 1e6:.1f}M params [{source}]" if arch else "architecture unknown"


# --------------------------------------------------------------------------- memory estimates

ADAMW_STATE_BYTES = 16  # per parameter: fp32 weight, grad, exp_avg, exp_avg_sq
AUTOCAST_COPY_BYTES = 2  # per parameter: bf16 weight copies autocast caches during the forward
ACT_BYTES = 34  # per layer x token x hidden unit (Korthikanti et al. 2022, eq. 1, 16-bit activations)
SCORE_BYTES_TRAIN = {"eager_fp32": 6, "sdpa": 0}  # per layer x batch x head x query x key
LOGIT_TRAIN_BYTES = 10  # per token x vocabulary entry (bf16 logits, fp32 copy, fp32 log-softmax)
LOGIT_EVAL_BYTES = 8  # per token x vocabulary entry (fp32 logits, fp32 log-softmax)
SCORE_BYTES_EVAL = {"eager_fp32": 8, "sdpa": 0}  # one layer's fp32 scores + softmax at a time
# float64 (tokens, vocab) tensors alive at once in a float64 direct logit attribution (ln_removal.analysis.
# dla_check: the model's logits, the full and running-total logits, the ablated logits, the direct effect,
# the DLA and the |DLA - direct effect| temporaries)
DLA_LIVE_TENSORS = 8
EVAL_SCORE_BATCH = 16  # experiments.lm.score.block_losses default batch
SAMPLE_BATCH = 32  # experiments.lm.sample default batch


@dataclass
class Estimate:
    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def describe(self) -> str:
        return ", ".join(f"{k} {v / GB:.1f}" for k, v in self.parts.items() if v) + " GB"


def train_memory(arch: Arch, batch: int, seq: int, *, extra_act_per_token_dim: int = 0) -> Estimate:
    """Peak GPU memory of experiments.lm.train at micro-batch `batch` x `seq` tokens (bf16 autocast);
    `extra_act_per_token_dim`: bytes per layer x token x hidden unit saved on top of ACT_BYTES."""
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
