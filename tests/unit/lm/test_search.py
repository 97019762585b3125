"""Contrastive search and beam search (experiments.lm.search) against naive references and HF generate."""
from collections import Counter

import pytest
import torch

from experiments.lm.arch import tiny_model
from experiments.lm.sample import _left_pad
from experiments.lm.search import (
    beam_search,
    beam_search_reference,
    contrastive_search,
    contrastive_search_reference,
    top_candidates,
)

FAMILIES = ["gpt2", "llama"]
VOCAB = 44
# different lengths, so a batch is left-padded; two equal-length prompts; 3 batches at batch_size 2
PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12], [3, 4, 5], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30], [7, 7], [9, 8]]
NEW = 12
HF_PAD = 1  # HF fills finished rows with this; never compared as a token (see _padded)


@pytest.fixture(scope="module", params=FAMILIES)
def model(request):
    return tiny_model(request.param, vocab_size=VOCAB, n_ctx=64, initializer_range=0.2, seed=3)


def eos_for(rows: list[list[int]]) -> int:
    """A token that occurs before the last step in the most rows, but not in all: used as EOS, rows then end at
    different steps (and leave the batch) while others run to the full length."""
    counts = Counter(t for row in rows for t in set(row[:-1]))
    return min((t for t, c in counts.items() if c < len(rows)), key=lambda t: (-counts[t], t))


@pytest.fixture(scope="module")
def eos(model):
    """eos_for greedy decoding's output."""
    return eos_for(contrastive_search(model, PROMPTS, k=1, alpha=0.0, max_new_tokens=NEW, pad_id=0, eos_id=None))


def hf_generate(model, prompts, **kw):
    """HF generate on the left-padded batch; (new ids per row, HF's output for that row)."""
    ids, mask = _left_pad(prompts, 0, model.device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, pad_token_id=HF_PAD,
                             return_dict_in_generate=True, output_scores=True, output_logits=True, **kw)
    return out.sequences[:, ids.shape[1]:].tolist(), out


def _padded(rows, width):
    return [r + [HF_PAD] * (width - len(r)) for r in rows]


# ---- contrastive search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_contrastive_matches_naive_reference(model, k, alpha):
    eos = eos_for(contrastive_search(model, PROMPTS, k=k, alpha=alpha, max_new_tokens=NEW, pad_id=0, eos_id=None))
    ref = contrastive_search_reference(model, PROMPTS, k=k, alpha=alpha, max_new_tokens=NEW, eos_id=eos)
    assert any(len(r) < NEW for r in ref) and any(len(r) == NEW for r in ref)  # rows leave the batch early
    for batch_size in (2, len(PROMPTS)):
        ours = contrastive_search(model, PROMPTS, k=k, alpha=alpha, max_new_tokens=NEW, pad_id=0, eos_id=eos,
                                  batch_size=batch_size)
        assert ours == ref


def test_contrastive_without_eos_runs_the_full_length(model):
    ours = contrastive_search(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=NEW, pad_id=0, eos_id=None)
    ref = contrastive_search_reference(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=NEW, eos_id=None)
    assert ours == ref and all(len(r) == NEW for r in ours)


def test_contrastive_ignores_pad_positions(model):
    """The left-padding positions' states must not enter the max cosine: the output may not depend on the pad
    token (with pad id 0 the pads' states happen never to be the max here; with these ids they would be)."""
    ref = contrastive_search_reference(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=NEW, eos_id=None)
    for pad_id in (1, 5, 17, 22):
        assert contrastive_search(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=NEW, pad_id=pad_id,
                                  eos_id=None) == ref


def test_contrastive_alpha0_and_k1_are_hf_greedy(model, eos):
    hf, _ = hf_generate(model, PROMPTS, max_new_tokens=NEW, eos_token_id=eos)
    for k, alpha in [(4, 0.0), (1, 0.6), (1, 0.0)]:
        ours = contrastive_search(model, PROMPTS, k=k, alpha=alpha, max_new_tokens=NEW, pad_id=0, eos_id=eos,
                                  batch_size=4)
        assert _padded(ours, len(hf[0])) == hf


def test_degeneration_penalty_changes_the_tokens(model):
    """alpha > 0 must not be greedy here (else the reference test above could not see a wrong penalty)."""
    greedy = contrastive_search(model, PROMPTS, k=4, alpha=0.0, max_new_tokens=NEW, pad_id=0, eos_id=None)
    cs = contrastive_search(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=NEW, pad_id=0, eos_id=None)
    assert sum(a != b for g, c in zip(greedy, cs) for a, b in zip(g, c)) > NEW  # many positions differ
    assert any(g[0] != c[0] for g, c in zip(greedy, cs))  # the first token: only the prompt's states penalise it


def test_contrastive_zero_new_tokens_and_bad_arguments(model):
    assert contrastive_search(model, PROMPTS, k=4, alpha=0.6, max_new_tokens=0, pad_id=0, eos_id=0) == \
        [[] for _ in PROMPTS]
    for kw in (dict(k=0, alpha=0.5), dict(k=2, alpha=1.5)):
        with pytest.raises(ValueError):
            contrastive_search(model, PROMPTS, max_new_tokens=2, pad_id=0, eos_id=0, **kw)
    with pytest.raises(ValueError, match="positions"):
        contrastive_search(model, [[1] * 60], k=2, alpha=0.5, max_new_tokens=10, pad_id=0, eos_id=0)
    with pytest.raises(ValueError, match="at least one token"):
        contrastive_search(model, [[]], k=2, alpha=0.5, max_new_tokens=2, pad_id=0, eos_id=0)


def test_top_candidates_breaks_ties_by_lower_id():
    logits = torch.tensor([[1.0, 3.0, 2.0, 3.0, 0.0], [0.5, 0.1, 0.9, 0.2, 0.3], [2.0, 2.0, 2.0, 2.0, 2.0]])
    assert top_candidates(logits, 2).tolist() == [[1, 3], [2, 0], [0, 1]]
    assert top_candidates(logits, 3).tolist() == [[1, 3, 2], [2, 0, 4], [0, 1, 2]]
    assert top_candidates(logits, 9).shape == (3, 5)
    torch.manual_seed(0)
    x = torch.randint(0, 4, (50, 30)).float()  # many ties
    for k in (1, 3, 7):
        assert torch.equal(top_candidates(x, k), torch.sort(x, dim=-1, descending=True, stable=True).indices[:, :k])


# ---- beam search -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_beams", [2, 4])
@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("length_penalty", [1.0, 0.0, 2.0])
def test_beam_search_matches_hf_generate(model, eos, num_beams, early_stopping, length_penalty):
    hf, out = hf_generate(model, PROMPTS, max_new_tokens=10, eos_token_id=eos, num_beams=num_beams,
                          length_penalty=length_penalty, early_stopping=early_stopping)
    hf_len = ((out.beam_indices + 1).bool()).sum(1).tolist()
    ours, scores = beam_search(model, PROMPTS, num_beams=num_beams, max_new_tokens=10, pad_id=0, eos_id=eos,
                               length_penalty=length_penalty, early_stopping=early_stopping, batch_size=2,
                               return_scores=True)
    assert [len(r) for r in ours] == hf_len
    assert _padded(ours, len(hf[0])) == hf
    assert scores == pytest.approx(out.sequences_scores.tolist(), abs=1e-5)


def test_early_stopping_modes_differ(model, eos):
    """HF's three early_stopping modes pick different hypotheses here (so matching each one means something)."""
    modes = (True, False, "never")
    found = {(es, lp): beam_search(model, PROMPTS, num_beams=2, max_new_tokens=10, pad_id=0, eos_id=eos,
                                   length_penalty=lp, early_stopping=es) for es in modes for lp in (1.0, 2.0)}
    for i, a in enumerate(modes):
        for b in modes[i + 1:]:
            assert any(found[a, lp] != found[b, lp] for lp in (1.0, 2.0)), (a, b)
    rows = [r for v in found.values() for r in v]
    assert any(r[-1] == eos for r in rows) and any(len(r) == 10 and r[-1] != eos for r in rows)


def test_one_beam_is_greedy(model, eos):
    greedy = contrastive_search(model, PROMPTS, k=1, alpha=0.0, max_new_tokens=NEW, pad_id=0, eos_id=eos)
    assert beam_search(model, PROMPTS, num_beams=1, max_new_tokens=NEW, pad_id=0, eos_id=eos) == greedy


@pytest.fixture(scope="module", params=FAMILIES)
def small_vocab_model(request):
    return tiny_model(request.param, vocab_size=6, n_ctx=32, initializer_range=0.1, seed=5)


def test_beam_search_with_enough_beams_is_exhaustive(small_vocab_model):
    """With vocab ** (T - 1) beams and early_stopping="never", beam search keeps every prefix: it must find the
    exact best continuation, which the reference enumerates with full forwards."""
    m, steps, eos = small_vocab_model, 3, 2
    prompts = [[1, 3, 4, 5], [3], [4, 4, 1], [5, 1]]
    greedy_misses = False
    for length_penalty in (0.0, 1.0, 2.0):
        ref = [beam_search_reference(m, p, max_new_tokens=steps, eos_id=eos, length_penalty=length_penalty)
               for p in prompts]
        ours, scores = beam_search(m, prompts, num_beams=6 ** (steps - 1), max_new_tokens=steps, pad_id=0,
                                   eos_id=eos, length_penalty=length_penalty, early_stopping="never", batch_size=3,
                                   return_scores=True)
        assert ours == [r[0] for r in ref]
        assert scores == pytest.approx([r[1] for r in ref], abs=1e-5)
        narrow = beam_search(m, prompts, num_beams=1, max_new_tokens=steps, pad_id=0, eos_id=eos,
                             length_penalty=length_penalty, early_stopping="never")
        greedy_misses |= narrow != ours
    assert greedy_misses  # the optimum is not simply greedy's answer: the comparison can fail


def test_beam_search_bad_arguments(model):
    with pytest.raises(ValueError):
        beam_search(model, PROMPTS, num_beams=0, max_new_tokens=2, pad_id=0, eos_id=0)
    with pytest.raises(ValueError):
        beam_search(model, PROMPTS, num_beams=2, max_new_tokens=2, pad_id=0, eos_id=0, early_stopping="always")
    assert beam_search(model, PROMPTS, num_beams=2, max_new_tokens=0, pad_id=0, eos_id=0) == [[] for _ in PROMPTS]
