"""Our decoding loop against a plain no-cache argmax loop, logit filtering, seeding and EOS."""
import string

import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from experiments.lm.arch import tiny_model
from experiments.lm.sample import (
    Row,
    _draw,
    _row_uniforms,
    _sample_tokens,
    filter_logits,
    sample,
    sample_ids,
    sample_rows,
    sampling_probs,
)

FAMILIES = ["gpt2", "gpt_neo", "llama"]
PROMPTS = ["hello world", "a", "the quick brown fox jumps", "", "xyz."]
INF = float("-inf")


def char_tokenizer(eos: str = "<eos>") -> PreTrainedTokenizerFast:
    """One token per character; '<eos>' (id 0) is eos and pad. 44 tokens."""
    chars = string.ascii_lowercase + string.digits + " .,!?'"
    vocab = {"<eos>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos, pad_token="<eos>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param, vocab_size=44, n_ctx=64, initializer_range=0.2, seed=3)


def reference_greedy(model, prompt_ids: list[int], n: int) -> list[int]:
    """Argmax decoding of a single prompt, re-running the whole sequence each step (no cache, no padding)."""
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt_ids):]


# ---- filter_logits ---------------------------------------------------------------------------


def test_top_k_keeps_the_k_largest():
    out = filter_logits(torch.tensor([[1.0, 3.0, 2.0, 0.0]]), top_k=2)
    assert out.tolist() == [[INF, 3.0, 2.0, INF]]


def test_top_k_keeps_ties_and_ignores_large_k():
    out = filter_logits(torch.tensor([3.0, 1.0, 3.0, 3.0, 0.0]), top_k=2)  # HF keeps all tied with the k-th
    assert out.tolist() == [3.0, INF, 3.0, 3.0, INF]
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(filter_logits(x, top_k=5), x)
    assert torch.equal(filter_logits(x), x)


def test_top_p():
    logits = torch.tensor([0.6, 0.3, 0.1]).log()
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).tolist() == [True, False, False]
    assert torch.isfinite(filter_logits(logits, top_p=0.8)).tolist() == [True, True, False]
    assert torch.isfinite(filter_logits(logits, top_p=0.95)).tolist() == [True, True, True]
    assert torch.isfinite(filter_logits(logits, top_p=1e-9)).tolist() == [True, False, False]  # at least one
    # order does not matter; top-p after top-k renormalises over the top-k
    perm = torch.tensor([0.1, 0.6, 0.3]).log()
    assert torch.isfinite(filter_logits(perm, top_p=0.8)).tolist() == [False, True, True]
    assert torch.isfinite(filter_logits(logits, top_k=2, top_p=0.65)).tolist() == [True, False, False]
    assert torch.isfinite(filter_logits(logits, top_k=2, top_p=0.7)).tolist() == [True, True, False]


def test_top_p_ties_prefer_lower_id():
    logits = torch.tensor([0.2, 0.4, 0.4]).log()
    assert torch.isfinite(filter_logits(logits, top_p=0.3)).tolist() == [False, True, False]
    assert torch.isfinite(filter_logits(logits, top_p=0.5)).tolist() == [False, True, True]


def test_sampling_probs_and_draw():
    p = sampling_probs(torch.tensor([[0.5, 0.25, 0.25, 1e-9]]).log(), top_k=3)
    torch.testing.assert_close(p, torch.tensor([[0.5, 0.25, 0.25, 0.0]]))
    u = (torch.arange(1000) + 0.5) / 1000
    counts = torch.bincount(_draw(p.expand(1000, 4), u), minlength=4)
    assert counts.tolist() == [500, 250, 250, 0]
    assert _draw(p, torch.zeros(1)).item() == 0
    assert _draw(torch.tensor([[0.0, 1.0, 0.0]]), torch.tensor([0.999999])).item() == 1


# ---- decoding loop ---------------------------------------------------------------------------


def test_greedy_matches_no_cache_loop(model, tok):
    n = 12
    got = sample_ids(model, tok, PROMPTS, max_new_tokens=n, greedy=True, batch_size=len(PROMPTS),
                     stop_at_eos=False, progress=False)
    for prompt, ids in zip(PROMPTS, got):
        prompt_ids = tok(prompt)["input_ids"] or [tok.eos_token_id]
        assert ids == reference_greedy(model, prompt_ids, n), prompt
    # batch composition does not matter
    assert got == sample_ids(model, tok, PROMPTS, max_new_tokens=n, greedy=True, batch_size=2,
                             stop_at_eos=False, progress=False)


def test_top_k_1_and_temperature_0_are_greedy(model, tok):
    kw = dict(max_new_tokens=8, stop_at_eos=False, progress=False)
    greedy = sample_ids(model, tok, PROMPTS, greedy=True, **kw)
    assert sample_ids(model, tok, PROMPTS, top_k=1, seed=5, **kw) == greedy
    assert sample_ids(model, tok, PROMPTS, top_p=1e-9, seed=6, **kw) == greedy
    assert sample_ids(model, tok, PROMPTS, temperature=0, **kw) == greedy


def test_seeds(model, tok):
    kw = dict(max_new_tokens=16, stop_at_eos=False, progress=False, temperature=1.5)
    a = sample(model, tok, PROMPTS, seed=0, batch_size=2, **kw)
    assert a == sample(model, tok, PROMPTS, seed=0, batch_size=2, **kw)
    assert a == sample(model, tok, PROMPTS, seed=0, batch_size=5, **kw)  # independent of batching
    b = sample(model, tok, PROMPTS, seed=1, batch_size=2, **kw)
    assert all(x != y for x, y in zip(a, b))
    assert all(len(tok(x)["input_ids"]) == 16 for x in a)


def test_samples_stay_in_top_k(tok):
    model = tiny_model("gpt2", vocab_size=44, initializer_range=0.2, seed=3)
    prompts = ["ab"] * 40
    first = [ids[0] for ids in sample_ids(model, tok, prompts, max_new_tokens=1, top_k=3, progress=False)]
    with torch.no_grad():
        top3 = model(torch.tensor([tok("ab")["input_ids"]])).logits[0, -1].topk(3).indices.tolist()
    assert set(first) <= set(top3) and len(set(first)) > 1


def test_eos_stops_a_row(model):
    prompts = [p for p in PROMPTS if p]  # an empty prompt would start with the (changed) EOS token
    plain = char_tokenizer()
    free = sample_ids(model, plain, prompts, max_new_tokens=12, greedy=True, stop_at_eos=False, progress=False)
    # call the 4th greedy token of the first prompt "EOS"
    stop_id = free[0][3]
    stop_char = plain.convert_ids_to_tokens(stop_id)
    tok = char_tokenizer(eos=stop_char)
    assert tok.eos_token_id == stop_id
    got = sample_ids(model, tok, prompts, max_new_tokens=12, greedy=True, progress=False)
    texts = sample(model, tok, prompts, max_new_tokens=12, greedy=True, progress=False)
    for ids, ref, text in zip(got, free, texts):
        cut = ref.index(stop_id) + 1 if stop_id in ref else len(ref)
        assert ids == ref[:cut]  # stops right after EOS, emits nothing more; other rows go on
        assert text == tok.decode(ids[:-1] if ids and ids[-1] == stop_id else ids)
    assert len(got[0]) <= 4 and got[0][-1] == stop_id
    assert any(len(ids) == 12 for ids in got)  # the batch went on for rows without EOS


def test_sample_returns_only_the_continuation(tok):
    model = tiny_model("llama", vocab_size=44, initializer_range=0.2, seed=3)
    texts = sample(model, tok, PROMPTS, max_new_tokens=5, greedy=True, stop_at_eos=False, progress=False)
    ids = sample_ids(model, tok, PROMPTS, max_new_tokens=5, greedy=True, stop_at_eos=False, progress=False)
    assert texts == [tok.decode(i) for i in ids]
    assert sample(model, tok, [], max_new_tokens=5, progress=False) == []
    with pytest.raises(ValueError, match="positions"):
        sample(model, tok, ["abc"], max_new_tokens=100, progress=False)


# ---- rows with their own streams and budgets; shared prefix --------------------------------------------------


def reference_sample(model, prompt_ids: list[int], stream, budget: int, eos_id, **filt) -> list[int]:
    """One row alone, no cache, no padding: the full sequence re-run every step; stream None = greedy."""
    u = None if stream is None else _row_uniforms(*stream, budget)
    ids = list(prompt_ids)
    with torch.no_grad():
        for t in range(budget):
            logits = model(torch.tensor([ids])).logits[0, -1]
            tok = int(logits.argmax()) if u is None else int(_draw(sampling_probs(logits[None], **filt), u[t:t + 1]))
            ids.append(tok)
            if tok == eos_id:
                break
    return ids[len(prompt_ids):]


ROW_PROMPTS = ["the cat", "a", "the cat", "xyz. hello", "the cat", "a", "q"]
ROW_BUDGETS = [6, 2, 3, 5, 1, 6, 4]


def mixed_rows(tok, greedy: bool) -> list[Row]:
    """Repeated and distinct prompts of several lengths, mixed budgets, each row its own stream."""
    return [Row(tuple(tok(p)["input_ids"]), None if greedy else (7, 10 + i), b)
            for i, (p, b) in enumerate(zip(ROW_PROMPTS, ROW_BUDGETS))]


def eos_tokenizer(model, tok, greedy: bool) -> PreTrainedTokenizerFast:
    """A char tokenizer whose EOS is the 2nd token row 0 draws when nothing stops it: row 0 then stops early."""
    free = sample_rows(model, mixed_rows(tok, greedy), pad_id=0, eos_id=None, top_k=5, batch_size=8)
    return char_tokenizer(eos=tok.convert_ids_to_tokens(free[0][1]))


@pytest.mark.parametrize("greedy", [True, False])
def test_rows_match_one_row_alone_without_cache(model, tok, greedy):
    etok = eos_tokenizer(model, tok, greedy)
    rows = mixed_rows(etok, greedy)
    eos = etok.eos_token_id
    got = sample_rows(model, rows, pad_id=1, eos_id=eos, top_k=5, batch_size=4)
    want = [reference_sample(model, list(r.prompt), r.stream, r.budget, eos, top_k=5) for r in rows]
    assert got == want
    # the case mix is really there: a row cut by EOS before its budget and rows that used their whole budget
    assert got[0][-1] == eos and len(got[0]) < rows[0].budget
    assert any(len(ids) == r.budget and ids[-1] != eos for ids, r in zip(got, rows))
    assert all(len(ids) <= r.budget for ids, r in zip(got, rows))
    # one batch or one row per batch, in another order: the same samples
    assert sample_rows(model, rows[::-1], pad_id=1, eos_id=eos, top_k=5, batch_size=1) == got[::-1]
    assert sample_rows(model, rows, pad_id=1, eos_id=eos, top_k=5, batch_size=len(rows)) == got


def test_row_budget_is_sampling_it_alone_with_that_max_new_tokens(model, tok):
    rows = mixed_rows(tok, greedy=False)
    got = sample_rows(model, rows, pad_id=0, eos_id=None, temperature=1.3, batch_size=8)
    for (p, b), r, ids in zip(zip(ROW_PROMPTS, ROW_BUDGETS), rows, got):
        seed, index = r.stream
        alone = sample_ids(model, tok, [p], max_new_tokens=b, temperature=1.3, seed=seed, first_index=index,
                           stop_at_eos=False, progress=False)
        assert ids == alone[0] and len(ids) == b
    # rows with the same prompt and different streams differ (the streams are really per row)
    assert len({tuple(got[i][:1]) for i in (0, 2, 4)}) > 1  # "the cat" x 3


def test_shared_prefix_equals_unshared_and_runs_each_prompt_once(model, tok):
    rows = mixed_rows(tok, greedy=False)
    first_batch = []
    hook = model.register_forward_pre_hook(
        lambda m, args, kw: first_batch.append(kw["input_ids"].shape) if kw["input_ids"].shape[1] > 1 else None,
        with_kwargs=True)
    try:
        shared = sample_rows(model, rows, pad_id=0, eos_id=None, top_k=8, batch_size=len(rows))
        assert [s[0] for s in first_batch] == [len(set(ROW_PROMPTS))]  # 4 distinct prompts, one forward
        first_batch.clear()
        plain = sample_rows(model, rows, pad_id=0, eos_id=None, top_k=8, batch_size=len(rows), share_prefix=False)
        assert [s[0] for s in first_batch] == [len(rows)]
    finally:
        hook.remove()
    assert shared == plain


def test_sample_ids_streams_are_first_index_plus_i(model, tok):
    kw = dict(max_new_tokens=5, stop_at_eos=False, progress=False, top_k=10, seed=4)
    full = sample_ids(model, tok, ["ab"] * 6, **kw)
    assert sample_ids(model, tok, ["ab"] * 3, first_index=3, **kw) == full[3:]
    assert len(set(map(tuple, full))) > 1


def test_rows_validate(model, tok):
    with pytest.raises(ValueError, match="budget"):
        sample_rows(model, [Row((2, 3), (0, 0), 0)], pad_id=0, eos_id=None)
    with pytest.raises(ValueError, match="positions"):
        sample_rows(model, [Row((2, 3), (0, 0), 63)], pad_id=0, eos_id=None)


@pytest.mark.parametrize("top_k, top_p, temperature",
                         [(50, None, 1.0), (3, None, 0.7), (7, 0.9, 1.0), (None, None, 1.3)])
def test_sample_tokens_is_draw_of_sampling_probs(top_k, top_p, temperature):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(300, 500, generator=gen) * 3
    logits[:100] = logits[:100].round()  # many ties with the k-th largest
    logits[100:150, :60] = 9.0  # ties: more than k tokens at the top
    u = torch.rand(300, generator=gen)
    u[:5] = torch.tensor([0.0, 1 - 2 ** -24, 0.5, 1e-9, 0.999])
    want = _draw(sampling_probs(logits, temperature, top_k, top_p), u)
    got = _sample_tokens(logits, u, temperature, top_k, top_p)
    assert torch.equal(got, want)
    assert len(set(got.tolist())) > 20
