"""Adapter.forward_from / resid_pre: the partial forward from a block's input equals the full forward."""
import pytest
import torch
from torch import nn

from experiments.lm.arch import get_adapter
from tests.unit.lm.test_arch import random_model as perturbed_model

FAMILIES = ["gpt2", "gpt_neo", "llama", "opt"]
N_LAYERS = 3
ATOL = 1e-5


def random_model(family: str) -> nn.Module:
    """test_arch's perturbed tiny model (random biases and norm gains), with N_LAYERS blocks."""
    return perturbed_model(family, n_layers=N_LAYERS)


@pytest.fixture(params=FAMILIES)
def adapter(request):
    return get_adapter(random_model(request.param))


def batch():
    """A left-padded batch of 3 sequences (lengths 12, 9, 5) and its attention mask."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 96, (3, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0
    mask[2, :7] = 0
    return ids, mask


def block_list(adapter):
    return getattr(adapter.base, adapter._blocks_attr())


@pytest.mark.parametrize("layer", range(N_LAYERS + 1))
@pytest.mark.parametrize("masked", [False, True])
def test_forward_from_equals_full_forward(adapter, layer, masked):
    ids, mask = batch()
    mask = mask if masked else None
    with torch.no_grad():
        full = adapter.run_with_hooks(ids, mask)
        _, cache = adapter.run_with_cache(ids, mask, names=["resid_pre"])
        resid = cache["resid_pre"][layer]
        assert torch.equal(adapter.resid_pre(layer, ids, mask), resid)
        out = adapter.forward_from(layer, resid, mask)
    keep = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
    assert out.shape == full.shape
    assert torch.allclose(out[keep], full[keep], atol=ATOL)
    assert (out[keep] - full[keep]).abs().max() < ATOL


def test_forward_from_uses_resid(adapter):
    """Another residual gives other logits (the input is not recomputed from token ids)."""
    ids, mask = batch()
    with torch.no_grad():
        resid = adapter.resid_pre(1, ids, mask)
        full = adapter.forward_from(1, resid, mask)
        other = adapter.forward_from(1, resid + 0.5 * torch.randn_like(resid), mask)
    assert not torch.allclose(full, other, atol=1e-3)


@pytest.mark.parametrize("layer", range(N_LAYERS))
def test_value_vector_edit(adapter, layer):
    """Editing W_out(layer)[n] after caching resid_pre(layer): forward_from = full forward of the edited model."""
    ids, mask = batch()
    with torch.no_grad():
        before, cache = adapter.run_with_cache(ids, mask, names=[f"blocks.{layer}.mlp.hook_post"])
        n = int(cache["mlp_post", layer].abs().sum((0, 1)).argmax())  # an active neuron (OPT: ReLU)
        resid = adapter.resid_pre(layer, ids, mask)
        adapter.W_out(layer)[n] += 3.0 * torch.randn(adapter.d_model, generator=torch.Generator().manual_seed(2))
        edited = adapter.run_with_hooks(ids, mask)
        out = adapter.forward_from(layer, resid, mask)
    keep = mask.bool()
    assert (edited[keep] - before[keep]).abs().max() > 1e-3  # the edit matters
    assert (out[keep] - edited[keep]).abs().max() < ATOL


def test_block_list_restored(adapter):
    ids, mask = batch()
    full = block_list(adapter)
    blocks = list(full)
    resid = adapter.resid_pre(2, ids, mask)
    adapter.forward_from(2, resid, mask)
    assert block_list(adapter) is full and list(full) == blocks
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in adapter.model.modules())

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    handle_target = blocks[-1]
    original = handle_target.forward
    handle_target.forward = boom
    try:
        with pytest.raises(RuntimeError, match="boom"):
            adapter.forward_from(1, adapter.resid_pre(1, ids, mask), mask)
    finally:
        del handle_target.forward
    assert handle_target.forward == original
    assert block_list(adapter) is full and list(full) == blocks
    assert not any(m._forward_pre_hooks or m._forward_hooks for m in adapter.model.modules())
    assert adapter.n_layers == N_LAYERS


@pytest.mark.parametrize("layer", [-1, N_LAYERS + 1, 1.0, True])
def test_layer_out_of_range(adapter, layer):
    resid = torch.zeros(1, 4, adapter.d_model)
    with pytest.raises(ValueError, match="layer"):
        adapter.forward_from(layer, resid)
    with pytest.raises(ValueError, match="layer"):
        adapter.resid_pre(layer, torch.ones(1, 4, dtype=torch.long))


def test_refused_inside_hooks(adapter):
    ids, mask = batch()
    resid = adapter.resid_pre(1, ids, mask)
    with adapter.hooks([("blocks.2.hook_mlp_out", lambda t, hook: None)]):
        with pytest.raises(ValueError, match="hooks"):
            adapter.forward_from(1, resid, mask)
    assert block_list(adapter) is not None and adapter.n_layers == N_LAYERS
    adapter.forward_from(1, resid, mask)  # fine again once the hooks are gone


@pytest.mark.parametrize("layer", [0, N_LAYERS - 1, N_LAYERS])
def test_last_only_logits_are_the_last_position(adapter, layer):
    """last_only: (B, 1, vocab), the full logits' last column; resid_pre (which asks for last_only) is unchanged."""
    ids, mask = batch()
    with torch.no_grad():
        full = adapter.run_with_hooks(ids, mask)
        last = adapter.run_with_hooks(ids, mask, last_only=True)
        logits, cache = adapter.run_with_cache(ids, mask, names=["resid_pre"], last_only=True)
        resid = adapter.resid_pre(layer, ids, mask)
        part = adapter.forward_from(layer, resid, mask, last_only=True)
    assert last.shape == logits.shape == part.shape == (ids.shape[0], 1, full.shape[-1])
    assert (last - full[:, -1:]).abs().max() < ATOL
    assert (part - full[:, -1:]).abs().max() < ATOL
    assert torch.equal(logits, last)
    if layer < N_LAYERS:
        assert torch.equal(resid, cache["resid_pre"][layer])


def test_last_only_without_logits_to_keep_slices(adapter, monkeypatch):
    """A model without transformers' logits_to_keep argument still gets (B, 1, vocab) (sliced)."""
    ids, mask = batch()
    monkeypatch.setattr(type(adapter), "last_logits_kwargs", lambda self, seq_len=1: {})
    with torch.no_grad():
        full = adapter.run_with_hooks(ids, mask)
        last = adapter.run_with_hooks(ids, mask, last_only=True)
    assert torch.equal(last, full[:, -1:])


def test_last_position_goes_as_an_index_for_a_multi_token_forward(adapter):
    """seq_len > 1: an index tensor (one (B, d) x (d, V) unembedding, not the batched matmul of a sliced view);
    a one-token forward keeps transformers' int; the logits equal the full forward's last position."""
    kw = adapter.last_logits_kwargs(7)
    assert torch.equal(kw["logits_to_keep"], torch.tensor([6]))
    assert adapter.last_logits_kwargs(1) == {"logits_to_keep": 1}
    ids, mask = batch()
    with torch.no_grad():
        full = adapter.run_with_hooks(ids, mask)
        last = adapter.run_with_hooks(ids, mask, last_only=True)
    assert last.shape == (ids.shape[0], 1, full.shape[-1])
    torch.testing.assert_close(last, full[:, -1:], rtol=0, atol=1e-5)
