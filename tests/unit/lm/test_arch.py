"""Adapters on tiny random-init GPT-2, GPT-Neo, Llama and OPT models, checked against the models' own forward.

Exactness checks run in float64 (EXACT); the float32 checks (ATOL) mirror how the pipeline runs.
"""
import copy

import pytest
import torch
from torch import nn

from experiments.lm import arch
from experiments.lm.arch import (
    CACHE_NAMES,
    GPT2Adapter,
    GPTNeoAdapter,
    LlamaAdapter,
    OPTAdapter,
    get_act_name,
    get_adapter,
    tiny_model,
)

FAMILIES = ["gpt2", "gpt_neo", "llama", "opt"]
ATOL = 1e-5
EXACT = 1e-10


def random_model(family: str, **overrides) -> nn.Module:
    """tiny_model with random biases and norm gains (HF initialises them to 0 and 1, which hides mistakes)."""
    model = tiny_model(family, initializer_range=0.1, seed=0, **overrides)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or p.ndim == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request):
    return get_adapter(random_model(request.param))


@pytest.fixture(scope="module", params=FAMILIES)
def adapter64(request):
    return get_adapter(random_model(request.param).double())


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(1)
    return torch.randint(1, 96, (2, 12))  # longer than GPT-Neo's local window (8)


@pytest.fixture(scope="module")
def ids2():
    torch.manual_seed(3)
    return torch.randint(1, 96, (2, 12))


def n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def close(a, b, atol=EXACT):
    return torch.allclose(a, b, atol=atol, rtol=0)


def hf_w_out_row(model, family, layer, i) -> torch.Tensor:
    """Neuron i's value vector, read from the HF parameter directly (a view)."""
    if family == "gpt2":
        return model.transformer.h[layer].mlp.c_proj.weight[i]  # Conv1D (d_mlp, d_model)
    if family == "gpt_neo":
        return model.transformer.h[layer].mlp.c_proj.weight[:, i]  # Linear (d_model, d_mlp)
    if family == "llama":
        return model.model.layers[layer].mlp.down_proj.weight[:, i]
    return model.model.decoder.layers[layer].fc2.weight[:, i]


def ln_1(a, layer):
    return next(s.module for s in a.norms() if s.kind == "ln_1" and s.layer == layer)


def ln_2(a, layer):
    return next(s.module for s in a.norms() if s.kind == "ln_2" and s.layer == layer)


# ---- structure -------------------------------------------------------------------------------------------------


def test_get_adapter_picks_family():
    assert type(get_adapter(tiny_model("gpt2"))) is GPT2Adapter
    assert type(get_adapter(tiny_model("gpt_neo"))) is GPTNeoAdapter
    assert type(get_adapter(tiny_model("llama"))) is LlamaAdapter
    assert type(get_adapter(tiny_model("opt"))) is OPTAdapter
    with pytest.raises(ValueError, match="Linear"):
        get_adapter(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown family"):
        tiny_model("bert")


def test_opt_350m_layout_is_refused():
    with pytest.raises(ValueError, match="350m.*do_layer_norm_before=False"):
        get_adapter(tiny_model("opt", do_layer_norm_before=False))
    with pytest.raises(ValueError, match="project_in/project_out"):
        get_adapter(tiny_model("opt", word_embed_proj_dim=16))


def test_dimensions(adapter):
    a = adapter
    assert (a.n_layers, a.d_model, a.n_heads, a.vocab_size, a.d_head, a.n_ctx) == (2, 32, 4, 96, 8, 64)
    assert a.n_kv_heads == (2 if a.family == "llama" else 4)
    assert a.d_mlp == (64 if a.family == "llama" else 128)
    assert len(a.blocks()) == a.n_layers
    assert a.positional == (a.family != "llama")


def test_weight_shapes_and_views(adapter):
    a, d, f = adapter, adapter.d_model, adapter.d_mlp
    shapes = {"W_E": (96, d), "W_U": (d, 96), "W_Q": (4, d, 8), "W_K": (a.n_kv_heads, d, 8),
              "W_V": (a.n_kv_heads, d, 8), "W_O": (4, 8, d), "W_in": (d, f), "W_out": (f, d)}
    for name, shape in shapes.items():
        w = getattr(a, name) if name in ("W_E", "W_U") else getattr(a, name)(1)
        assert tuple(w.shape) == shape, name
        params = {p.untyped_storage().data_ptr() for p in a.model.parameters()}
        assert w.untyped_storage().data_ptr() in params, f"{name} is a copy"
    assert (a.W_pos is None) == (a.family == "llama")
    if a.W_pos is not None:
        assert tuple(a.W_pos.shape) == (64, d)
    assert (a.W_gate(0) is None) == (a.family != "llama")
    assert a.value_vectors(1) is not None and torch.equal(a.value_vectors(1), a.W_out(1))


# ---- caching ---------------------------------------------------------------------------------------------------


def test_cache_shapes(adapter, ids):
    a = adapter
    logits, cache = a.run_with_cache(ids)
    assert set(cache) == set(a.hook_names()) - {f"blocks.{l}.attn.hook_result" for l in range(2)}
    assert all(name in cache for name in CACHE_NAMES)
    assert logits.shape == (2, 12, 96)
    assert len(cache["resid_pre"]) == a.n_layers + 1
    for name in ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"]:
        assert cache[name][0].shape == (2, 12, 32)
    assert cache["mlp_post"][1].shape == (2, 12, a.d_mlp)
    assert cache["mlp_pre"][1].shape == (2, 12, a.d_mlp)
    assert cache["pattern"][1].shape == (2, 4, 12, 12)
    assert cache["z"][1].shape == (2, 12, 4, 8)
    assert cache["normalized_final"].shape == (2, 12, 32)
    _, c = a.run_with_cache(ids, names=["result"])
    assert c["result"][0].shape == (2, 12, 4, 32)


def test_names_subset_filter_and_unknown(adapter, ids):
    _, cache = adapter.run_with_cache(ids, names={"mlp_out"})
    assert set(cache) == {"blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"}
    _, cache = adapter.run_with_cache(ids, names_filter=lambda n: n.endswith("hook_z"))
    assert set(cache) == {"blocks.0.attn.hook_z", "blocks.1.attn.hook_z"}
    _, cache = adapter.run_with_cache(ids, names="blocks.1.attn.hook_pattern")
    assert set(cache) == {"blocks.1.attn.hook_pattern"}
    with pytest.raises(ValueError, match="unknown"):
        adapter.run_with_cache(ids, names={"resid_post_typo"})
    with pytest.raises(ValueError, match="unknown"):
        adapter.run_with_hooks(ids, fwd_hooks=[("blocks.9.hook_z", lambda t, h: None)])
    if adapter.family == "llama":
        with pytest.raises(ValueError, match="unknown"):
            adapter.run_with_cache(ids, names=["hook_pos_embed"])


def test_transformer_lens_names(adapter, ids):
    _, c = adapter.run_with_cache(ids)
    assert c["blocks.1.hook_resid_pre"] is c["resid_pre"][1]
    assert c["blocks.1.attn.hook_pattern"] is c["pattern"][1] is c["pattern", 1]
    assert c["blocks.0.mlp.hook_post"] is c["mlp_post"][0] is c[get_act_name("post", 0)]
    assert c["ln_final.hook_normalized"] is c["normalized_final"]
    assert torch.equal(c["blocks.0.hook_resid_post"], c["resid_pre"][1])
    assert torch.equal(c["resid_pre"][2], c["blocks.1.hook_resid_post"])
    assert ("pattern", 0) in c and "pattern" in c and "result" not in c
    with pytest.raises(KeyError):
        c["blocks.0.hook_nothing"]
    with pytest.raises(KeyError):
        c["result"]


def test_hook_receives_its_name(adapter, ids):
    seen = []
    adapter.run_with_hooks(ids, fwd_hooks=[("z", lambda t, hook: seen.append((hook, hook.name, hook.layer())))])
    assert seen == [("blocks.0.attn.hook_z", "blocks.0.attn.hook_z", 0), ("blocks.1.attn.hook_z",) * 2 + (1,)]


# ---- the forward pass is the model's own -------------------------------------------------------------------------


def test_identity_hooks_reproduce_the_logits(adapter64, ids):
    a = adapter64
    with torch.no_grad():
        reference = a.model(input_ids=ids).logits
        logits, cache = a.run_with_cache(ids, names=lambda n: True)  # everything, hook_result included
        assert len(cache) == len(a.hook_names())
        assert close(logits, reference)
        for identity in (lambda t, h: t, lambda t, h: None, lambda t, h: t.clone()):
            assert close(a.run_with_hooks(ids, fwd_hooks=[(lambda n: True, identity)]), reference)
        nudged = a.run_with_hooks(ids, fwd_hooks=[("blocks.0.hook_resid_post", lambda t, h: t * 1.001)])
        assert not close(nudged, reference, 1e-6)


def halve_in_place(t, hook):
    t.mul_(0.5)


def test_every_hook_point_replaces_its_activation(adapter64, ids):
    """Returning a tensor and editing in place have the same effect, and both change the logits."""
    a = adapter64
    with torch.no_grad():
        clean = a.run_with_hooks(ids)
        for name in a.hook_names():
            replaced = a.run_with_hooks(ids, fwd_hooks=[(name, lambda t, h: t * 0.5)])
            in_place = a.run_with_hooks(ids, fwd_hooks=[(name, halve_in_place)])
            assert not close(replaced, clean, 1e-6), name
            assert close(in_place, replaced), name


def test_replacement_of_the_wrong_shape_is_refused(adapter, ids):
    with pytest.raises(ValueError, match="expected a tensor of shape"):
        adapter.run_with_hooks(ids, fwd_hooks=[("blocks.0.hook_mlp_out", lambda t, h: t[:, :1])])


def test_residual_patching_transplants_the_other_run(adapter64, ids, ids2):
    """Patching the whole residual at a block boundary makes the rest of the forward the other input's."""
    a = adapter64
    with torch.no_grad():
        other, cache = a.run_with_cache(ids2, names=["resid_pre", "resid_mid", "resid_post"])
        for name in ["blocks.1.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid",
                     "blocks.0.hook_resid_post"]:
            patched = a.run_with_hooks(ids, fwd_hooks=[(name, lambda t, h: cache[h])])
            assert close(patched, other), name
        assert not close(a.run_with_hooks(ids), other, 1e-3)


def test_resid_mid_is_the_mlp_norm_input(adapter, ids):
    captured = {}
    norm = ln_2(adapter, 1)
    handle = norm.register_forward_pre_hook(lambda m, args: captured.update(x=args[0]))
    try:
        _, c = adapter.run_with_cache(ids, names=["resid_mid", "resid_pre", "attn_out"])
    finally:
        handle.remove()
    torch.testing.assert_close(c["resid_mid"][1], captured["x"].reshape(2, 12, 32), atol=ATOL, rtol=0)
    torch.testing.assert_close(c["resid_mid"][1], c["resid_pre"][1] + c["attn_out"][1], atol=ATOL, rtol=0)
    assert not close(c["resid_mid"][1], c["resid_pre"][1], 1e-3)


# ---- weights ---------------------------------------------------------------------------------------------------


def test_value_vector_edit_equals_editing_the_weight(adapter64, ids):
    a, layer, i = adapter64, 1, 3
    torch.manual_seed(5)
    delta = torch.randn(a.d_model, dtype=torch.float64)
    with torch.no_grad():
        clean = a.model(input_ids=ids).logits
        direct, via_accessor, via_setter, wrong = (copy.deepcopy(a.model) for _ in range(4))
        hf_w_out_row(direct, a.family, layer, i).add_(delta)
        get_adapter(via_accessor).W_out(layer)[i] += delta
        b = get_adapter(via_setter)
        edited = b.W_out(layer).clone()
        edited[i] += delta
        b.set_weight("W_out", edited, layer=layer)
        hf_w_out_row(wrong, a.family, layer, i + 1).add_(delta)
        expected = direct(input_ids=ids).logits
        assert torch.equal(via_accessor(input_ids=ids).logits, expected)
        assert torch.equal(via_setter(input_ids=ids).logits, expected)
        assert not close(expected, clean, 1e-6)
        assert not close(wrong(input_ids=ids).logits, expected, 1e-6)


def test_zeroing_a_neuron_equals_zeroing_its_value_vector(adapter64, ids):
    a, layer, i = adapter64, 0, 5

    def zero(t, hook):
        t[..., i] = 0

    with torch.no_grad():
        hooked = a.run_with_hooks(ids, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", zero)])
        edited = copy.deepcopy(a.model)
        get_adapter(edited).W_out(layer)[i] = 0
        assert close(hooked, edited(input_ids=ids).logits)
        other = copy.deepcopy(a.model)
        get_adapter(other).W_out(layer)[i + 1] = 0
        assert not close(hooked, other(input_ids=ids).logits, 1e-8)


def test_mlp_activations_from_weights(adapter64, ids):
    a = adapter64
    with torch.no_grad():
        _, c = a.run_with_cache(ids)
        for l in range(a.n_layers):
            x = ln_2(a, l)(c["resid_mid"][l])
            bias_in = 0 if a.b_in(l) is None else a.b_in(l)
            if a.family == "llama":
                assert a.b_out(l) is None
                assert close(c[f"blocks.{l}.mlp.hook_pre"], x @ a.W_gate(l))
                assert close(c[f"blocks.{l}.mlp.hook_pre_linear"], x @ a.W_in(l))
                expected = nn.functional.silu(x @ a.W_gate(l)) * (x @ a.W_in(l))
                assert close(c["mlp_post"][l], expected)
            else:
                assert close(c["mlp_pre"][l], x @ a.W_in(l) + bias_in)
            bias = a.mlp_out_bias(l)
            expected = c["mlp_post"][l] @ a.value_vectors(l) + (0 if bias is None else bias)
            assert close(c["mlp_out"][l], expected)
            assert not close(c["mlp_out"][l], c["mlp_post"][l] @ a.W_out(l).flip(0), 1e-6)


def test_attention_scores_from_weights(adapter64, ids):
    a = adapter64
    if a.family == "llama":
        pytest.skip("RoPE rotates q and k after W_Q / W_K")
    with torch.no_grad():
        _, c = a.run_with_cache(ids, names=["resid_pre", "attn_scores"])
        for l in range(a.n_layers):
            x = ln_1(a, l)(c["resid_pre"][l])
            q = torch.einsum("btm,hmd->bhtd", x, a.W_Q(l)) + (0 if a.b_Q(l) is None else a.b_Q(l)[None, :, None])
            k = torch.einsum("btm,hmd->bhtd", x, a.W_K(l)) + (0 if a.b_K(l) is None else a.b_K(l)[None, :, None])
            scores = q @ k.transpose(-1, -2) * a.attn_scale(l)
            allowed = c["attn_scores", l] > -1e30
            if a.family == "gpt_neo":  # GPT-Neo computes its scores in float32
                assert torch.allclose(c["attn_scores", l][allowed].double(), scores[allowed], atol=1e-5, rtol=0)
            else:
                assert close(c["attn_scores", l][allowed], scores[allowed])
            assert allowed.diagonal(dim1=-2, dim2=-1).all() and not allowed.triu(1).any()


def test_embeddings_from_weights(adapter64, ids):
    a = adapter64
    _, c = a.run_with_cache(ids, names=["embed", "pos_embed", "resid_pre"] if a.positional else ["embed", "resid_pre"])
    assert torch.equal(c["hook_embed"], a.W_E[ids])
    first = c["hook_embed"]
    if a.positional:
        assert torch.equal(c["hook_pos_embed"], a.W_pos[torch.arange(12)].expand(2, 12, 32))
        first = first + c["hook_pos_embed"]
    assert close(c["resid_pre"][0], first)
    assert close(a.embed(ids), c["resid_pre"][0])


# ---- attention ---------------------------------------------------------------------------------------------------


def test_head_results_sum_to_attn_out(adapter64, ids):
    a = adapter64
    with torch.no_grad():
        _, c = a.run_with_cache(ids, names=["z", "result", "attn_out"])
        for l in range(a.n_layers):
            result, bias = c["result", l], a.b_O(l)
            total = result.sum(2) + (0 if bias is None else bias)
            assert close(total, c["attn_out", l])
            assert not close(total - result[:, :, 1], c["attn_out", l], 1e-6)  # a head missing: no longer equal
            assert close(torch.einsum("bthd,hdm->bthm", c["z", l], a.W_O(l)), result)
        stack, labels = c.stack_head_results(return_labels=True)
        assert stack.shape == (a.n_layers * a.n_heads, 2, 12, 32)
        assert labels[:5] == ["L0H0", "L0H1", "L0H2", "L0H3", "L1H0"]
        assert close(stack[4:].sum(0) + (0 if a.b_O(1) is None else a.b_O(1)), c["attn_out", 1])
        assert c.stack_head_results(1).shape[0] == a.n_heads


def hand_attention(a, resid_pre, layer, pattern):
    """Attention output of `layer` with probabilities `pattern` (B, H, Q, K), from the value vectors by hand."""
    x = ln_1(a, layer)(resid_pre)
    v = torch.einsum("btm,hmd->bthd", x, a.W_V(layer))
    if a.b_V(layer) is not None:
        v = v + a.b_V(layer)
    v = v.repeat_interleave(a.n_heads // a.n_kv_heads, dim=2)  # query head h reads kv head h // rep
    z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
    out = torch.einsum("bthd,hdm->btm", z, a.W_O(layer))
    return z, out + (0 if a.b_O(layer) is None else a.b_O(layer))


def test_replacing_the_pattern_gives_the_hand_computed_attention(adapter64, ids):
    a, T = adapter64, ids.shape[1]
    first = torch.zeros(2, a.n_heads, T, T, dtype=torch.float64)
    first[..., 0] = 1  # every query attends only to position 0
    uniform = torch.tril(torch.ones(T, T, dtype=torch.float64))
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(2, a.n_heads, T, T)
    with torch.no_grad():
        _, clean = a.run_with_cache(ids)
        z, out = hand_attention(a, clean["resid_pre", 1], 1, clean["pattern", 1])
        assert close(z, clean["z", 1]) and close(out, clean["attn_out", 1])  # the hand computation is right
        for pattern in (first, uniform):
            _, c = a.run_with_cache(ids, fwd_hooks=[("blocks.1.attn.hook_pattern", lambda t, h: pattern)])
            z, out = hand_attention(a, c["resid_pre", 1], 1, pattern)
            assert torch.equal(c["pattern", 1], pattern)
            assert close(c["z", 1], z)
            assert close(c["attn_out", 1], out)
            assert not close(c["attn_out", 1], clean["attn_out", 1], 1e-4)
            assert close(c["resid_pre", 1], clean["resid_pre", 1])  # layer 0 untouched


def test_scores_hook_masks_before_the_softmax(adapter64, ids):
    a = adapter64

    def only_first(t, hook):
        t[..., 1:] = torch.finfo(t.dtype).min

    _, c = a.run_with_cache(ids, names=["pattern"], fwd_hooks=[("blocks.0.attn.hook_attn_scores", only_first)])
    assert torch.equal(c["pattern", 0][..., 0], torch.ones(2, a.n_heads, 12, dtype=torch.float64))
    assert not torch.equal(c["pattern", 1][..., 0], torch.ones(2, a.n_heads, 12, dtype=torch.float64))


def test_patterns_are_causal_distributions(adapter, ids):
    before = adapter.model.config._attn_implementation
    _, c = adapter.run_with_cache(ids, names={"pattern"})
    assert adapter.model.config._attn_implementation == before  # switched only for the call
    for p in c["pattern"]:
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]), atol=ATOL, rtol=0)
        assert (p >= 0).all()
        assert p.triu(diagonal=1).abs().max() == 0


def test_gpt_neo_local_attention_window():
    a = get_adapter(tiny_model("gpt_neo"))  # layer 1 is local with window 8
    _, c = a.run_with_cache(torch.randint(1, 96, (1, 12)), names={"pattern"})
    assert c["pattern"][1][0, :, 11, :4].abs().max() == 0
    assert c["pattern"][0][0, :, 11, :4].min() > 0


def test_hooks_context_serves_generate_with_kv_cache(adapter64):
    """A pattern hook under generate() (queries shorter than keys) equals the same hook on full forwards."""
    a = get_adapter(copy.deepcopy(adapter64.model))
    a.model.generation_config.eos_token_id = None  # generate exactly max_new_tokens
    prompt = torch.randint(1, 96, (1, 5), generator=torch.Generator().manual_seed(7))

    def to_first(t, hook):
        new = torch.zeros_like(t)
        new[..., 0] = 1
        return new

    hooks = [("blocks.1.attn.hook_pattern", to_first)]
    baseline = n_hooks(a.model)
    with torch.no_grad(), a.hooks(hooks):
        generated = a.model.generate(prompt, max_new_tokens=4, do_sample=False, pad_token_id=0)
    seq = prompt
    with torch.no_grad():
        for _ in range(4):
            nxt = a.run_with_hooks(seq, fwd_hooks=hooks)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
        assert not close(a.run_with_hooks(seq, fwd_hooks=hooks), a.model(input_ids=seq).logits, 1e-4)
    assert torch.equal(generated, seq)
    assert n_hooks(a.model) == baseline


# ---- logit lens and decompositions ---------------------------------------------------------------------------------


def test_logit_lens_of_final_residual_is_the_logits(adapter, ids):
    logits, cache = adapter.run_with_cache(ids, names={"resid_pre", "normalized_final"})
    final = cache["resid_pre"][adapter.n_layers]
    torch.testing.assert_close(adapter.logit_lens(final), logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(adapter.final_norm(final), cache["normalized_final"], atol=ATOL, rtol=0)
    torch.testing.assert_close(adapter.unembed(cache["normalized_final"]), logits, atol=ATOL, rtol=0)
    assert not torch.allclose(adapter.logit_lens(cache["resid_pre"][1]), logits, atol=1e-3)


def test_decompose_resid_sums_to_the_residual(adapter64, ids):
    a = adapter64
    with torch.no_grad():
        _, c = a.run_with_cache(ids)
        for layer in range(a.n_layers + 1):
            stack, labels = c.decompose_resid(layer, return_labels=True)
            assert labels[: 1 + a.positional] == (["embed", "pos_embed"] if a.positional else ["embed"])
            assert len(labels) == 1 + a.positional + 2 * layer
            assert close(stack.sum(0), c["resid_pre"][layer])
            if layer > 0:
                assert not close(stack[:-1].sum(0), c["resid_pre"][layer], 1e-3)  # a component missing
            if layer < a.n_layers:
                mid, mid_labels = c.decompose_resid(layer, mlp_input=True, return_labels=True)
                assert mid_labels[-1] == f"{layer}_attn_out"
                assert close(mid.sum(0), c["resid_mid"][layer])
        assert close(c.decompose_resid().sum(0), c["resid_pre"][a.n_layers])
        acc, acc_labels = c.accumulated_resid(return_labels=True)
        assert acc_labels == ["0_pre", "1_pre", "final_post"]
        assert torch.equal(acc[-1], c["resid_pre"][a.n_layers])
        assert c.accumulated_resid(1, incl_mid=True).shape[0] == 3


# ---- padding -------------------------------------------------------------------------------------------------------


def test_padding_attention_mask(adapter):
    torch.manual_seed(2)
    short, long = torch.randint(2, 96, (5,)), torch.randint(2, 96, (10,))
    pad = torch.zeros(5, dtype=torch.long)
    for side in ["left", "right"]:
        padded = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
        real = slice(5, 10) if side == "left" else slice(0, 5)
        mask = torch.ones(2, 10, dtype=torch.long)
        mask[0] = (padded != 0).long()
        names = lambda n: True  # noqa: E731
        logits, c = adapter.run_with_cache(torch.stack([padded, long]), attention_mask=mask, names=names)
        logits_s, c_s = adapter.run_with_cache(short[None], names=names)
        logits_l, c_l = adapter.run_with_cache(long[None], names=names)
        torch.testing.assert_close(logits[0, real], logits_s[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(logits[1], logits_l[0], atol=ATOL, rtol=0)
        for name in adapter.hook_names():
            if "attn.hook_attn_scores" in name:  # masked scores differ (-inf-like constants), patterns agree
                continue
            if "attn.hook_pattern" in name:
                torch.testing.assert_close(c[name][0, :, real, real], c_s[name][0], atol=ATOL, rtol=0)
                assert c[name][0, :, real][..., pad_slice(side)].abs().max() == 0  # nothing attends to padding
            else:
                torch.testing.assert_close(c[name][0, real], c_s[name][0], atol=ATOL, rtol=0, msg=name)
            torch.testing.assert_close(c[name][1], c_l[name][0], atol=ATOL, rtol=0, msg=name)


def pad_slice(side):
    return slice(0, 5) if side == "left" else slice(5, 10)


# ---- cleanup ---------------------------------------------------------------------------------------------------


def test_hooks_removed_after_call_and_after_error(adapter, ids):
    model = adapter.model
    baseline = n_hooks(model)
    before = model.config._attn_implementation
    adapter.run_with_cache(ids, names=lambda n: True)
    assert n_hooks(model) == baseline

    def boom(*args):
        raise RuntimeError("boom")

    for name in ["blocks.1.attn.hook_pattern", "blocks.0.hook_mlp_out", "blocks.1.hook_resid_mid"]:
        with pytest.raises(RuntimeError, match="boom"):
            adapter.run_with_cache(ids, fwd_hooks=[(name, boom)])
        assert n_hooks(model) == baseline, name
        assert model.config._attn_implementation == before, name
        assert not arch._CORE, name
        assert all("_attn" not in m.__dict__ for m in model.modules()), name  # GPT-Neo's patch undone

    bomb = adapter.blocks()[-1].register_forward_hook(boom)  # a raw torch hook that raises
    try:
        with pytest.raises(RuntimeError, match="boom"):
            adapter.run_with_cache(ids)
    finally:
        bomb.remove()
    assert n_hooks(model) == baseline
    assert model.config._attn_implementation == before
    assert not arch._CORE


def test_norm_sites_and_set_norm(adapter, ids):
    sites = adapter.norms()
    assert [s.kind for s in sites] == ["ln_1", "ln_2"] * adapter.n_layers + ["ln_f"]
    assert [s.layer for s in sites] == [0, 0, 1, 1, None]
    assert all(getattr(s.parent, s.attr) is s.module for s in sites)
    with torch.no_grad():
        reference = adapter.model(ids).logits

        for site in sites:
            new = adapter.set_norm(site, nn.Identity())  # identity instead of the norm: output changes
            assert getattr(site.parent, site.attr) is new.module
            assert not torch.allclose(adapter.model(ids).logits, reference, atol=1e-3)
            adapter.set_norm(site, site.module)
            assert torch.equal(adapter.model(ids).logits, reference)

        site = sites[0]
        adapter.set_norm(site, copy.deepcopy(site.module))  # an equal module: output unchanged
        torch.testing.assert_close(adapter.model(ids).logits, reference, atol=ATOL, rtol=0)
        adapter.set_norm(site, site.module)
    assert adapter.norms()[0].module is sites[0].module
