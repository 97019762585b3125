"""Continuation log-probs and per-block losses."""
import string

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from experiments.lm.arch import tiny_model
from experiments.lm.score import Choice, ContinuationScore, block_losses, choose, continuation_logprobs, multiple_choice

FAMILIES = ["gpt2", "gpt_neo", "llama"]
PREFIXES = ["hello", "the quick brown fox", "", "a", "xyz. "]
CONTS = [" world", " jumps", "once", "", "abc def"]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character; '<eos>' (id 0) is eos and pad. 44 tokens."""
    chars = string.ascii_lowercase + string.digits + " .,!?'"
    vocab = {"<eos>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>")


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param, vocab_size=44, initializer_range=0.2, seed=4)


def manual_logprob(model, tok, prefix: str, cont: str) -> float:
    pre = tok(prefix)["input_ids"] or [tok.eos_token_id]
    c = tok(cont, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = model(torch.tensor([pre + c])).logits[0].log_softmax(-1)
    return sum(float(logp[len(pre) - 1 + i, t]) for i, t in enumerate(c))


def test_continuation_logprobs_match_manual(model, tok):
    scores = continuation_logprobs(model, tok, PREFIXES, CONTS, batch_size=2)
    for p, c, s in zip(PREFIXES, CONTS, scores):
        assert isinstance(s, ContinuationScore)
        assert s.n_tokens == len(c)  # one token per character
        assert s.logprob == pytest.approx(manual_logprob(model, tok, p, c), abs=1e-4)
    assert scores[3] == (0.0, 0)
    assert all(s.logprob < 0 for s in scores if s.n_tokens)


def test_batching_does_not_change_scores(model, tok):
    one = continuation_logprobs(model, tok, PREFIXES, CONTS, batch_size=1)
    many = continuation_logprobs(model, tok, PREFIXES, CONTS, batch_size=32)
    np.testing.assert_allclose([s.logprob for s in one], [s.logprob for s in many], atol=1e-5)
    assert [s.n_tokens for s in one] == [s.n_tokens for s in many]
    assert continuation_logprobs(model, tok, [], []) == []
    with pytest.raises(ValueError):
        continuation_logprobs(model, tok, ["a"], [])


def test_block_losses_match_hf_loss(model):
    torch.manual_seed(0)
    blocks = torch.randint(0, 44, (5, 16))
    losses = block_losses(model, blocks, batch_size=2)
    assert losses.shape == (5,)
    with torch.no_grad():
        for blk, loss in zip(blocks, losses):
            assert loss == pytest.approx(model(blk[None], labels=blk[None]).loss.item(), abs=1e-5)


def test_multiple_choice_matches_manual_scores(model, tok):
    prefixes = ["hello", "the fox"]
    options = [[" world", " there", " x"], [" jumps", " runs"]]
    picks = multiple_choice(model, tok, prefixes, options, batch_size=3)
    assert [type(c) for c in picks] == [Choice, Choice]
    for p, opts, c in zip(prefixes, options, picks):
        manual = [manual_logprob(model, tok, p, o) for o in opts]
        np.testing.assert_allclose(c.logprobs, manual, atol=1e-4)
        assert c.n_tokens == tuple(len(o) for o in opts)
        np.testing.assert_allclose(c.per_token, [m / len(o) for m, o in zip(manual, opts)], atol=1e-4)
        assert c.chosen == int(np.argmax(manual)) and c.normalization == "sum"
    per = multiple_choice(model, tok, prefixes, options, normalization="per_token")
    assert [c.chosen for c in per] == [int(np.argmax(c.per_token)) for c in picks]


class Uniform(torch.nn.Module):
    """Every next token equally likely: log p = -log(44) per token, whatever the context."""

    device = torch.device("cpu")

    def forward(self, input_ids, attention_mask=None):
        from types import SimpleNamespace
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, 44))


def test_normalisation_decides_between_options_of_different_length(tok):
    # summed log-prob charges the 3-token option for its extra tokens; per token they tie (first wins)
    c = multiple_choice(Uniform(), tok, ["a"], [[" bc", "d"]])[0]
    assert c.n_tokens == (3, 1)
    assert c.logprobs[0] == pytest.approx(3 * -np.log(44)) and c.per_token[0] == pytest.approx(-np.log(44))
    assert c.chosen == 1
    assert multiple_choice(Uniform(), tok, ["a"], [[" bc", "d"]], normalization="per_token")[0].chosen == 0


def test_choose_and_bad_input(tok):
    assert choose([-3.0, -2.0], [3, 1], "sum") == 1 and choose([-3.0, -2.0], [3, 1], "per_token") == 0
    with pytest.raises(ValueError, match="normalization"):
        choose([-1.0], [1], "bytes")
    with pytest.raises(ValueError, match="option lists"):
        multiple_choice(Uniform(), tok, ["a", "b"], [["c"]])
    with pytest.raises(ValueError, match="at least one option"):
        multiple_choice(Uniform(), tok, ["a"], [[]])
