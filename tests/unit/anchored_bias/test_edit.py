"""Edits of value vectors (exactly the intended rows, undone bit for bit), attention edits, and the plant CLI."""
import pandas as pd
import pytest
import torch

from experiments.anchored_bias import edit, lens, plant, prompts
from experiments.anchored_bias.items import LETTERS, build
from experiments.lm.arch import get_adapter, tiny_model
from tests.unit.anchored_bias.test_items import config, world_tokenizer
from tests.unit.anchored_bias.test_lens import random_model

FAMILIES = ["gpt2", "llama"]


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def w_out_key(model, l: int) -> str:
    """The parameter that holds W_out(l) and how a neuron's row sits in it."""
    if model.config.model_type == "gpt2":
        return f"transformer.h.{l}.mlp.c_proj.weight"  # Conv1D (d_mlp, d_model): row n
    return f"model.layers.{l}.mlp.down_proj.weight"  # Linear (d_model, d_mlp): column n


def neuron_slice(model, l: int, n: int):
    return (n, slice(None)) if model.config.model_type == "gpt2" else (slice(None), n)


def changed(before, model) -> dict[str, torch.Tensor]:
    """{key: boolean mask of the entries that differ} for the tensors that are not bit-identical."""
    after = model.state_dict()
    return {k: before[k] != after[k] for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def tok():
    return world_tokenizer()


@pytest.mark.parametrize("family", FAMILIES)
def test_row_edit_changes_exactly_the_intended_row(family, tok):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    before = snapshot(model)
    delta = lens.lens_direction(ad, prompts.answer_token_ids(tok, "plain"))[0] * 3.0
    e = edit.RowEdits(ad, [(1, 5, delta)]).apply()
    diff = changed(before, model)
    key = w_out_key(model, 1)
    assert list(diff) == [key]
    expected = torch.zeros_like(before[key], dtype=torch.bool)
    expected[neuron_slice(model, 1, 5)] = True
    assert torch.equal(diff[key], expected)  # every entry of that row, nothing else (delta has no zero)
    sl = neuron_slice(model, 1, 5)
    assert torch.equal(model.state_dict()[key][sl], before[key][sl] + delta)
    assert torch.equal(ad.W_out(1)[5], before[key][sl] + delta)
    e.undo()
    assert not changed(before, model)


@pytest.mark.parametrize("family", FAMILIES)
def test_plant_then_exact_inverse_restores_bit_for_bit(family, tok):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    ids = prompts.answer_token_ids(tok, "plain")
    before = snapshot(model)
    edits = [(0, 3, edit.anchor_delta(ad, ids, 2.5)), (1, 3, edit.paper_delta(ad, ids, 2, 1.0, 8.0)),
             (1, 3, edit.anchor_delta(ad, ids, -0.3)), (1, ad.d_mlp - 1, edit.anchor_delta(ad, ids, 1e-3))]
    e = edit.RowEdits(ad, edits).apply()
    assert set(changed(before, model)) == {w_out_key(model, 0), w_out_key(model, 1)}
    with pytest.raises(RuntimeError, match="already applied"):
        e.apply()
    e.undo()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    e.undo()  # a second undo is a no-op
    assert not changed(before, model)


def test_edited_restores_after_an_exception(tok):
    model = random_model("gpt2", len(tok))
    ad = get_adapter(model)
    before = snapshot(model)
    delta = edit.anchor_delta(ad, prompts.answer_token_ids(tok, "plain"), 4.0)
    with pytest.raises(KeyError):
        with edit.edited(ad, [(1, 2, delta)]):
            assert list(changed(before, model)) == [w_out_key(model, 1)]
            raise KeyError("boom")
    assert not changed(before, model)
    with edit.edited(ad, [(0, 2, delta)]):
        pass
    assert not changed(before, model)


def test_a_failing_apply_leaves_the_model_unchanged(tok):
    model = random_model("gpt2", len(tok))
    ad = get_adapter(model)
    before = snapshot(model)
    delta = edit.anchor_delta(ad, prompts.answer_token_ids(tok, "plain"), 4.0)
    with pytest.raises(IndexError):
        with edit.edited(ad, [(1, 2, delta), (1, ad.d_mlp + 10, delta)]):  # the second neuron does not exist
            pass
    assert not changed(before, model)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("beta", [2.0, 5.0])
def test_label_free_edit_at_beta_undoes_a_plant_of_beta(family, beta, tok):
    model = random_model(family, len(tok))
    ad = get_adapter(model)
    ids = prompts.answer_token_ids(tok, "plain")
    before = snapshot(model)
    edit.RowEdits(ad, [(1, 7, edit.anchor_delta(ad, ids, beta))]).apply()  # the plant, kept
    key, sl = w_out_key(model, 1), neuron_slice(model, 1, 7)
    assert (model.state_dict()[key][sl] - before[key][sl]).abs().max() > 0.01  # the plant is far above 1e-6
    edit.RowEdits(ad, [(1, 7, edit.anchor_delta(ad, ids, -beta))]).apply()  # label-free, lambda1 = beta
    after = model.state_dict()
    for k in before:
        torch.testing.assert_close(after[k], before[k], atol=1e-6, rtol=0)  # equal up to rounding


def test_deltas_by_hand(tok):
    ad = get_adapter(random_model("llama", len(tok)))
    ids = prompts.answer_token_ids(tok, "plain")
    u = lens.lens_direction(ad, ids)
    torch.testing.assert_close(edit.paper_delta(ad, ids, 3, 1.0, 8.0), -u[0] + 8.0 * u[3])
    torch.testing.assert_close(edit.paper_delta(ad, ids, 0, 1.0, 8.0), 7.0 * u[0])
    torch.testing.assert_close(edit.anchor_delta(ad, ids, -2.0), -2.0 * u[0])


# ---- attention at the last query ------------------------------------------------------------------------------

def _pattern(b=2, H=3, Q=4, K=7, seed=0):
    s = torch.randn(b, H, Q, K, generator=torch.Generator().manual_seed(seed))
    return s.softmax(-1)


LETTER_POS = torch.tensor([[1, 3, 5, -1, -1], [2, 4, -1, -1, -1]])  # row 0: 3 options, row 1: 2 options
GOLD = torch.tensor([2, 1])  # C, B


def _only_hook(hooks, name):
    assert [n for n, _ in hooks] == [name]
    return hooks[0][1]


def test_swap_exchanges_the_two_weights_of_the_chosen_head_at_the_last_query():
    p = _pattern()
    orig = p.clone()
    fn = _only_hook(edit.attention_hooks([(3, 1)], [LETTER_POS], GOLD, "swap"), "blocks.3.attn.hook_pattern")
    out = fn(p, "blocks.3.attn.hook_pattern")
    assert torch.equal(p, orig)  # the input is not modified
    want = orig.clone()
    want[0, 1, -1, 1], want[0, 1, -1, 5] = orig[0, 1, -1, 5], orig[0, 1, -1, 1]  # A at 1 <-> gold C at 5
    want[1, 1, -1, 2], want[1, 1, -1, 4] = orig[1, 1, -1, 4], orig[1, 1, -1, 2]  # A at 2 <-> gold B at 4
    assert torch.equal(out, want)  # other heads, other queries, other keys untouched
    torch.testing.assert_close(out.sum(-1), orig.sum(-1))


def test_swap_with_gold_a_changes_nothing_and_hooks_group_heads_by_layer():
    p = _pattern()
    hooks = edit.attention_hooks([(0, 1), (2, 0), (2, 2)], [LETTER_POS], torch.tensor([0, 0]), "swap")
    assert [n for n, _ in hooks] == ["blocks.0.attn.hook_pattern", "blocks.2.attn.hook_pattern"]
    for name, fn in hooks:
        assert torch.equal(fn(p, name), p)
    fn = edit.attention_hooks([(2, 0), (2, 2)], [LETTER_POS], GOLD, "swap")[0][1]
    out = fn(p, "blocks.2.attn.hook_pattern")
    assert torch.equal(out[:, 1], p[:, 1])  # head 1 is not listed
    assert not torch.equal(out[:, 0], p[:, 0]) and not torch.equal(out[:, 2], p[:, 2])


def test_equalise_sets_present_options_to_their_mean():
    p = _pattern(seed=1)
    fn = _only_hook(edit.attention_hooks([(0, 2)], [LETTER_POS], None, "equalise"), "blocks.0.attn.hook_pattern")
    out = fn(p, "blocks.0.attn.hook_pattern")
    want = p.clone()
    m0 = (p[0, 2, -1, 1] + p[0, 2, -1, 3] + p[0, 2, -1, 5]) / 3
    want[0, 2, -1, [1, 3, 5]] = m0
    m1 = (p[1, 2, -1, 2] + p[1, 2, -1, 4]) / 2
    want[1, 2, -1, [2, 4]] = m1
    torch.testing.assert_close(out, want, atol=1e-7, rtol=0)
    assert torch.equal(out[:, :2], p[:, :2]) and torch.equal(out[:, :, :-1], p[:, :, :-1])
    torch.testing.assert_close(out.sum(-1), p.sum(-1))


def test_two_position_sets_are_edited_each_on_its_own():
    p = _pattern(K=9, seed=2)
    ends = torch.tensor([[2, 4, 8, -1, -1], [3, 6, -1, -1, -1]])  # e.g. the last token of each option
    out = edit.attention_hooks([(0, 0)], [LETTER_POS, ends], GOLD, "swap")[0][1](p, "blocks.0.attn.hook_pattern")
    want = p.clone()
    for pos in (LETTER_POS, ends):
        for r in range(2):
            a, g = int(pos[r, 0]), int(pos[r, GOLD[r]])
            want[r, 0, -1, a], want[r, 0, -1, g] = p[r, 0, -1, g], p[r, 0, -1, a]
    assert torch.equal(out, want)


def test_unknown_attention_edit_raises():
    with pytest.raises(ValueError, match="unknown attention edit"):
        edit.attention_hooks([(0, 0)], [LETTER_POS], GOLD, "zero")


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_hooks_in_a_forward_change_only_the_last_position(family, tok):
    model = random_model(family, len(tok), initializer_range=0.3)
    ad = get_adapter(model)
    items = build(config())["eval"].iloc[:10].reset_index(drop=True)
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    (rows, ids, mask, cut), = list(prompts.batches(enc, 10))
    pos = enc.letter_pos - cut
    gold = torch.tensor([LETTERS.index(g) for g in items["gold"]])
    is_a = gold == 0
    assert is_a.any() and (~is_a).any()
    base, cache = ad.run_with_cache(ids, mask, names=["pattern"])
    heads = [(0, 1), (1, 2)]

    def run(hooks):
        return ad.run_with_cache(ids, mask, names=["pattern"], fwd_hooks=hooks)

    same, _ = run(edit.attention_hooks(heads, [pos], torch.zeros_like(gold), "swap"))
    torch.testing.assert_close(same, base, atol=1e-5, rtol=0)  # swapping A with A: no edit, no change
    for mode in ("swap", "equalise"):
        out, hooked = run(edit.attention_hooks(heads, [pos], gold, mode))
        real = mask[:, :-1].bool()  # (padding queries see no real key and may attend anywhere)
        torch.testing.assert_close(out[:, :-1][real], base[:, :-1][real], atol=1e-5, rtol=0)  # earlier tokens untouched
        moved = (out[:, -1] - base[:, -1]).abs().amax(-1)
        if mode == "swap":
            assert (moved[~is_a] > 1e-3).all() and (moved[is_a] < 1e-5).all()
        else:
            assert (moved > 1e-3).all()
        for l, h in heads:  # the cache holds the edited pattern, rows still sum to 1
            name = f"blocks.{l}.attn.hook_pattern"
            assert not torch.allclose(hooked[name][:, h, -1], cache[name][:, h, -1])
            torch.testing.assert_close(hooked[name].sum(-1), cache[name].sum(-1), atol=1e-5, rtol=0)
        first = (hooked["blocks.0.attn.hook_pattern"] - cache["blocks.0.attn.hook_pattern"]).abs() > 1e-6
        assert first[:, 1, -1].any() and not first[:, [0, 2, 3]].any() and not first[:, :, :-1].any()


# ---- the weight-planted variant (CLI) ----------------------------------------------------------------------------

@pytest.mark.parametrize("layer, neuron, strength", [(1, "auto", 3.0), (0, "5", -2.0)])
def test_plant_cli_changes_only_the_planted_row(tmp_path, tok, layer, neuron, strength):
    from experiments.lm.load import load_model

    model = tiny_model("gpt2", vocab_size=len(tok), n_ctx=64, seed=1)
    clean = tmp_path / "clean"
    model.save_pretrained(clean)
    tok.save_pretrained(clean)
    items = build(config())["locate"].iloc[:20]
    items.to_csv(tmp_path / "locate.csv", index=False)
    plant.main(["--clean", str(clean), "--locate", str(tmp_path / "locate.csv"), "--layer", str(layer), "--neuron",
                neuron, "--strength", str(strength), "--batch-size", "8", "--out", str(tmp_path / "planted"),
                "--truth", str(tmp_path / "truth.csv"), "--threads", "1", "--device", "cpu"])
    truth = pd.read_csv(tmp_path / "truth.csv")
    assert len(truth) == 1 and truth.loc[0, "layer"] == layer and truth.loc[0, "strength"] == strength
    ad = get_adapter(model)
    with torch.no_grad():  # auto: the largest 10th-percentile activation at the answer, from unpadded forwards
        post = []
        for p in items["prompt"]:
            ids = torch.tensor([[tok.bos_token_id] + tok.encode(p, add_special_tokens=False)])
            post.append(ad.run_with_cache(ids, names=[f"blocks.{layer}.mlp.hook_post"])[1][
                f"blocks.{layer}.mlp.hook_post"][0, -1])
        post = torch.stack(post)
        mean, low = post.mean(0), torch.quantile(post, 0.1, dim=0)
    n = int(low.argmax()) if neuron == "auto" else int(neuron)
    assert truth.loc[0, "neuron"] == n
    assert truth.loc[0, "mean_activation"] == pytest.approx(float(mean[n]), abs=1e-5)
    assert truth.loc[0, "activation_rank"] == int((mean > mean[n]).sum()) + 1
    planted, _ = load_model(f"dir:{tmp_path / 'planted'}")
    diff = changed(snapshot(model), planted)
    key = w_out_key(model, layer)
    assert list(diff) == [key] and diff[key].any(1).nonzero().flatten().tolist() == [n]
    u = lens.lens_direction(ad, prompts.answer_token_ids(tok, "plain"))[0]
    torch.testing.assert_close(planted.state_dict()[key][n] - model.state_dict()[key][n], strength * u,
                               atol=1e-6, rtol=0)
    assert truth.loc[0, "delta_norm"] == pytest.approx(abs(strength) * float(u.norm()), rel=1e-5)
