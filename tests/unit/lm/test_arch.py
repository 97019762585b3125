"""Adapters on tiny random-init GPT-2, GPT-Neo and Llama models."""
import copy

import pytest
import torch
from torch import nn

from experiments.lm.arch import CACHE_NAMES, GPT2Adapter, GPTNeoAdapter, LlamaAdapter, get_adapter, tiny_model

FAMILIES = ["gpt2", "gpt_neo", "llama"]
ATOL = 1e-5


@pytest.fixture(scope="module", params=FAMILIES)
def adapter(request):
    return get_adapter(tiny_model(request.param, initializer_range=0.1, seed=0))


@pytest.fixture(scope="module")
def ids():
    torch.manual_seed(1)
    return torch.randint(1, 96, (2, 12))  # longer than GPT-Neo's local window (8)


def n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_get_adapter_picks_family():
    assert type(get_adapter(tiny_model("gpt2"))) is GPT2Adapter
    assert type(get_adapter(tiny_model("gpt_neo"))) is GPTNeoAdapter
    assert type(get_adapter(tiny_model("llama"))) is LlamaAdapter
    with pytest.raises(ValueError, match="Linear"):
        get_adapter(nn.Linear(2, 2))


def test_dimensions(adapter, ids):
    a = adapter
    assert (a.n_layers, a.d_model, a.n_heads, a.vocab_size) == (2, 32, 4, 96)
    assert a.d_mlp == (64 if a.family == "llama" else 128)
    assert a.value_vectors(1).shape == (a.d_mlp, a.d_model)
    assert len(a.blocks()) == a.n_layers


def test_cache_shapes(adapter, ids):
    logits, cache = adapter.run_with_cache(ids)
    assert set(cache) == CACHE_NAMES
    assert logits.shape == (2, 12, 96)
    assert len(cache["resid_pre"]) == adapter.n_layers + 1
    for name in ["resid_pre", "resid_mid", "attn_out", "mlp_out"]:
        assert cache[name][0].shape == (2, 12, 32)
    assert cache["mlp_post"][1].shape == (2, 12, adapter.d_mlp)
    assert cache["pattern"][1].shape == (2, 4, 12, 12)
    assert cache["normalized_final"].shape == (2, 12, 32)


def test_names_subset_and_unknown(adapter, ids):
    _, cache = adapter.run_with_cache(ids, names={"mlp_out"})
    assert set(cache) == {"mlp_out"}
    with pytest.raises(ValueError, match="unknown"):
        adapter.run_with_cache(ids, names={"resid_post_typo"})


def test_logit_lens_of_final_residual_is_the_logits(adapter, ids):
    logits, cache = adapter.run_with_cache(ids, names={"resid_pre", "normalized_final"})
    final = cache["resid_pre"][adapter.n_layers]
    torch.testing.assert_close(adapter.logit_lens(final), logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(adapter.final_norm(final), cache["normalized_final"], atol=ATOL, rtol=0)
    torch.testing.assert_close(adapter.unembed(cache["normalized_final"]), logits, atol=ATOL, rtol=0)


def test_residual_stream_decomposes(adapter, ids):
    _, c = adapter.run_with_cache(ids)
    for l in range(adapter.n_layers):
        torch.testing.assert_close(c["resid_mid"][l], c["resid_pre"][l] + c["attn_out"][l], atol=ATOL, rtol=0)
        torch.testing.assert_close(
            c["resid_pre"][l + 1], c["resid_pre"][l] + c["attn_out"][l] + c["mlp_out"][l], atol=ATOL, rtol=0
        )


def test_embed_is_first_residual(adapter, ids):
    _, c = adapter.run_with_cache(ids, names={"resid_pre"})
    torch.testing.assert_close(adapter.embed(ids), c["resid_pre"][0], atol=ATOL, rtol=0)


def test_mlp_out_from_value_vectors(adapter, ids):
    _, c = adapter.run_with_cache(ids, names={"mlp_post", "mlp_out"})
    for l in range(adapter.n_layers):
        bias = adapter.mlp_out_bias(l)
        if adapter.family == "llama":
            assert bias is None
        expected = c["mlp_post"][l] @ adapter.value_vectors(l) + (0 if bias is None else bias)
        torch.testing.assert_close(c["mlp_out"][l], expected, atol=ATOL, rtol=0)


def test_llama_mlp_post_is_swiglu_hidden():
    a = get_adapter(tiny_model("llama", initializer_range=0.1))
    x = torch.randint(1, 96, (1, 7))
    _, c = a.run_with_cache(x, names={"resid_mid", "mlp_post"})
    block = a.blocks()[0]
    h = block.post_attention_layernorm(c["resid_mid"][0])
    expected = nn.functional.silu(block.mlp.gate_proj(h)) * block.mlp.up_proj(h)
    torch.testing.assert_close(c["mlp_post"][0], expected, atol=ATOL, rtol=0)


def test_patterns_are_causal_distributions(adapter, ids):
    before = adapter.model.config._attn_implementation
    _, c = adapter.run_with_cache(ids, names={"pattern"})
    assert adapter.model.config._attn_implementation == before  # eager only for the call
    for p in c["pattern"]:
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]), atol=ATOL, rtol=0)
        assert (p >= 0).all()
        assert p.triu(diagonal=1).abs().max() == 0


def test_gpt_neo_local_attention_window():
    a = get_adapter(tiny_model("gpt_neo"))  # layer 1 is local with window 8
    _, c = a.run_with_cache(torch.randint(1, 96, (1, 12)), names={"pattern"})
    assert c["pattern"][1][0, :, 11, :4].abs().max() == 0
    assert c["pattern"][0][0, :, 11, :4].min() > 0


def test_transformer_lens_names(adapter, ids):
    _, c = adapter.run_with_cache(ids)
    assert c["blocks.1.hook_resid_pre"] is c["resid_pre"][1]
    assert c["blocks.0.hook_resid_post"] is c["resid_pre"][1]
    assert c["blocks.1.attn.hook_pattern"] is c["pattern"][1]
    assert c["blocks.0.mlp.hook_post"] is c["mlp_post"][0]
    assert c["ln_final.hook_normalized"] is c["normalized_final"]
    with pytest.raises(KeyError):
        c["blocks.0.hook_nothing"]


def test_hooks_removed_after_call_and_after_error(adapter, ids):
    model = adapter.model
    baseline = n_hooks(model)
    before = model.config._attn_implementation
    adapter.run_with_cache(ids)
    assert n_hooks(model) == baseline

    def boom(module, args, output):
        raise RuntimeError("boom")

    bomb = adapter.blocks()[-1].register_forward_hook(boom)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            adapter.run_with_cache(ids)
    finally:
        bomb.remove()
    assert n_hooks(model) == baseline
    assert model.config._attn_implementation == before


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


def test_padding_attention_mask(adapter):
    torch.manual_seed(2)
    short, long = torch.randint(1, 96, (5,)), torch.randint(1, 96, (10,))
    pad = torch.zeros(5, dtype=torch.long)
    for side in ["left", "right"]:
        padded = torch.cat([pad, short]) if side == "left" else torch.cat([short, pad])
        real = slice(5, 10) if side == "left" else slice(0, 5)
        mask = torch.ones(2, 10, dtype=torch.long)
        mask[0] = (padded != 0).long()
        logits, c = adapter.run_with_cache(torch.stack([padded, long]), attention_mask=mask)
        logits_s, c_s = adapter.run_with_cache(short[None])
        logits_l, c_l = adapter.run_with_cache(long[None])
        torch.testing.assert_close(logits[0, real], logits_s[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(logits[1], logits_l[0], atol=ATOL, rtol=0)
        for l in range(adapter.n_layers):
            torch.testing.assert_close(c["mlp_post"][l][0, real], c_s["mlp_post"][l][0], atol=ATOL, rtol=0)
            torch.testing.assert_close(c["pattern"][l][0, :, real, real], c_s["pattern"][l][0], atol=ATOL, rtol=0)
            torch.testing.assert_close(c["resid_pre"][l + 1][1], c_l["resid_pre"][l + 1][0], atol=ATOL, rtol=0)
