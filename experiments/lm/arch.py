"""One adapter per model family, so paper code never reaches into `model.transformer.h[...]`.

    adapter = get_adapter(model)
    logits, cache = adapter.run_with_cache(input_ids, names={"resid_pre", "pattern"})
    cache["resid_pre"][3]                 # input to block 3, (batch, seq, d_model)
    cache["blocks.3.hook_resid_pre"]      # the same tensor, TransformerLens name
    adapter.logit_lens(cache["resid_pre"][3])

Cached activations (TransformerLens short names; one tensor per layer):
    resid_pre[l]      input to block l; resid_pre[n_layers] is the final residual (input to the final norm)
    resid_mid[l]      residual after attention, before the MLP (input to ln_2)
    attn_out[l]       attention output added to the residual
    mlp_out[l]        MLP output added to the residual
    mlp_post[l]       MLP hidden activation (input to the output projection), (batch, seq, d_mlp);
                      for Llama act(gate) * up
    pattern[l]        attention probabilities (batch, heads, query, key)
    normalized_final  output of the final norm (a single tensor)

Attention patterns need the eager attention implementation; `run_with_cache` switches a model to
eager for that call when patterns are requested and restores its implementation afterwards.

Families: GPT-2 (Conv1D weights stored (in, out), LayerNorm, tied unembedding), GPT-Neo (nn.Linear,
LayerNorm, local/global attention) and Llama (RMSNorm, SwiGLU MLP, RoPE).
"""
from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

LAYER_NAMES = ("resid_pre", "resid_mid", "attn_out", "mlp_out", "mlp_post", "pattern")
CACHE_NAMES = frozenset(LAYER_NAMES + ("normalized_final",))

# TransformerLens hook names -> our short names
_TL_LAYER = {
    "hook_resid_pre": "resid_pre",
    "hook_resid_mid": "resid_mid",
    "hook_attn_out": "attn_out",
    "hook_mlp_out": "mlp_out",
    "mlp.hook_post": "mlp_post",
    "attn.hook_pattern": "pattern",
}
_TL_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")


class Cache(dict):
    """Maps a short name to a list of per-layer tensors ('normalized_final' to one tensor).

    Also answers TransformerLens names: 'blocks.{l}.hook_resid_pre', 'blocks.{l}.attn.hook_pattern',
    'blocks.{l}.mlp.hook_post', 'blocks.{l}.hook_resid_post' (= resid_pre[l+1]), 'ln_final.hook_normalized'.
    """

    def __missing__(self, key: str):
        if key == "ln_final.hook_normalized":
            return self["normalized_final"]
        m = _TL_RE.match(key)
        if m:
            layer, hook = int(m.group(1)), m.group(2)
            if hook == "hook_resid_post":
                return self["resid_pre"][layer + 1]
            if hook in _TL_LAYER:
                return self[_TL_LAYER[hook]][layer]
        raise KeyError(key)


@dataclass(frozen=True)
class NormSite:
    """Where a normalisation module lives: `getattr(parent, attr) is module` (until it is swapped)."""

    layer: int | None  # None for the final norm
    kind: str  # "ln_1", "ln_2" or "ln_f"
    module: nn.Module
    parent: nn.Module
    attr: str


@contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run `model` with the eager attention implementation (which returns probabilities), then restore."""
    before = model.config._attn_implementation
    if before in (None, "eager"):
        yield
        return
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    if model.config._attn_implementation != "eager":
        raise ValueError(
            f"{type(model).__name__} uses attn_implementation={before!r} and cannot switch to 'eager', "
            "which attention patterns need; load it with attn_implementation='eager'"
        )
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def _first_arg(args: tuple, kwargs: dict, name: str = "hidden_states") -> torch.Tensor:
    return args[0] if args else kwargs[name]


class Adapter:
    """Family-neutral access to a decoder-only HF LM. Subclasses name where things live."""

    family = "base"
    # attribute names inside a block
    ln_1_attr = "ln_1"
    ln_2_attr = "ln_2"
    attn_attr = "attn"
    mlp_attr = "mlp"
    mlp_out_attr = "c_proj"  # MLP output projection, inside block.mlp
    final_norm_attr = "ln_f"  # inside the base model
    positional = True  # learned absolute position embeddings (wpe)

    def __init__(self, model: nn.Module):
        self.model = model

    # ---- structure -------------------------------------------------------------------------------

    @property
    def base(self) -> nn.Module:
        """The decoder without the LM head (GPT2Model, GPTNeoModel, LlamaModel)."""
        return self.model.base_model

    def blocks(self) -> list[nn.Module]:
        return list(self.base.h)

    def attn(self, layer: int) -> nn.Module:
        return getattr(self.blocks()[layer], self.attn_attr)

    def mlp(self, layer: int) -> nn.Module:
        return getattr(self.blocks()[layer], self.mlp_attr)

    def mlp_out_proj(self, layer: int) -> nn.Module:
        return getattr(self.mlp(layer), self.mlp_out_attr)

    @property
    def n_layers(self) -> int:
        return len(self.blocks())

    @property
    def d_model(self) -> int:
        return self.model.config.hidden_size

    @property
    def d_mlp(self) -> int:
        return self.value_vectors(0).shape[0]

    @property
    def n_heads(self) -> int:
        return self.model.config.num_attention_heads

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    # ---- weights ---------------------------------------------------------------------------------

    def value_vectors(self, layer: int) -> torch.Tensor:
        """MLP value vectors: row i is what hidden unit i writes to the residual, (d_mlp, d_model)."""
        return self.mlp_out_proj(layer).weight.T  # nn.Linear stores (out, in)

    def mlp_out_bias(self, layer: int) -> torch.Tensor | None:
        """Bias of the MLP output projection, (d_model,), or None."""
        return self.mlp_out_proj(layer).bias

    # ---- norms -----------------------------------------------------------------------------------

    def norms(self) -> list[NormSite]:
        """Every normalisation module: ln_1 and ln_2 of each block, then the final norm."""
        sites = []
        for layer, block in enumerate(self.blocks()):
            for kind, attr in (("ln_1", self.ln_1_attr), ("ln_2", self.ln_2_attr)):
                sites.append(NormSite(layer, kind, getattr(block, attr), block, attr))
        sites.append(NormSite(None, "ln_f", getattr(self.base, self.final_norm_attr), self.base, self.final_norm_attr))
        return sites

    def set_norm(self, site: NormSite, new_module: nn.Module) -> NormSite:
        """Swap the module at `site` in place; returns the updated site. Restore with set_norm(site, site.module)."""
        setattr(site.parent, site.attr, new_module)
        return NormSite(site.layer, site.kind, new_module, site.parent, site.attr)

    # ---- pieces of the forward pass --------------------------------------------------------------

    def embed(self, input_ids: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token (+ learned position) embedding, i.e. resid_pre[0] (in eval mode)."""
        x = self.model.get_input_embeddings()(input_ids)
        if self.positional:
            if position_ids is None:
                position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device)
            x = x + self.base.wpe(position_ids)
        return x

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return getattr(self.base, self.final_norm_attr)(resid)

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from a normalised residual (lm_head, including its bias if it has one)."""
        return self.model.get_output_embeddings()(x)

    def logit_lens(self, resid: torch.Tensor) -> torch.Tensor:
        return self.unembed(self.final_norm(resid))

    # ---- caching forward pass --------------------------------------------------------------------

    def run_with_cache(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        names: set[str] | None = None,
        *,
        position_ids: torch.Tensor | None = None,
        detach: bool = True,
    ) -> tuple[torch.Tensor, Cache]:
        """Forward pass recording activations `names` (all of CACHE_NAMES if None) with forward hooks.

        With an attention_mask and no position_ids, positions are cumsum(mask) - 1, so left padding
        does not shift positions. Hooks (and a temporary switch to eager attention, done only when
        'pattern' is requested) are undone also when the forward raises.
        """
        names = set(CACHE_NAMES if names is None else names)
        if unknown := names - CACHE_NAMES:
            raise ValueError(f"unknown cache names {sorted(unknown)}; known: {sorted(CACHE_NAMES)}")
        if attention_mask is not None and position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)

        cache = Cache({n: [None] * (self.n_layers + (n == "resid_pre")) for n in names if n in LAYER_NAMES})
        keep = (lambda t: t.detach()) if detach else (lambda t: t)
        handles = []
        try:
            for module, kind, hook in self._hooks(names, cache, keep):
                register = module.register_forward_pre_hook if kind == "pre" else module.register_forward_hook
                handles.append(register(hook, with_kwargs=True))
            with eager_attention(self.model) if "pattern" in names else nullcontext():
                out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        finally:
            for h in handles:
                h.remove()
        return out.logits, cache

    def _hooks(self, names, cache, keep):
        """Yield (module, 'pre' | 'post', hook) triples that fill `cache`."""

        def pre(name, layer):
            def hook(module, args, kwargs):
                cache[name][layer] = keep(_first_arg(args, kwargs))

            return hook

        def post(name, layer, index=None):
            def hook(module, args, kwargs, output):
                value = output if index is None else output[index]
                if value is None:
                    raise RuntimeError(f"{type(module).__name__} returned no {name}; is attention eager?")
                if layer is None:
                    cache[name] = keep(value)
                else:
                    cache[name][layer] = keep(value)

            return hook

        for layer, block in enumerate(self.blocks()):
            if "resid_pre" in names:
                yield block, "pre", pre("resid_pre", layer)
            if "resid_mid" in names:
                yield getattr(block, self.ln_2_attr), "pre", pre("resid_mid", layer)
            if "attn_out" in names:
                yield getattr(block, self.attn_attr), "post", post("attn_out", layer, 0)
            if "pattern" in names:
                yield getattr(block, self.attn_attr), "post", post("pattern", layer, 1)
            if "mlp_out" in names:
                yield getattr(block, self.mlp_attr), "post", post("mlp_out", layer)
            if "mlp_post" in names:
                yield self.mlp_out_proj(layer), "pre", pre("mlp_post", layer)
        final = getattr(self.base, self.final_norm_attr)
        if "resid_pre" in names:
            yield final, "pre", pre("resid_pre", self.n_layers)
        if "normalized_final" in names:
            yield final, "post", post("normalized_final", None)


class GPT2Adapter(Adapter):
    """HF GPT2LMHeadModel: Conv1D weights are stored (in, out)."""

    family = "gpt2"

    def value_vectors(self, layer: int) -> torch.Tensor:
        return self.mlp_out_proj(layer).weight  # Conv1D: already (d_mlp, d_model)


class GPTNeoAdapter(Adapter):
    """HF GPTNeoForCausalLM: nn.Linear weights, LayerNorm, unscaled local/global attention."""

    family = "gpt_neo"


class LlamaAdapter(Adapter):
    """HF LlamaForCausalLM: RMSNorm, SwiGLU MLP (gate/up/down_proj), RoPE (no position embedding)."""

    family = "llama"
    ln_1_attr = "input_layernorm"
    ln_2_attr = "post_attention_layernorm"
    attn_attr = "self_attn"
    mlp_out_attr = "down_proj"
    final_norm_attr = "norm"
    positional = False

    def blocks(self) -> list[nn.Module]:
        return list(self.base.layers)


ADAPTERS: dict[str, type[Adapter]] = {"gpt2": GPT2Adapter, "gpt_neo": GPTNeoAdapter, "llama": LlamaAdapter}


def get_adapter(model: nn.Module) -> Adapter:
    """The adapter for `model`'s family, chosen by config.model_type."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ADAPTERS or model.get_output_embeddings() is None:
        raise ValueError(
            f"no adapter for {type(model).__name__} (model_type={model_type!r}); "
            f"supported: causal LMs of type {sorted(ADAPTERS)}"
        )
    return ADAPTERS[model_type](model)


def tiny_model(family: str, *, vocab_size: int = 96, d_model: int = 32, n_layers: int = 2, n_heads: int = 4,
               n_ctx: int = 64, seed: int = 0, **overrides) -> nn.Module:
    """A seeded random-init model of `family` in eval mode, for tests and smoke runs."""
    from transformers import (GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM, LlamaConfig,
                              LlamaForCausalLM)

    ids = dict(bos_token_id=0, eos_token_id=0)  # no pad_token_id: Llama would zero that embedding row
    if family == "gpt2":
        cls, cfg = GPT2LMHeadModel, GPT2Config(vocab_size=vocab_size, n_embd=d_model, n_layer=n_layers,
                                               n_head=n_heads, n_positions=n_ctx, **ids)
    elif family == "gpt_neo":
        cls, cfg = GPTNeoForCausalLM, GPTNeoConfig(
            vocab_size=vocab_size, hidden_size=d_model, num_layers=n_layers, num_heads=n_heads,
            attention_types=[[[("global", "local")[i % 2]], 1] for i in range(n_layers)], window_size=8,
            max_position_embeddings=n_ctx, **ids)
    elif family == "llama":
        cls, cfg = LlamaForCausalLM, LlamaConfig(
            vocab_size=vocab_size, hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers,
            num_attention_heads=n_heads, num_key_value_heads=max(1, n_heads // 2), max_position_embeddings=n_ctx,
            **ids)
    else:
        raise ValueError(f"unknown family {family!r}; known: {sorted(ADAPTERS)}")
    for key, value in overrides.items():
        setattr(cfg, key, value)
    torch.manual_seed(seed)
    return cls(cfg).eval()
