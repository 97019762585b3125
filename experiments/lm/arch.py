"""One adapter per model family, so paper code never reaches into `model.transformer.h[...]`.

TransformerLens names and semantics on Hugging Face models (GPT-2, GPT-Neo, Llama, OPT):

    adapter = get_adapter(model)
    logits, cache = adapter.run_with_cache(input_ids, attention_mask, names=["pattern", "blocks.3.hook_z"])
    cache["blocks.3.attn.hook_pattern"]   # (batch, head, query, key)
    cache["pattern", 3]                    # the same tensor (TransformerLens tuple key)
    cache["pattern"][3]                    # the same tensor (short name -> list over layers)

    def ablate(z, hook):                   # hook is the name (a str; hook.name and hook.layer() also work)
        z[:, :, 2] = 0                     # in place, or return a new tensor to replace the activation
    logits = adapter.run_with_hooks(input_ids, fwd_hooks=[("blocks.1.attn.hook_z", ablate)])

Hook points (l = layer; shapes with batch B, positions T):
    hook_embed                  token embedding (B, T, d_model)
    hook_pos_embed              learned position embedding (B, T, d_model); GPT-2, GPT-Neo, OPT (no Llama: RoPE)
    blocks.l.hook_resid_pre     input to block l
    blocks.l.attn.hook_attn_scores  scaled, masked attention scores before the softmax (B, head, query, key)
    blocks.l.attn.hook_pattern  attention probabilities (B, head, query, key)
    blocks.l.attn.hook_z        per-head value-weighted outputs before W_O (B, T, head, d_head)
    blocks.l.attn.hook_result   per-head outputs after W_O (B, T, head, d_model): z[..., h, :] @ W_O(l)[h];
                                computed only when named (not in the default cache); sum over heads + b_O(l)
                                = hook_attn_out
    blocks.l.hook_attn_out      attention output added to the residual (B, T, d_model)
    blocks.l.hook_resid_mid     resid_pre + attn_out: the residual before the MLP
    blocks.l.mlp.hook_pre       MLP pre-activation (B, T, d_mlp); Llama: the *gate* pre-activation x @ W_gate
    blocks.l.mlp.hook_pre_linear  Llama only: the up projection x @ W_in (multiplied by act(hook_pre))
    blocks.l.mlp.hook_post      MLP hidden activation, input to the output projection (B, T, d_mlp);
                                Llama: act(gate) * up
    blocks.l.hook_mlp_out       MLP output added to the residual (B, T, d_model)
    blocks.l.hook_resid_post    output of block l (= resid_pre of block l+1)
    ln_final.hook_normalized    output of the final norm (B, T, d_model)

Short names (TransformerLens `get_act_name`): resid_pre, resid_mid, resid_post, attn_out, mlp_out, attn_scores,
pattern, z, result, mlp_pre (TL: pre), mlp_pre_linear, mlp_post (TL: post), embed, pos_embed, normalized_final
(TL: normalized). In `names` / `fwd_hooks` a short name of a layer hook means that hook of every layer;
`cache[short]` is the list over layers; `cache["resid_pre"]` has n_layers + 1 entries, the last being the final
residual (resid_post of the last block, the input to the final norm).

Hook functions `fn(tensor, hook) -> tensor | None`: `hook` is the hook's full name (a `str` with `.name` and
`.layer()` like TransformerLens' HookPoint). Returning a tensor of the same shape replaces the activation; editing
the tensor in place also takes effect; returning None keeps it. Several functions on one hook run in list order;
the cache records the value after them. Computed hook points: `hook_resid_mid` (the block adds attn_out to its
input itself, so a replaced resid_mid r' is fed back as attn_out := r' - resid_pre) and `attn.hook_result` (a
hooked result is fed back as attn_out := sum of heads + b_O) are exact up to float rounding when hooked; caching
them alone does not touch the forward pass.

Attention. hook_attn_scores / hook_pattern are applied by code this module controls: for GPT-2, Llama and OPT an
eager attention function registered with transformers' AttentionInterface under the name "arch_adapter" (the model
is switched to it for the call and switched back, also when the forward raises); for GPT-Neo (which has no
attention interface) the attention module's own `_attn` is replaced for the call. Both follow the model's eager
attention step for step (scaling, masks, GQA repetition of K/V, GPT-Neo's local window and float32 scores);
the softmax runs in float32 for half-precision models and in the model's dtype otherwise. Other hooks leave the
model's attention implementation (sdpa, ...) alone.

Weights, in one orientation for every family (TransformerLens): W_E (vocab, d_model), W_pos (n_ctx, d_model) or
None, W_U (d_model, vocab), b_U or None; per layer W_Q(l) (head, d_model, d_head), W_K(l)/W_V(l) (kv_head, d_model,
d_head; kv_head = n_kv_heads < n_heads for grouped-query Llama, query head h reads kv head h // (n_heads //
n_kv_heads)), b_Q/b_K/b_V(l) (head, d_head) or None, W_O(l) (head, d_head, d_model), b_O(l) or None, W_in(l)
(d_model, d_mlp), b_in(l), W_gate(l) (Llama) or None, W_out(l) (d_mlp, d_model): row i is what MLP neuron i writes
to the residual (its value vector), b_out(l). Every accessor returns a *view of the parameter* (no copy): edit it
in place under `torch.no_grad()` (`adapter.W_out(3)[7] *= 0`), or use `adapter.set_weight("W_out", value,
layer=3)`. W_Q and W_K are before RoPE (Llama). Tied embeddings (GPT-2, OPT): W_U is W_E.T, one parameter.
Scores are (x W_Q + b_Q)(x W_K + b_K)^T * attn_scale(l) (GPT-Neo: 1, no scaling).

Partial forward: `adapter.forward_from(l, resid, attention_mask)` runs blocks l..n_layers-1, the final norm and the
unembedding from `resid`, the residual entering block l (`adapter.resid_pre(l, input_ids, attention_mask)`, i.e.
blocks.l.hook_resid_pre; l == n_layers: the final residual), and equals the full forward's logits up to float
rounding (GPT-2, GPT-Neo, Llama, OPT). So an edit of a weight in block >= l (an MLP value vector W_out(l)[n]) is
evaluated without recomputing blocks 0..l-1. It temporarily swaps the base model's block list for the slice
[l:] and refuses to run while forward hooks are registered on the model (adapter hooks are keyed by layer index).

Families: GPT-2 (Conv1D weights stored (in, out), LayerNorm, tied unembedding), GPT-Neo (nn.Linear, LayerNorm,
local/global attention without scaling), Llama (RMSNorm, SwiGLU MLP, RoPE, grouped KV heads) and OPT (pre-LN
125m/1.3b/.../30b: learned positions stored with an offset of 2, ReLU MLP fc1/fc2 on the flattened (B*T, d)
sequence, reshaped here). opt-350m (post-LN, do_layer_norm_before=False, with project_in/project_out) is refused by
`get_adapter`: its residual stream is re-normalised after every sublayer, so resid_mid, decompose_resid and the
logit lens have no meaning there.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Union

import torch
from torch import nn

HookFn = Callable[[torch.Tensor, str], Union[torch.Tensor, None]]
NameSpec = Union[str, Iterable[str], Callable[[str], bool], None]

# legacy short names cached by default before the TransformerLens hooks existed
LAYER_NAMES = ("resid_pre", "resid_mid", "attn_out", "mlp_out", "mlp_post", "pattern")
CACHE_NAMES = frozenset(LAYER_NAMES + ("normalized_final",))

# short name -> layer hook suffix ("blocks.{l}." + suffix)
LAYER_SHORT = {
    "resid_pre": "hook_resid_pre",
    "resid_mid": "hook_resid_mid",
    "resid_post": "hook_resid_post",
    "attn_out": "hook_attn_out",
    "mlp_out": "hook_mlp_out",
    "attn_scores": "attn.hook_attn_scores",
    "scores": "attn.hook_attn_scores",
    "pattern": "attn.hook_pattern",
    "z": "attn.hook_z",
    "result": "attn.hook_result",
    "mlp_pre": "mlp.hook_pre",
    "pre": "mlp.hook_pre",
    "mlp_pre_linear": "mlp.hook_pre_linear",
    "pre_linear": "mlp.hook_pre_linear",
    "mlp_post": "mlp.hook_post",
    "post": "mlp.hook_post",
}
GLOBAL_SHORT = {
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    "normalized_final": "ln_final.hook_normalized",
    "normalized": "ln_final.hook_normalized",
}
_NOT_DEFAULT = ("attn.hook_result",)  # computed only when named
_LAYER_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")
ATTENTION_IMPL = "arch_adapter"


class HookName(str):
    """A hook's full name, also answering TransformerLens' HookPoint `.name` and `.layer()`."""

    @property
    def name(self) -> str:
        return str(self)

    def layer(self) -> int:
        m = _LAYER_RE.match(self)
        if not m:
            raise ValueError(f"{self!s} is not a layer hook")
        return int(m.group(1))


def get_act_name(name: str, layer: int | None = None) -> str:
    """Full hook name from a short name and layer (TransformerLens utils.get_act_name); full names pass through."""
    if name in GLOBAL_SHORT:
        return GLOBAL_SHORT[name]
    if name in LAYER_SHORT:
        if layer is None:
            raise ValueError(f"{name!r} is a layer hook: give a layer")
        return f"blocks.{int(layer)}.{LAYER_SHORT[name]}"
    return name


class Cache(dict):
    """Full hook name -> cached tensor (TransformerLens ActivationCache, as a dict).

    Also answers `cache[short]` (list over layers; `cache["resid_pre"]` has n_layers + 1 entries, the last the final
    residual), `cache[short, layer]` and the global short names ('embed', 'pos_embed', 'normalized_final').
    """

    def __init__(self, data=(), *, n_layers: int, positional: bool = True):
        super().__init__(data)
        self.n_layers = n_layers
        self.positional = positional  # the model has hook_pos_embed

    def _full(self, short: str) -> list[str]:
        names = [f"blocks.{l}.{LAYER_SHORT[short]}" for l in range(self.n_layers)]
        if short == "resid_pre":
            names.append(f"blocks.{self.n_layers - 1}.hook_resid_post")
        return names

    def __missing__(self, key):
        if isinstance(key, tuple):
            return self[get_act_name(*key)]
        if key in LAYER_SHORT:
            full = self._full(key)
            if not any(dict.__contains__(self, n) for n in full):
                raise KeyError(f"{key!r} is not cached")
            return [dict.get(self, n) for n in full]
        if key in GLOBAL_SHORT:
            return self[GLOBAL_SHORT[key]]
        raise KeyError(f"{key!r} is not cached (run_with_cache(names=...) decides what is cached)")

    def __contains__(self, key) -> bool:
        if isinstance(key, tuple):
            key = get_act_name(*key)
        if key in LAYER_SHORT:
            return any(dict.__contains__(self, n) for n in self._full(key))
        return dict.__contains__(self, GLOBAL_SHORT.get(key, key))

    def _layer(self, layer: int | None) -> int:
        layer = self.n_layers if layer is None else layer
        if layer < 0:
            layer += self.n_layers + 1
        if not 0 <= layer <= self.n_layers:
            raise ValueError(f"layer {layer} not in 0..{self.n_layers}")
        return layer

    def decompose_resid(self, layer: int | None = None, *, mlp_input: bool = False, return_labels: bool = False):
        """The residual entering block `layer` (None: the final residual) as a stack of its components.

        Components: embed, pos_embed (where the model has one), then f"{l}_attn_out" and f"{l}_mlp_out" for
        l < layer, plus f"{layer}_attn_out" if mlp_input (then it sums to resid_mid[layer]). Returns
        (n_components, B, T, d_model) and, with return_labels, the labels. Needs hook_embed, hook_pos_embed,
        hook_attn_out and hook_mlp_out cached (the default cache has them).
        """
        layer = self._layer(layer)
        parts = [("embed", self["hook_embed"])]
        if self.positional:
            parts.append(("pos_embed", self["hook_pos_embed"]))
        for l in range(layer):
            parts += [(f"{l}_attn_out", self[f"blocks.{l}.hook_attn_out"]),
                      (f"{l}_mlp_out", self[f"blocks.{l}.hook_mlp_out"])]
        if mlp_input:
            if layer == self.n_layers:
                raise ValueError("mlp_input needs a block: layer < n_layers")
            parts.append((f"{layer}_attn_out", self[f"blocks.{layer}.hook_attn_out"]))
        stack = torch.stack([t.expand_as(parts[0][1]) for _, t in parts])
        return (stack, [n for n, _ in parts]) if return_labels else stack

    def accumulated_resid(self, layer: int | None = None, *, incl_mid: bool = False, return_labels: bool = False):
        """resid_pre of blocks 0..layer-1 and the residual entering `layer` (None: up to the final residual),
        stacked (n, B, T, d_model); with incl_mid also each resid_mid. Labels like TransformerLens ('0_pre', ...,
        'final_post' for the final residual)."""
        layer = self._layer(layer)
        parts = []
        for l in range(layer + 1):
            if l == self.n_layers:
                parts.append(("final_post", self[f"blocks.{l - 1}.hook_resid_post"]))
                break
            parts.append((f"{l}_pre", self[f"blocks.{l}.hook_resid_pre"]))
            if incl_mid and l < layer:
                parts.append((f"{l}_mid", self[f"blocks.{l}.hook_resid_mid"]))
        stack = torch.stack([t for _, t in parts])
        return (stack, [n for n, _ in parts]) if return_labels else stack

    def stack_head_results(self, layer: int = -1, *, return_labels: bool = False):
        """Per-head attention outputs (hook_result) of every head of blocks 0..layer-1 (-1: all blocks), stacked
        (n_layers_used * n_heads, B, T, d_model), labels f"L{l}H{h}". Needs attn.hook_result cached (name it:
        run_with_cache(names=[..., "result"]))."""
        layer = self.n_layers if layer == -1 else layer
        parts = []
        for l in range(layer):
            result = self[f"blocks.{l}.attn.hook_result"]
            parts += [(f"L{l}H{h}", result[:, :, h]) for h in range(result.shape[2])]
        stack = torch.stack([t for _, t in parts])
        return (stack, [n for n, _ in parts]) if return_labels else stack


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
    """Run `model` with HF's eager attention implementation (which returns probabilities), then restore."""
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


def _with_first_arg(args: tuple, kwargs: dict, value: torch.Tensor, name: str = "hidden_states"):
    if args:
        return (value,) + tuple(args[1:]), kwargs
    return args, {**kwargs, name: value}


def _out(output):
    return output[0] if isinstance(output, tuple) else output


def _with_out(output, value):
    return (value,) + tuple(output[1:]) if isinstance(output, tuple) else value


# ---- the hooked attention step -----------------------------------------------------------------------------------

# id(attention module) -> [(run, layer), ...] while a hooked run that needs scores/patterns is active
_CORE: dict[int, list[tuple["_Run", int]]] = {}
_registered = False


def _register_attention() -> None:
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTENTION_IMPL, _interface_attention)
    AttentionMaskInterface.register(ATTENTION_IMPL, eager_mask)  # additive float mask, like eager
    _registered = True


def _attend(module: nn.Module, scores: torch.Tensor, value: torch.Tensor, dropout: Callable) -> tuple:
    """softmax(scores) @ value with the score and pattern hooks of the active runs; value (B, H, S, d)."""
    runs = _CORE.get(id(module), ())
    for run, layer in runs:
        scores = run.apply(f"blocks.{layer}.attn.hook_attn_scores", scores)
    low = scores.dtype in (torch.float16, torch.bfloat16)
    pattern = nn.functional.softmax(scores, dim=-1, dtype=torch.float32 if low else None).to(value.dtype)
    for run, layer in runs:
        pattern = run.apply(f"blocks.{layer}.attn.hook_pattern", pattern)
    return torch.matmul(dropout(pattern), value), pattern


def _interface_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """HF AttentionInterface function: eager attention with hooks. query (B, H, T, d); key/value (B, H_kv, S, d)."""
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:  # grouped-query attention: query head h reads kv head h // n_rep (HF repeat_kv)
        key, value = key.repeat_interleave(n_rep, dim=1), value.repeat_interleave(n_rep, dim=1)
    if scaling is None:
        scaling = query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    q_len, k_len = scores.shape[-2:]
    if attention_mask is None and getattr(module, "is_causal", True):
        causal = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
        attention_mask = causal[None, None]
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :k_len]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    out, pattern = _attend(module, scores, value,
                           lambda p: nn.functional.dropout(p, p=dropout, training=module.training))
    return out.transpose(1, 2).contiguous(), pattern


def _gpt_neo_attn(core: nn.Module) -> Callable:
    """Replacement for GPTNeoSelfAttention._attn (HF's code, step for step, plus the hooks)."""

    def _attn(query, key, value, attention_mask=None):
        query, key = query.to(torch.float32), key.to(torch.float32)  # as HF: float32 scores
        scores = torch.matmul(query, key.transpose(-1, -2))  # GPT-Neo does not scale
        q_len, k_len = query.size(-2), key.size(-2)
        causal = core.bias[:, :, k_len - q_len:k_len, :k_len]  # local layers: the window is in this buffer
        mask_value = torch.tensor(torch.finfo(scores.dtype).min, dtype=scores.dtype, device=scores.device)
        scores = torch.where(causal, scores, mask_value)
        if attention_mask is not None:
            scores = scores + attention_mask
        return _attend(core, scores, value, core.attn_dropout)

    _attn.arch_adapter = True
    return _attn


class _Run:
    """The hooks and cache of one hooked forward pass (or a `hooks()` context)."""

    def __init__(self, hooks: dict[str, list[HookFn]], cache: Cache, cache_names: set[str], keep: Callable):
        self.hooks, self.cache, self.cache_names, self.keep = hooks, cache, cache_names, keep
        self.block_input: dict[int, torch.Tensor] = {}
        self.shape: tuple[int, int] | None = None  # (B, T) of the current forward, for OPT's flattened MLP

    def wants(self, name: str) -> bool:
        return name in self.hooks or name in self.cache_names

    def hooked(self, name: str) -> bool:
        return name in self.hooks

    def apply(self, name: str, t: torch.Tensor) -> torch.Tensor:
        fns = self.hooks.get(name)
        if fns:
            hook = HookName(name)
            for fn in fns:
                new = fn(t, hook)
                if new is not None:
                    if not isinstance(new, torch.Tensor) or new.shape != t.shape:
                        got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
                        raise ValueError(f"hook on {name} returned {got}; expected a tensor of shape {tuple(t.shape)}")
                    t = new
        if name in self.cache_names:
            self.cache[name] = self.keep(t)
        return t

    def apply3(self, name: str, t: torch.Tensor) -> torch.Tensor:
        """apply() on a (B, T, ...) view of `t`, which may be flattened to (B*T, ...) (OPT's MLP)."""
        if t.ndim == 2 and self.shape is not None:
            view = t.view(*self.shape, t.shape[-1])
            new = self.apply(name, view)
            return t if new is view else new.reshape(t.shape)
        return self.apply(name, t)


# ---- adapters ----------------------------------------------------------------------------------------------------


class Adapter:
    """Family-neutral access to a decoder-only HF LM. Subclasses name where things live."""

    family = "base"
    # attribute names inside a block
    ln_1_attr = "ln_1"
    ln_2_attr = "ln_2"
    attn_attr = "attn"
    mlp_attr: str | None = "mlp"  # None: the MLP projections sit on the block (OPT)
    mlp_pre_attr = "c_fc"  # produces mlp.hook_pre (Llama: gate_proj)
    mlp_linear_attr: str | None = None  # Llama: up_proj (mlp.hook_pre_linear, W_in)
    mlp_out_attr = "c_proj"  # MLP output projection (W_out)
    q_attr, k_attr, v_attr, o_attr = "q_proj", "k_proj", "v_proj", "out_proj"  # inside attn_core
    final_norm_attr = "ln_f"  # inside the base model
    pos_attr: str | None = "wpe"  # learned absolute position embedding, None for RoPE
    pos_offset = 0  # rows of the position table before position 0 (OPT: 2)

    def __init__(self, model: nn.Module):
        self.model = model

    # ---- structure -------------------------------------------------------------------------------

    @property
    def base(self) -> nn.Module:
        """The decoder without the LM head (GPT2Model, GPTNeoModel, LlamaModel, OPTDecoder)."""
        return self.model.base_model

    @property
    def positional(self) -> bool:
        """Whether the model adds learned absolute position embeddings."""
        return self.pos_attr is not None

    def blocks(self) -> list[nn.Module]:
        return list(self.base.h)

    def attn(self, layer: int) -> nn.Module:
        """The block's attention module (its output[0] is hook_attn_out)."""
        return getattr(self.blocks()[layer], self.attn_attr)

    def attn_core(self, layer: int) -> nn.Module:
        """The module holding the attention projections (GPT-Neo: attn.attention; others: attn)."""
        return self.attn(layer)

    def attn_out_proj(self, layer: int) -> nn.Module:
        """W_O as a module: its input is hook_z (flattened), its output the attention output."""
        return getattr(self.attn_core(layer), self.o_attr)

    def mlp(self, layer: int) -> nn.Module | None:
        """The MLP module (its output is hook_mlp_out); None where the block holds fc1/fc2 itself (OPT)."""
        return getattr(self.blocks()[layer], self.mlp_attr) if self.mlp_attr else None

    def _mlp_parent(self, layer: int) -> nn.Module:
        return self.mlp(layer) if self.mlp_attr else self.blocks()[layer]

    def mlp_pre_proj(self, layer: int) -> nn.Module:
        """The projection whose output is mlp.hook_pre (c_fc, Llama gate_proj, OPT fc1)."""
        return getattr(self._mlp_parent(layer), self.mlp_pre_attr)

    def mlp_in_proj(self, layer: int) -> nn.Module:
        """W_in as a module (TransformerLens: Llama's up_proj; the pre-activation projection elsewhere)."""
        return getattr(self._mlp_parent(layer), self.mlp_linear_attr or self.mlp_pre_attr)

    def mlp_out_proj(self, layer: int) -> nn.Module:
        """W_out as a module: its input is mlp.hook_post."""
        return getattr(self._mlp_parent(layer), self.mlp_out_attr)

    def _mlp_out_module(self, layer: int) -> nn.Module:
        return self.mlp(layer) if self.mlp_attr else self.mlp_out_proj(layer)

    @property
    def n_layers(self) -> int:
        return len(self.blocks())

    @property
    def d_model(self) -> int:
        return self.model.config.hidden_size

    @property
    def d_mlp(self) -> int:
        return self.W_out(0).shape[0]

    @property
    def n_heads(self) -> int:
        return self.model.config.num_attention_heads

    @property
    def n_kv_heads(self) -> int:
        """Key/value heads (fewer than n_heads for grouped-query attention)."""
        return getattr(self.model.config, "num_key_value_heads", None) or self.n_heads

    @property
    def d_head(self) -> int:
        return self.attn_core(0).head_dim

    @property
    def n_ctx(self) -> int:
        return self.model.config.max_position_embeddings

    @property
    def vocab_size(self) -> int:
        return self.model.get_output_embeddings().weight.shape[0]

    # ---- weights (views of the parameters; TransformerLens orientation) -------------------------

    def _io(self, module: nn.Module) -> torch.Tensor:
        """A projection's weight as (in, out); nn.Linear stores (out, in)."""
        return module.weight.T

    def _qkv(self, layer: int, which: str) -> nn.Module:
        return getattr(self.attn_core(layer), {"q": self.q_attr, "k": self.k_attr, "v": self.v_attr}[which])

    def _qkv_io(self, layer: int, which: str) -> torch.Tensor:
        return self._io(self._qkv(layer, which))

    def _qkv_bias(self, layer: int, which: str) -> torch.Tensor | None:
        return self._qkv(layer, which).bias

    def _heads_in(self, io: torch.Tensor) -> torch.Tensor:
        return io.unflatten(1, (-1, self.d_head)).permute(1, 0, 2)  # (d_model, H*d) -> (H, d_model, d)

    def _heads_bias(self, bias: torch.Tensor | None) -> torch.Tensor | None:
        return None if bias is None else bias.unflatten(0, (-1, self.d_head))

    @property
    def W_E(self) -> torch.Tensor:
        """Token embedding (vocab, d_model)."""
        return self.model.get_input_embeddings().weight

    @property
    def W_pos(self) -> torch.Tensor | None:
        """Learned position embedding (n_ctx, d_model) (OPT: without its 2 offset rows), None for RoPE models."""
        if not self.positional:
            return None
        return getattr(self.base, self.pos_attr).weight[self.pos_offset:]

    @property
    def W_U(self) -> torch.Tensor:
        """Unembedding (d_model, vocab) (tied models: W_E.T, the same parameter)."""
        return self.model.get_output_embeddings().weight.T

    @property
    def b_U(self) -> torch.Tensor | None:
        return self.model.get_output_embeddings().bias

    def W_Q(self, layer: int) -> torch.Tensor:
        """(n_heads, d_model, d_head), before RoPE."""
        return self._heads_in(self._qkv_io(layer, "q"))

    def W_K(self, layer: int) -> torch.Tensor:
        """(n_kv_heads, d_model, d_head), before RoPE."""
        return self._heads_in(self._qkv_io(layer, "k"))

    def W_V(self, layer: int) -> torch.Tensor:
        """(n_kv_heads, d_model, d_head)."""
        return self._heads_in(self._qkv_io(layer, "v"))

    def b_Q(self, layer: int) -> torch.Tensor | None:
        return self._heads_bias(self._qkv_bias(layer, "q"))

    def b_K(self, layer: int) -> torch.Tensor | None:
        return self._heads_bias(self._qkv_bias(layer, "k"))

    def b_V(self, layer: int) -> torch.Tensor | None:
        return self._heads_bias(self._qkv_bias(layer, "v"))

    def W_O(self, layer: int) -> torch.Tensor:
        """(n_heads, d_head, d_model)."""
        return self._io(self.attn_out_proj(layer)).unflatten(0, (-1, self.d_head))

    def b_O(self, layer: int) -> torch.Tensor | None:
        return self.attn_out_proj(layer).bias

    def attn_scale(self, layer: int) -> float:
        """Factor on q.k in the scores (1/sqrt(d_head) for GPT-2, Llama, OPT; 1 for GPT-Neo)."""
        return float(self.attn_core(layer).scaling)

    def W_in(self, layer: int) -> torch.Tensor:
        """(d_model, d_mlp); Llama: the up projection (TransformerLens), the gate is W_gate."""
        return self._io(self.mlp_in_proj(layer))

    def b_in(self, layer: int) -> torch.Tensor | None:
        return self.mlp_in_proj(layer).bias

    def W_gate(self, layer: int) -> torch.Tensor | None:
        """(d_model, d_mlp) for gated MLPs (Llama gate_proj), else None."""
        return self._io(self.mlp_pre_proj(layer)) if self.mlp_linear_attr else None

    def W_out(self, layer: int) -> torch.Tensor:
        """MLP value vectors (d_mlp, d_model): row i is what hidden unit i writes to the residual."""
        return self._io(self.mlp_out_proj(layer))

    def b_out(self, layer: int) -> torch.Tensor | None:
        return self.mlp_out_proj(layer).bias

    def value_vectors(self, layer: int) -> torch.Tensor:
        """= W_out(layer) (d_mlp, d_model)."""
        return self.W_out(layer)

    def mlp_out_bias(self, layer: int) -> torch.Tensor | None:
        """= b_out(layer) (d_model,) or None."""
        return self.b_out(layer)

    WEIGHTS = ("W_E", "W_pos", "W_U", "b_U", "W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O", "W_in", "b_in",
               "W_gate", "W_out", "b_out")

    def set_weight(self, name: str, value: torch.Tensor, layer: int | None = None) -> None:
        """Copy `value` into weight `name` (one of WEIGHTS; layer for per-layer weights) in the model's parameters."""
        if name not in self.WEIGHTS:
            raise ValueError(f"unknown weight {name!r}; known: {self.WEIGHTS}")
        attr = getattr(self, name)
        target = attr if layer is None else attr(layer)
        if target is None:
            raise ValueError(f"{self.family} has no {name}")
        with torch.no_grad():
            target.copy_(value)

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
            x = x + nn.functional.embedding(position_ids, self.W_pos)
        return x

    def final_norm(self, resid: torch.Tensor) -> torch.Tensor:
        return getattr(self.base, self.final_norm_attr)(resid)

    def unembed(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from a normalised residual (lm_head, including its bias if it has one)."""
        return self.model.get_output_embeddings()(x)

    def logit_lens(self, resid: torch.Tensor) -> torch.Tensor:
        return self.unembed(self.final_norm(resid))

    # ---- hook points -----------------------------------------------------------------------------

    def hook_names(self) -> list[str]:
        """Every hook point of this model, in forward order."""
        names = ["hook_embed"] + (["hook_pos_embed"] if self.positional else [])
        layer_hooks = ["hook_resid_pre", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
                       "attn.hook_result", "hook_attn_out", "hook_resid_mid", "mlp.hook_pre"]
        layer_hooks += ["mlp.hook_pre_linear"] if self.mlp_linear_attr else []
        layer_hooks += ["mlp.hook_post", "hook_mlp_out", "hook_resid_post"]
        for l in range(self.n_layers):
            names += [f"blocks.{l}.{h}" for h in layer_hooks]
        return names + ["ln_final.hook_normalized"]

    def resolve_names(self, spec: NameSpec, *, default: bool = False) -> list[str]:
        """Full hook names from a spec: a full or short name, an iterable of them, or a filter `name -> bool`.

        None: nothing, or with default=True every hook point except attn.hook_result (computed only when named).
        """
        known = self.hook_names()
        if spec is None:
            return [n for n in known if not n.endswith(_NOT_DEFAULT)] if default else []
        if callable(spec) and not isinstance(spec, str):
            return [n for n in known if spec(n)]
        items = [spec] if isinstance(spec, str) else list(spec)
        known_set, out = set(known), {}
        for item in items:
            if item in known_set:
                full = [item]
            elif item in LAYER_SHORT:
                full = Cache(n_layers=self.n_layers)._full(item)
                full = [n for n in full if n in known_set]
                if not full:
                    raise ValueError(f"{self.family} has no hook {item!r}")
            elif item in GLOBAL_SHORT and GLOBAL_SHORT[item] in known_set:
                full = [GLOBAL_SHORT[item]]
            else:
                raise ValueError(f"unknown hook name {item!r} for {self.family}; short names: "
                                 f"{sorted(LAYER_SHORT) + sorted(GLOBAL_SHORT)}; full names: adapter.hook_names()")
            out.update(dict.fromkeys(full))
        return list(out)

    # ---- hooked forward passes -------------------------------------------------------------------

    def run_with_cache(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        names: NameSpec = None,
        *,
        names_filter: NameSpec = None,
        fwd_hooks: Iterable[tuple[NameSpec, HookFn]] = (),
        position_ids: torch.Tensor | None = None,
        detach: bool = True,
        device: torch.device | str | None = None,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, Cache]:
        """Forward pass recording the hook points `names` (alias names_filter; None: all but attn.hook_result).

        fwd_hooks run before caching (the cache holds the hooked values). With an attention_mask and no
        position_ids, positions are cumsum(mask) - 1, so left padding does not shift positions. Cached tensors are
        detached (detach=False keeps the graph) and moved to `device` if given. Returns (logits, cache);
        last_only: logits (B, 1, vocab) of the last position only (run_with_hooks).
        """
        spec = names if names is not None else names_filter
        with self.hooks(fwd_hooks, self.resolve_names(spec, default=True), detach=detach, device=device) as cache:
            logits = self._forward(input_ids, attention_mask, position_ids, last_only=last_only)
        return logits, cache

    def run_with_hooks(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        fwd_hooks: Iterable[tuple[NameSpec, HookFn]] = (),
        position_ids: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Forward pass with `fwd_hooks` [(name | short name | list | filter, fn), ...]; returns the logits.

        last_only: the unembedding runs on the last position only and the logits are (B, 1, vocab) (see
        last_logits_kwargs); the residual stream and every hook point before the unembedding are unchanged.
        """
        with self.hooks(fwd_hooks):
            return self._forward(input_ids, attention_mask, position_ids, last_only=last_only)

    def last_logits_kwargs(self, seq_len: int = 1) -> dict:
        """Keyword arguments asking the model for the last position's logits only (transformers'
        `logits_to_keep`, as an index tensor for seq_len > 1: lm.sample._last_logits_kwargs says why): a (B, T,
        vocab) unembedding becomes (B, 1, vocab). Empty where the model lacks the argument; callers then slice
        (see _logits)."""
        from experiments.lm.sample import _last_logits_kwargs

        return _last_logits_kwargs(self.model, seq_len)

    def _logits(self, out, last_only: bool) -> torch.Tensor:
        return out.logits[:, -1:] if last_only else out.logits

    def _forward(self, input_ids, attention_mask, position_ids, last_only: bool = False) -> torch.Tensor:
        if position_ids is None:
            if attention_mask is not None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            else:
                position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device).expand(input_ids.shape)
        extra = self.last_logits_kwargs(input_ids.shape[-1]) if last_only else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **extra)
        return self._logits(out, last_only)

    # ---- partial forward from a block's input ----------------------------------------------------

    def resid_pre(self, layer: int, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
                  position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The residual entering block `layer` (B, T, d_model): blocks.{layer}.hook_resid_pre, or the final
        residual (resid_post of the last block) for layer == n_layers. Caches only that hook point."""
        layer = self._check_from_layer(layer)
        name = (f"blocks.{layer}.hook_resid_pre" if layer < self.n_layers
                else f"blocks.{self.n_layers - 1}.hook_resid_post")
        _, cache = self.run_with_cache(input_ids, attention_mask, names=[name], position_ids=position_ids,
                                       last_only=True)
        return cache[name]

    def forward_from(self, layer: int, resid: torch.Tensor, attention_mask: torch.Tensor | None = None,
                     position_ids: torch.Tensor | None = None, last_only: bool = False) -> torch.Tensor:
        """Logits of the model run from block `layer` on, with `resid` (B, T, d_model) as the input of that block.

        resid is what blocks.{layer}.hook_resid_pre records (resid_pre(layer, ...)); layer == n_layers: the final
        residual (only the final norm and the unembedding run). attention_mask / position_ids follow _forward (with
        a mask and no position_ids, positions are cumsum(mask) - 1), so forward_from(l, resid_pre(l, ids, mask),
        mask) equals run_with_hooks(ids, mask) up to float rounding. Blocks 0..layer-1 do not run: an edit of
        a weight of block >= layer (e.g. W_out(layer)[n]) made after caching resid takes effect.

        How: the base model's layer list is swapped for the slice [layer:] (the same block objects) and the model is
        called with inputs_embeds=resid (for the mask and rotary embeddings); a pre-hook on the first remaining
        block (or on the final norm) replaces that module's input by `resid` exactly, so learned position
        embeddings (GPT-2, GPT-Neo, OPT) are not added twice. The list and the hook are restored also when the
        forward raises. Not combinable with hooks: adapter.hooks() / run_with_hooks install per-layer hooks keyed
        by the full model's layer index, so this raises ValueError while any forward hook is registered on the
        model (or an adapter attention hook is active). last_only: (B, 1, vocab) logits of the last position, as in
        run_with_hooks (the unembedding dominates a forward from a late block of a large-vocabulary model).
        """
        layer = self._check_from_layer(layer)
        if resid.ndim != 3 or resid.shape[-1] != self.d_model:
            raise ValueError(f"resid must be (batch, positions, d_model={self.d_model}), got {tuple(resid.shape)}")
        model, base = self.model, self.base
        if model.config._attn_implementation == ATTENTION_IMPL or any(
                m._forward_hooks or m._forward_pre_hooks or id(m) in _CORE for m in model.modules()):
            raise ValueError("forward_from cannot run while forward hooks are registered on the model (adapter "
                             "hooks are keyed by the full model's layer index); call it outside adapter.hooks()")
        attr = self._blocks_attr()
        full = getattr(base, attr)
        if position_ids is None:
            if attention_mask is not None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            else:
                position_ids = torch.arange(resid.shape[1], device=resid.device).expand(resid.shape[:2])
        blocks = list(full)
        first = blocks[layer] if layer < len(blocks) else getattr(base, self.final_norm_attr)

        def feed(module, args, kwargs):
            return _with_first_arg(args, kwargs, resid)

        handle = first.register_forward_pre_hook(feed, with_kwargs=True)
        try:
            setattr(base, attr, nn.ModuleList(blocks[layer:]))
            extra = self.last_logits_kwargs(resid.shape[1]) if last_only else {}
            out = model(inputs_embeds=resid, attention_mask=attention_mask, position_ids=position_ids,
                        use_cache=False, **extra)
            return self._logits(out, last_only)
        finally:
            setattr(base, attr, full)
            handle.remove()

    def _check_from_layer(self, layer: int) -> int:
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= self.n_layers:
            raise ValueError(f"layer must be an int in 0..n_layers={self.n_layers}, got {layer!r}")
        return layer

    def _blocks_attr(self) -> str:
        """The base model's attribute holding the block list (GPT-2/GPT-Neo: 'h'; Llama/OPT: 'layers')."""
        blocks = self.blocks()
        for name, module in self.base.named_children():
            if isinstance(module, nn.ModuleList) and list(module) == blocks:
                return name
        raise NotImplementedError(f"{self.family}: cannot find the block list in {type(self.base).__name__}, "
                                  "so forward_from is not available")

    @contextmanager
    def hooks(
        self,
        fwd_hooks: Iterable[tuple[NameSpec, HookFn]] = (),
        names: NameSpec = (),
        *,
        detach: bool = True,
        device: torch.device | str | None = None,
    ) -> Iterator[Cache]:
        """Context in which every forward of the model (also generate()) runs `fwd_hooks` and caches `names`.

        Yields the Cache (later forwards overwrite it). Every hook, the attention switch and the GPT-Neo patch are
        undone on exit, also when the body raises.
        """
        hooks: dict[str, list[HookFn]] = {}
        for spec, fn in fwd_hooks:
            if not callable(fn):
                raise TypeError(f"hook function for {spec!r} is not callable")
            for name in self.resolve_names(spec):
                hooks.setdefault(name, []).append(fn)
        cache_names = set(self.resolve_names(names))

        def keep(t):
            t = t.detach() if detach else t
            return t if device is None else t.to(device)

        run = _Run(hooks, Cache(n_layers=self.n_layers, positional=self.positional), cache_names, keep)
        undo: list[Callable[[], None]] = []
        try:
            self._install(run, undo)
            yield run.cache
        finally:
            for step in reversed(undo):
                step()

    def _install(self, run: _Run, undo: list) -> None:
        """Register the PyTorch hooks (and the attention switch) `run` needs; append their undo steps."""

        def pre(module, fn):
            undo.append(module.register_forward_pre_hook(fn, with_kwargs=True).remove)

        def post(module, fn):
            undo.append(module.register_forward_hook(fn, with_kwargs=True).remove)

        def output_site(name):  # module output is the activation (possibly inside a tuple / flattened)
            def hook(module, args, kwargs, output):
                t = _out(output)
                new = run.apply3(name, t)
                return None if new is t else _with_out(output, new)

            return hook

        def input_site(name, unflatten=None):  # first input is the activation
            def hook(module, args, kwargs):
                t = _first_arg(args, kwargs, "input")
                view = t if unflatten is None else t.unflatten(-1, unflatten)
                new = run.apply3(name, view)
                if new is view:
                    return None
                return _with_first_arg(args, kwargs, new if unflatten is None else new.flatten(-2), "input")

            return hook

        wants = run.wants
        if wants("hook_embed"):
            post(self.model.get_input_embeddings(), output_site("hook_embed"))
        if self.positional and wants("hook_pos_embed"):
            post(getattr(self.base, self.pos_attr), output_site("hook_pos_embed"))
        need_core, H, d = False, self.n_heads, self.d_head
        for l, block in enumerate(self.blocks()):
            n = {short: f"blocks.{l}.{suffix}" for short, suffix in LAYER_SHORT.items()}
            mid = wants(n["resid_mid"])

            def block_pre(module, args, kwargs, l=l, name=n["resid_pre"], mid=mid):
                x = _first_arg(args, kwargs)
                if l == 0:
                    run.shape = tuple(x.shape[:2])
                new = run.apply(name, x) if run.wants(name) else x
                if mid:
                    run.block_input[l] = new
                return None if new is x else _with_first_arg(args, kwargs, new)

            if l == 0 or mid or wants(n["resid_pre"]):
                pre(block, block_pre)
            if wants(n["attn_out"]) or mid:
                def attn_post(module, args, kwargs, output, l=l, name=n["attn_out"], mid_name=n["resid_mid"]):
                    a = _out(output)
                    new = run.apply(name, a)
                    if run.wants(mid_name):
                        x = run.block_input.pop(l)
                        r = run.apply(mid_name, new + x)  # the block's own sum (addition commutes exactly)
                        if run.hooked(mid_name):
                            new = r - x
                    return None if new is a else _with_out(output, new)

                post(self.attn(l), attn_post)
            if wants(n["attn_scores"]) or wants(n["pattern"]):
                need_core = True
                self._hook_core(l, run, undo)
            if wants(n["z"]):
                pre(self.attn_out_proj(l), input_site(n["z"], (H, d)))
            if wants(n["result"]):
                def result_post(module, args, kwargs, output, l=l, name=n["result"]):
                    z = _first_arg(args, kwargs, "input").unflatten(-1, (H, d))
                    result = run.apply(name, torch.einsum("bthd,hdm->bthm", z, self.W_O(l).to(z.dtype)))
                    if not run.hooked(name):
                        return None
                    new = result.sum(-2)
                    bias = self.b_O(l)
                    return new if bias is None else new + bias

                post(self.attn_out_proj(l), result_post)
            if wants(n["mlp_pre"]):
                post(self.mlp_pre_proj(l), output_site(n["mlp_pre"]))
            if self.mlp_linear_attr and wants(n["mlp_pre_linear"]):
                post(self.mlp_in_proj(l), output_site(n["mlp_pre_linear"]))
            if wants(n["mlp_post"]):
                pre(self.mlp_out_proj(l), input_site(n["mlp_post"]))
            if wants(n["mlp_out"]):
                post(self._mlp_out_module(l), output_site(n["mlp_out"]))
            if wants(n["resid_post"]):
                post(block, output_site(n["resid_post"]))
        if wants("ln_final.hook_normalized"):
            post(getattr(self.base, self.final_norm_attr), output_site("ln_final.hook_normalized"))
        if need_core:
            self._switch_attention(undo)

    def _hook_core(self, layer: int, run: _Run, undo: list) -> None:
        """Route layer's attention step through _attend with `run`'s hooks."""
        core = self.attn_core(layer)
        entries = _CORE.setdefault(id(core), [])
        entry = (run, layer)
        entries.append(entry)

        def remove():
            entries.remove(entry)
            if not entries:
                _CORE.pop(id(core), None)

        undo.append(remove)

    def _switch_attention(self, undo: list) -> None:
        """Make the model's attention call _interface_attention for this run (restored by undo)."""
        _register_attention()
        model = self.model
        before = model.config._attn_implementation
        if before == ATTENTION_IMPL:  # an enclosing hooks() context already switched
            return
        model.set_attn_implementation(ATTENTION_IMPL)
        if model.config._attn_implementation != ATTENTION_IMPL:
            raise ValueError(f"{type(model).__name__} cannot switch its attention implementation (from {before!r}); "
                             "attention patterns need the adapter's attention function")
        undo.append(lambda: model.set_attn_implementation(before))


class GPT2Adapter(Adapter):
    """HF GPT2LMHeadModel: Conv1D weights are stored (in, out); q, k, v share c_attn."""

    family = "gpt2"
    o_attr = "c_proj"

    def _io(self, module: nn.Module) -> torch.Tensor:
        return module.weight  # Conv1D: already (in, out)

    def _qkv_io(self, layer: int, which: str) -> torch.Tensor:
        i = "qkv".index(which)
        return self.attn(layer).c_attn.weight[:, i * self.d_model:(i + 1) * self.d_model]

    def _qkv_bias(self, layer: int, which: str) -> torch.Tensor | None:
        i = "qkv".index(which)
        bias = self.attn(layer).c_attn.bias
        return None if bias is None else bias[i * self.d_model:(i + 1) * self.d_model]


class GPTNeoAdapter(Adapter):
    """HF GPTNeoForCausalLM: nn.Linear weights, LayerNorm, unscaled local/global attention."""

    family = "gpt_neo"

    def attn_core(self, layer: int) -> nn.Module:
        return self.attn(layer).attention

    def attn_scale(self, layer: int) -> float:
        return 1.0

    def _hook_core(self, layer: int, run: _Run, undo: list) -> None:
        core = self.attn_core(layer)
        if type(core).__name__ != "GPTNeoSelfAttention":  # GPTNeoFlashAttention2 never calls _attn
            raise ValueError(f"{type(core).__name__} is not GPT-Neo's eager attention; load with attn_implementation"
                             "='eager' to use attention hooks")
        super()._hook_core(layer, run, undo)
        if not getattr(core.__dict__.get("_attn"), "arch_adapter", False):  # else an enclosing context patched it
            core._attn = _gpt_neo_attn(core)
            undo.append(lambda: core.__dict__.pop("_attn", None))

    def _switch_attention(self, undo: list) -> None:
        pass  # GPT-Neo's attention is patched per module in _hook_core


class LlamaAdapter(Adapter):
    """HF LlamaForCausalLM: RMSNorm, SwiGLU MLP (gate/up/down_proj), RoPE (no position embedding), GQA."""

    family = "llama"
    ln_1_attr = "input_layernorm"
    ln_2_attr = "post_attention_layernorm"
    attn_attr = "self_attn"
    mlp_pre_attr = "gate_proj"
    mlp_linear_attr = "up_proj"
    mlp_out_attr = "down_proj"
    o_attr = "o_proj"
    final_norm_attr = "norm"
    pos_attr = None

    def blocks(self) -> list[nn.Module]:
        return list(self.base.layers)


class OPTAdapter(Adapter):
    """HF OPTForCausalLM (pre-LN checkpoints): learned positions with offset 2, fc1/fc2 on the block."""

    family = "opt"
    ln_1_attr = "self_attn_layer_norm"
    ln_2_attr = "final_layer_norm"
    attn_attr = "self_attn"
    mlp_attr = None
    mlp_pre_attr = "fc1"
    mlp_out_attr = "fc2"
    final_norm_attr = "final_layer_norm"
    pos_attr = "embed_positions"
    pos_offset = 2

    @property
    def base(self) -> nn.Module:
        return self.model.model.decoder

    def blocks(self) -> list[nn.Module]:
        return list(self.base.layers)


ADAPTERS: dict[str, type[Adapter]] = {"gpt2": GPT2Adapter, "gpt_neo": GPTNeoAdapter, "llama": LlamaAdapter,
                                      "opt": OPTAdapter}


def _check_opt(config) -> None:
    problems = []
    if not config.do_layer_norm_before:
        problems.append("do_layer_norm_before=False (post-LN blocks)")
    if config.word_embed_proj_dim != config.hidden_size:
        problems.append(f"word_embed_proj_dim={config.word_embed_proj_dim} != hidden_size={config.hidden_size} "
                        "(project_in/project_out)")
    if getattr(config, "_remove_final_layer_norm", False):
        problems.append("_remove_final_layer_norm=True (no final norm)")
    if problems:
        raise ValueError(
            "OPT variant not supported (this is facebook/opt-350m's layout): " + "; ".join(problems)
            + ". Its residual stream is re-normalised after every sublayer and has another width than the "
            "embeddings, so resid_mid, decompose_resid and the logit lens have no meaning; the other OPT "
            "checkpoints (125m, 1.3b, 2.7b, 6.7b, 13b, 30b) are pre-LN and supported")


def get_adapter(model: nn.Module) -> Adapter:
    """The adapter for `model`'s family, chosen by config.model_type."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in ADAPTERS or model.get_output_embeddings() is None:
        raise ValueError(
            f"no adapter for {type(model).__name__} (model_type={model_type!r}); "
            f"supported: causal LMs of type {sorted(ADAPTERS)}"
        )
    if model_type == "opt":
        _check_opt(config)
    return ADAPTERS[model_type](model)


def tiny_model(family: str, *, vocab_size: int = 96, d_model: int = 32, n_layers: int = 2, n_heads: int = 4,
               n_ctx: int = 64, seed: int = 0, **overrides) -> nn.Module:
    """A seeded random-init model of `family` in eval mode, for tests and smoke runs (overrides: config fields)."""
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        GPTNeoConfig,
        GPTNeoForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        OPTConfig,
        OPTForCausalLM,
    )

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
    elif family == "opt":
        cls, cfg = OPTForCausalLM, OPTConfig(
            vocab_size=vocab_size, hidden_size=d_model, ffn_dim=4 * d_model, num_hidden_layers=n_layers,
            num_attention_heads=n_heads, max_position_embeddings=n_ctx, word_embed_proj_dim=d_model,
            do_layer_norm_before=True, pad_token_id=None, **ids)
    else:
        raise ValueError(f"unknown family {family!r}; known: {sorted(ADAPTERS)}")
    for key, value in overrides.items():
        setattr(cfg, key, value)
    torch.manual_seed(seed)
    return cls(cfg).eval()
