"""Locally typical sampling (typical_p) in lm.sample's filter_logits path: hand-computed kept sets, the order
top-k -> top-p -> typical, and the batched sampler drawing from exactly that distribution."""
import math

import pytest
import torch

from experiments.lm.arch import tiny_model
from experiments.lm.sample import filter_logits, sample_rows, sampling_probs
from tests.unit.lm.test_sample import ROW_BUDGETS, char_tokenizer, mixed_rows, reference_sample

INF = float("-inf")
# p = 0.5, 0.3, 0.15, 0.05: H = 1.1421 nats; -log p = 0.693, 1.204, 1.897, 2.996;
# |-log p - H| = 0.449, 0.062, 0.755, 1.854 -> typicality order: token 1, 0, 2, 3
PROBS = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
LOGITS = PROBS.log()


def kept(logits):
    return set(torch.nonzero(logits[0] > INF).flatten().tolist())


@pytest.mark.parametrize("mass, want", [(0.2, {1}), (0.25, {1}), (0.5, {0, 1}), (0.75, {0, 1}), (0.9, {0, 1, 2}),
                                        (0.99, {0, 1, 2, 3})])
def test_typical_keeps_the_most_typical_tokens_not_the_most_likely(mass, want):
    # with mass 0.2 the kept token is the second most likely one (top-p 0.2 would keep token 0)
    assert kept(filter_logits(LOGITS, typical_p=mass)) == want
    assert kept(filter_logits(LOGITS, top_p=0.2)) == {0}


def test_typical_off_changes_nothing():
    for off in (None, 1.0):
        assert torch.equal(filter_logits(LOGITS, typical_p=off), LOGITS)


def test_typical_runs_after_top_k_on_the_renormalised_distribution():
    # top-2 leaves p = 0.625 / 0.375: H = 0.6616; |-log p - H| = 0.191, 0.319 -> token 0 is the more typical
    assert kept(filter_logits(LOGITS, top_k=2, typical_p=0.5)) == {0}
    assert kept(filter_logits(LOGITS, top_k=2, typical_p=0.7)) == {0, 1}
    p = sampling_probs(LOGITS, top_k=2, typical_p=0.5)
    assert math.isclose(float(p[0, 0]), 1.0) and float(p[0, 1:].sum()) == 0.0


def test_uniform_distribution_keeps_the_lowest_ids_first():
    logits = torch.zeros(1, 10)  # every token is equally typical: ties in id order
    assert kept(filter_logits(logits, typical_p=0.25)) == {0, 1, 2}


def test_batched_sampler_draws_typical_samples_as_a_row_alone():
    tok = char_tokenizer()
    model = tiny_model("gpt2", vocab_size=44, n_ctx=64, initializer_range=0.2, seed=3)
    rows = mixed_rows(tok, greedy=False)
    got = sample_rows(model, rows, pad_id=1, eos_id=None, typical_p=0.6, batch_size=4)
    want = [reference_sample(model, list(r.prompt), r.stream, r.budget, None, typical_p=0.6) for r in rows]
    assert got == want and [len(g) for g in got] == ROW_BUDGETS
    # typical 0.6 really restricts the draws: without it, the same streams give other tokens somewhere
    assert sample_rows(model, rows, pad_id=1, eos_id=None, batch_size=4) != got


@pytest.mark.parametrize("mass", [0.2, 0.5, 0.9, 0.95])
def test_kept_sets_equal_hf_typical_logits_warper(mass):
    from transformers.generation.logits_process import TypicalLogitsWarper

    logits = torch.randn(8, 300, generator=torch.Generator().manual_seed(1)) * 3
    hf = TypicalLogitsWarper(mass)(torch.zeros(8, 1, dtype=torch.long), logits.clone())
    ours = filter_logits(logits, typical_p=mass)
    assert torch.equal(torch.isfinite(hf), torch.isfinite(ours))
