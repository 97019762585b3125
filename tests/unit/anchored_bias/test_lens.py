"""The logit lens at the answer position, checked against the models' own modules on random tiny GPT-2 / Llama."""
import numpy as np
import pytest
import torch

from experiments.anchored_bias import lens, prompts
from experiments.anchored_bias.items import LETTERS, build
from experiments.lm.arch import get_adapter, tiny_model
from tests.unit.anchored_bias.test_items import config, world_tokenizer

FAMILIES = ["gpt2", "llama"]
ATOL = 1e-4


def random_model(family: str, vocab_size: int, initializer_range: float = 0.02):
    """tiny_model with random biases and norm gains (1 and 0 at init would hide a missing gamma or beta)."""
    model = tiny_model(family, vocab_size=vocab_size, n_ctx=64, initializer_range=initializer_range)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or p.ndim == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model.requires_grad_(False)


def final_norm_module(model):
    return model.transformer.ln_f if model.config.model_type == "gpt2" else model.model.norm


def unembed_matrix(model):
    """(vocab, d_model) straight from the model: lm_head (GPT-2: tied to wte)."""
    return model.lm_head.weight.detach()


@pytest.fixture(scope="module")
def tok():
    return world_tokenizer()


@pytest.fixture(scope="module")
def items():
    return build(config())["eval"].iloc[:16].reset_index(drop=True)


@pytest.fixture(scope="module")
def enc(tok, items):
    return prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")


def _unpadded(enc, i):
    return enc.input_ids[i][enc.attention_mask[i].bool()][None]


@pytest.mark.parametrize("family", FAMILIES)
def test_lens_of_the_last_layer_equals_the_logits(family, tok, enc):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    last = f"blocks.{ad.n_layers - 1}.hook_resid_post"
    logits, cache = ad.run_with_cache(enc.input_ids, enc.attention_mask, names=[last])
    got = lens.letter_lens(ad, cache[last][:, -1], enc.letter_ids)
    want = logits[:, -1, enc.letter_ids].float()
    assert got.shape == (len(enc.input_ids), 5)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    # and the same through the model's own forward, without the adapter
    direct = model(input_ids=_unpadded(enc, 0)).logits[0, -1, enc.letter_ids]
    torch.testing.assert_close(got[0], direct, atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_lens_is_scale_invariant(family, tok):
    ad = get_adapter(random_model(family, len(tok)))
    x = torch.randn(3, ad.d_model, generator=torch.Generator().manual_seed(0))
    ids = prompts.answer_token_ids(tok, "plain")
    torch.testing.assert_close(lens.letter_lens(ad, 7.0 * x, ids), lens.letter_lens(ad, x, ids), atol=1e-3, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_lens_direction_is_gamma_times_unembedding_centred_over_the_vocabulary(family, tok):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    ids = prompts.answer_token_ids(tok, "plain")
    gamma = final_norm_module(model).weight.detach()
    assert not torch.allclose(gamma, torch.ones_like(gamma))  # the fold is visible
    folded = unembed_matrix(model) * gamma[None, :]  # (vocab, d): row t = gamma * W_U[:, t]
    want = folded[ids] - folded.mean(0, keepdim=True)
    got = lens.lens_direction(ad, ids)
    assert got.shape == (5, ad.d_model)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    all_ids = list(range(len(tok)))
    assert lens.lens_direction(ad, all_ids).sum(0).abs().max() < 1e-4  # centred: the vocabulary sums to 0


def _direct_lens(model, x, ids):
    """W_U[:, t] . final_norm(x) (+ b_U) with the model's own modules."""
    out = model.lm_head(final_norm_module(model)(x))
    return out[..., ids]


@pytest.mark.parametrize("family", FAMILIES)
def test_answer_activations_and_layer_scan_match_single_forwards(family, tok, items, enc):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    acts = lens.answer_activations(ad, enc, 6)  # 3 batches, each trimmed to its own width
    n, L, H = len(items), ad.n_layers, ad.n_heads
    assert acts.mlp_out.shape == (n, L, ad.d_model) and acts.post.shape == (n, L, ad.d_mlp)
    assert acts.head_lens.shape == (n, L, H, 5) and acts.letter_attn.shape == (n, L, H, 5)
    gold = items["gold"].to_numpy()
    scan = lens.layer_scan(ad, acts, gold, enc.letter_ids)
    heads = lens.head_scores(acts, gold)
    assert scan.shape == (n, L) and heads.shape == (n, L, H)
    for i in (0, 5, 13):
        ids = _unpadded(enc, i)
        off = enc.input_ids.shape[1] - ids.shape[1]
        _, cache = ad.run_with_cache(ids, names=["mlp_out", "post", "result", "pattern"])
        g = LETTERS.index(gold[i])
        k = int(items.loc[i, "n_options"])
        for l in range(L):
            m = cache[f"blocks.{l}.hook_mlp_out"][0, -1]
            torch.testing.assert_close(acts.mlp_out[i, l], m, atol=ATOL, rtol=0)
            torch.testing.assert_close(acts.post[i, l], cache[f"blocks.{l}.mlp.hook_post"][0, -1], atol=ATOL, rtol=0)
            lm = _direct_lens(model, m, enc.letter_ids)
            assert scan[i, l].item() == pytest.approx((lm[0] - lm[g]).item(), abs=ATOL)
            res = cache[f"blocks.{l}.attn.hook_result"][0, -1]  # (H, d)
            hl = _direct_lens(model, res, enc.letter_ids)
            torch.testing.assert_close(acts.head_lens[i, l], hl, atol=ATOL, rtol=0)
            torch.testing.assert_close(heads[i, l], hl[:, 0] - hl[:, g], atol=ATOL, rtol=0)
            pat = cache[f"blocks.{l}.attn.hook_pattern"][0, :, -1]  # (H, K)
            for j in range(5):
                if j < k:
                    want = pat[:, int(enc.letter_pos[i, j]) - off]
                    torch.testing.assert_close(acts.letter_attn[i, l, :, j], want, atol=1e-5, rtol=0)
                else:
                    assert (acts.letter_attn[i, l, :, j] == 0).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_paper_candidates_find_a_planted_value_vector(family, tok, items, enc):
    # initializer_range 0.3: letter logits of a few units, the scale the paper's tau = 4 is meant for
    model = random_model(family, len(tok), initializer_range=0.3)
    ad = get_adapter(model)
    gold = items["gold"].to_numpy()
    l, tau = 1, 4.0
    acts = lens.answer_activations(ad, enc, 16)
    n = int(acts.post[:, l].min(0).values.argmax())  # the neuron most consistently active at the answer
    ids, gaps, passes = lens.paper_candidates(ad, acts, gold, enc.letter_ids, 10, tau)
    assert ids.shape == gaps.shape == passes.shape == (len(items), ad.n_layers, 10)
    before = int(passes[:, l][ids[:, l] == n].sum())  # a random model: it may pass on a few items by chance

    u = lens.lens_direction(ad, enc.letter_ids)
    with torch.no_grad():
        ad.W_out(l)[n] = 100.0 * u[0]
    acts = lens.answer_activations(ad, enc, 16)  # the layer's own activations do not depend on its W_out
    ids, gaps, passes = lens.paper_candidates(ad, acts, gold, enc.letter_ids, 10, tau)
    k = acts.post[:, l, n]
    target = (k > 0.2 * k.max()) & torch.from_numpy(gold != "A")  # clearly active (a tiny k need not be top-10)
    assert target.sum() >= 3
    hit = ids[:, l] == n  # (items, 10)
    assert hit[target].any(1).all()  # among the top-10 ...
    assert passes[:, l][hit & target[:, None]].all()  # ... and past the gap filter
    assert int(passes[:, l][hit].sum()) > before  # the plant makes it a candidate on more items
    # ranking and gap by hand: top-10 by |k| * ||v|| (centred for LayerNorm), gap of lens(k v + b_out)
    W = ad.W_out(l).detach()
    v = W - W.mean(1, keepdim=True) if family == "gpt2" else W
    contrib = acts.post[:, l].abs() * v.norm(dim=1)[None]
    assert torch.equal(ids[:, l].sort(1).values, contrib.topk(10, dim=1).indices.sort(1).values)
    i = int(torch.nonzero(target)[0])
    r = int(torch.nonzero(hit[i])[0])
    b = ad.b_out(l)
    vec = k[i] * W[n] + (b.detach() if b is not None else 0.0)
    lm = _direct_lens(model, vec, enc.letter_ids)
    assert gaps[i, l, r].item() == pytest.approx((lm[0] - lm[LETTERS.index(gold[i])]).item(), abs=ATOL)


@pytest.mark.parametrize("family", FAMILIES)
def test_projection_scores_by_hand(family, tok, items, enc):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    gold = items["gold"].to_numpy()
    acts = lens.answer_activations(ad, enc, 16)
    s = lens.projection_scores(ad, acts, gold, enc.letter_ids)
    assert s.shape == (len(items), ad.n_layers, ad.d_mlp)
    u = lens.lens_direction(ad, enc.letter_ids)
    final = f"blocks.{ad.n_layers - 1}.hook_resid_post"
    norm = ad.norms()[-1].module
    eps = getattr(norm, "eps", None) or getattr(norm, "variance_epsilon")
    for i, l, n in [(0, 0, 0), (3, 1, 7), (15, 1, ad.d_mlp - 1)]:
        g = LETTERS.index(gold[i])
        ids = enc.input_ids[i:i + 1][:, enc.attention_mask[i].bool()]
        x = ad.run_with_cache(ids, names=[final])[1][final][0, -1].float()  # unpadded, by hand
        v = ad.W_out(l)[n].detach().float()
        if family == "gpt2":  # LayerNorm: the mean of a component is removed, and x is divided by its std
            v, scale = v - v.mean(), torch.sqrt(x.var(unbiased=False) + eps)
        else:  # RMSNorm: divided by the root mean square
            scale = torch.sqrt(x.pow(2).mean() + eps)
        want = acts.post[i, l, n] * torch.dot(v, u[0] - u[g]) / scale
        assert s[i, l, n].item() == pytest.approx(want.item(), abs=1e-5)
    a_items = np.flatnonzero(gold == "A")
    assert len(a_items) and (s[a_items] == 0).all()  # gold = A: u_A - u_gold = 0
