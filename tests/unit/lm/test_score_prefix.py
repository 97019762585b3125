"""Shared-prefix scoring (one prefix forward, continuations batched on its KV cache) vs one forward per pair."""
import numpy as np
import pytest
import torch
from tokenizers.processors import TemplateProcessing

from experiments.lm import score
from experiments.lm.arch import tiny_model
from experiments.lm.score import (
    ContinuationScore,
    continuation_logprobs,
    grouped_continuation_logprobs,
    multiple_choice,
    prefix_logprobs,
)
from tests.unit.lm.test_score import char_tokenizer

# gpt2: learned positions from position_ids; llama: RoPE; gpt_neo: a sliding-window layer (window 8) the
# prefixes below outgrow; opt: positions from the attention mask
FAMILIES = ["gpt2", "llama", "gpt_neo", "opt"]
VOCAB = 45  # char_tokenizer's 44 tokens + <bos>
PREFIX = "the quick brown fox jumps over the lazy dog"  # 43 tokens
CANDS = [" a", "b", " hello world", "", "xyz", " the end.", "q" * 9, "!"]  # 1-11 tokens and an empty one


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def bos_tok():
    """char_tokenizer that puts <bos> (id 44) before every prefix, as Llama's tokenizer does."""
    t = char_tokenizer()
    t.add_special_tokens({"bos_token": "<bos>"})
    t.backend_tokenizer.post_processor = TemplateProcessing(single="<bos> $A",
                                                            special_tokens=[("<bos>", t.bos_token_id)])
    return t


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param, vocab_size=VOCAB, initializer_range=0.2, n_ctx=128, seed=3)


def reference(model, tok, prefix: str, cont: str) -> np.ndarray:
    """Per-token log-probs of cont from one unpadded forward of prefix + cont (empty prefix: [bos or eos])."""
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    pre = tok(prefix)["input_ids"] or [start]
    c = tok(cont, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([pre + c])).logits[0].double().log_softmax(-1)
    return np.array([float(logp[len(pre) - 1 + i, t]) for i, t in enumerate(c)])


def assert_scores(scores, model, tok, prefix, conts, atol=1e-4):
    assert len(scores) == len(conts)
    for s, c in zip(scores, conts):
        ref = reference(model, tok, prefix, c)
        assert isinstance(s, ContinuationScore) and s.n_tokens == len(ref)
        assert s.logprob == pytest.approx(ref.sum(), abs=atol)


@pytest.mark.parametrize("batch_size", [1, 3, 64])  # 3: the 7 non-empty candidates take 3 batches
def test_prefix_logprobs_equal_one_forward_per_candidate(model, tok, batch_size):
    scores = prefix_logprobs(model, tok, PREFIX, CANDS, batch_size=batch_size)
    assert_scores(scores, model, tok, PREFIX, CANDS)
    assert scores[CANDS.index("")] == (0.0, 0)


@pytest.mark.parametrize("prefix", ["a", ""])  # one token; empty -> [eos] (no bos in char_tokenizer)
def test_one_token_and_empty_prefix(model, tok, prefix):
    assert_scores(prefix_logprobs(model, tok, prefix, CANDS, batch_size=2), model, tok, prefix, CANDS)


def test_bos_tokenizer_prefixes(model, bos_tok):
    # the prefix carries the tokenizer's <bos>; an empty prefix is [<bos>]; continuations get none
    for prefix in ["", "hi", PREFIX]:
        assert_scores(prefix_logprobs(model, bos_tok, prefix, CANDS, batch_size=3), model, bos_tok, prefix, CANDS)


def test_grouped_prefixes_of_different_lengths(model, tok):
    # distinct prefixes share a left-padded prefix batch (batch_size 2), and continuations of different
    # prefixes share a continuation batch; per-token log-probs come back too
    groups = [(PREFIX, CANDS), ("", [" x", "yz"]), ("a", CANDS[:3]), ("hi there", []), ("xyz. abc", ["d", "ef g"]),
              (PREFIX[:20], CANDS[::-1])]
    scores, per_token = grouped_continuation_logprobs(model, tok, groups, batch_size=2, return_token_logprobs=True)
    assert [len(s) for s in scores] == [len(cs) for _, cs in groups]
    for (prefix, conts), s, pt in zip(groups, scores, per_token):
        assert_scores(s, model, tok, prefix, conts)
        for c, lp in zip(conts, pt):
            np.testing.assert_allclose(lp, reference(model, tok, prefix, c), atol=1e-4)
    assert grouped_continuation_logprobs(model, tok, []) == []
    assert prefix_logprobs(model, tok, PREFIX, []) == []


def test_first_token_logprob_is_counted(model, tok):
    # a one-token continuation is all first token: its score is the prefix's last-position log-prob
    with torch.no_grad():
        last = model(torch.tensor([tok(PREFIX)["input_ids"]])).logits[0, -1].double().log_softmax(-1)
    ones = [" ", "a", "b", "z"]
    for s, c in zip(prefix_logprobs(model, tok, PREFIX, ones), ones):
        assert s.n_tokens == 1 and s.logprob == pytest.approx(float(last[tok(c)["input_ids"][0]]), abs=1e-4)
    # and in longer ones the first token's log-prob is big enough that dropping it would fail by far
    scores, per_token = prefix_logprobs(model, tok, PREFIX, CANDS, return_token_logprobs=True)
    for s, pt, c in zip(scores, per_token, CANDS):
        if c:
            ref = reference(model, tok, PREFIX, c)
            assert abs(ref[0]) > 1e-2 and len(pt) == s.n_tokens == len(c)
            assert pt[0] == pytest.approx(ref[0], abs=1e-4)
            assert s.logprob - ref[1:].sum() == pytest.approx(ref[0], abs=1e-4)


def count_input_tokens(model):
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["input_ids"].numel()), with_kwargs=True)
    return seen, handle


def test_continuation_logprobs_shares_repeated_prefixes(model, tok):
    # repeated prefix ids take the shared path, a prefix seen once the concatenated one; same scores either way
    prefixes = [PREFIX] * len(CANDS) + ["a", "hello", "a", ""]
    conts = CANDS + [" bc", " world", "d", "once"]
    seen, handle = count_input_tokens(model)
    try:
        scores = continuation_logprobs(model, tok, prefixes, conts, batch_size=3)
    finally:
        handle.remove()
    for p, c, s in zip(prefixes, conts, scores):
        assert_scores([s], model, tok, p, [c])
    assert len(seen) > 1 and sum(seen) < 5 * len(PREFIX)  # the prefix ran forward once, not 7 times (>= 7 * 44)
    ref = score._full_forward_scores(model, score._encode_pairs(tok, prefixes, conts), tok.pad_token_id, 3)
    np.testing.assert_allclose([s.logprob for s in scores], [s.logprob for s in ref], atol=1e-4)
    assert [s.n_tokens for s in scores] == [s.n_tokens for s in ref]


def test_multiple_choice_same_picks_and_scores_as_one_forward_each(model, tok):
    prefixes = [PREFIX, "lily picked up her", "a"]
    options = [[" dog", " cat", " fox jumps"], [" red ball", " blue ball", " ball", "x"], ["b", "bb"]]
    for norm in ("sum", "per_token"):
        picks = multiple_choice(model, tok, prefixes, options, normalization=norm, batch_size=2)
        for p, opts, c in zip(prefixes, options, picks):
            ref = [reference(model, tok, p, o) for o in opts]
            np.testing.assert_allclose(c.logprobs, [r.sum() for r in ref], atol=1e-4)
            assert c.n_tokens == tuple(len(r) for r in ref)
            key = [r.sum() if norm == "sum" else r.mean() for r in ref]
            assert c.chosen == int(np.argmax(key))


def test_model_without_cache_falls_back(tok):
    # a model whose forward takes no KV cache is scored one forward per pair (the uniform model: -log V per token)
    class Uniform(torch.nn.Module):
        device = torch.device("cpu")

        def forward(self, input_ids, attention_mask=None):
            from types import SimpleNamespace
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, VOCAB))

    scores = continuation_logprobs(Uniform(), tok, ["a", "a", "a"], ["bc", "d", ""])
    assert [s.n_tokens for s in scores] == [2, 1, 0]
    np.testing.assert_allclose([s.logprob for s in scores], [-2 * np.log(VOCAB), -np.log(VOCAB), 0.0])
