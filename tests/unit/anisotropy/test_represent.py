"""Token representations through the adapter: padded batches, the final norm, truncation, BOS policies."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from experiments.anisotropy.isotropy import SelfSimilarity
from experiments.anisotropy.represent import (
    FINAL,
    encode,
    family_bos,
    layer_labels,
    representations,
    resid_label,
    self_similarity_by_layer,
)
from experiments.lm.arch import get_adapter, tiny_model

FAMILIES = ["gpt2", "llama", "gpt_neo", "opt"]
LENGTHS = [7, 1, 12, 3, 9]


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return {f: tiny_model(f, n_layers=2, d_model=32, n_ctx=64, seed=0) for f in FAMILIES}


def sequences(lengths=LENGTHS, vocab=96, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, vocab, size=n).tolist() for n in lengths]


class FakeTokenizer:
    """Whitespace 'tokenizer' with the HF calls encode() uses; its __call__ adds a BOS like OPT's does."""

    bos_token_id = 2

    def tokenize(self, text):
        return text.split()

    def convert_tokens_to_ids(self, tokens):
        return [10 + len(t) for t in tokens]

    def __call__(self, text, add_special_tokens=True):
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_equals_batch_one(models, family):
    model, seqs = models[family], sequences()
    one = list(representations(model, seqs, layers="all", batch_size=1))
    padded = list(representations(model, seqs, layers="all", batch_size=3))
    assert len(one) == len(padded) == len(seqs)
    labels = layer_labels(get_adapter(model).n_layers, "all")
    for a, b, s in zip(one, padded, seqs):
        assert list(a) == labels == list(b)
        for label in labels:
            assert a[label].shape == (len(s), 32) and a[label].dtype == np.float32
            np.testing.assert_allclose(b[label], a[label], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_final_norm_is_hf_last_hidden_state(models, family):
    model = models[family]
    n_layers = get_adapter(model).n_layers
    for s in sequences(seed=1):
        reps = next(representations(model, [s], layers="all"))
        with torch.no_grad():
            hs = model(input_ids=torch.tensor([s]), output_hidden_states=True).hidden_states
        assert len(hs) == n_layers + 1
        np.testing.assert_allclose(reps[FINAL], hs[-1][0].numpy(), atol=1e-5, rtol=0)
        for l in range(n_layers):   # HF's earlier hidden states are the residual entering each block
            np.testing.assert_allclose(reps[resid_label(l)], hs[l][0].numpy(), atol=1e-5, rtol=0)
        # the final residual is the input of the final norm, not its output
        assert not np.allclose(reps[resid_label(n_layers)], reps[FINAL], atol=1e-3)


def test_layer_selection(models):
    model = models["gpt2"]
    reps = next(representations(model, sequences()[:1]))
    assert list(reps) == [FINAL]
    reps = next(representations(model, sequences()[:1], layers=["resid_pre.1"]))
    assert list(reps) == ["resid_pre.1"]
    assert layer_labels(2, "all") == ["resid_pre.0", "resid_pre.1", "resid_pre.2", FINAL]
    with pytest.raises(ValueError, match="unknown layer labels"):
        layer_labels(2, ["resid_pre.3"])


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_streamed_self_similarity_equals_the_stored_representations(models, family):
    model, seqs = models[family], sequences(seed=2)
    accs = self_similarity_by_layer(model, seqs, layers="all", exclude_first=(False, True), batch_size=2)
    reps = list(representations(model, seqs, layers="all"))
    for (label, excl), acc in accs.items():
        ref = SelfSimilarity(exclude_first=excl)
        for r in reps:
            ref.update(r[label])
        np.testing.assert_allclose(acc.sums, ref.sums, atol=1e-4)     # in input order despite length sorting
        assert acc.pairs.tolist() == ref.pairs.tolist()
        assert acc.pooled() == pytest.approx(ref.pooled(), abs=1e-5)
    assert sorted(accs) == sorted((lab, ex) for lab in layer_labels(2, "all") for ex in (False, True))
    assert accs[FINAL, False].pairs.tolist() == [n * (n - 1) for n in LENGTHS]
    assert accs[FINAL, True].pairs.tolist() == [(n - 1) * (n - 2) for n in LENGTHS]


def test_encode_cuts_to_max_tokens_with_bos_counted():
    tok = FakeTokenizer()
    texts = ["a bb ccc dddd eeeee", "x", ""]
    assert encode(tok, texts, max_tokens=3) == [[11, 12, 13], [11], []]
    assert encode(tok, texts, max_tokens=3, bos="prepend") == [[2, 11, 12], [2, 11], [2]]   # BOS counts
    assert encode(tok, texts, max_tokens=3, bos="tokenizer") == [[2, 11, 12], [2, 11], [2]]
    assert encode(tok, texts, max_tokens=10, bos=7)[0] == [7, 11, 12, 13, 14, 15]
    assert encode(tok, texts, max_tokens=10)[0] == [11, 12, 13, 14, 15]
    with pytest.raises(ValueError, match="bos must be"):
        encode(tok, texts, max_tokens=3, bos="first")


def test_encode_with_a_trained_bpe_tokenizer():
    from experiments.lm.tokenizer import train_bpe

    corpus = ["the quick brown fox jumps over the lazy dog"] * 20 + ["der schnelle braune Fuchs"] * 20
    tok = train_bpe(corpus, vocab_size=300, min_frequency=1)
    text = "the quick brown fox jumps over the lazy dog"
    plain = encode(tok, [text], max_tokens=1000)[0]
    assert plain == tok(text, add_special_tokens=False)["input_ids"]
    assert encode(tok, [text], max_tokens=1000, bos="tokenizer")[0] == plain     # this tokenizer adds nothing
    assert encode(tok, [text], max_tokens=4)[0] == plain[:4]
    assert encode(tok, [text], max_tokens=4, bos="prepend")[0] == [tok.bos_token_id] + plain[:3]


def test_truncated_texts_give_max_tokens_representations(models):
    tok = FakeTokenizer()
    seqs = encode(tok, ["w " * 40, "a few words only"], max_tokens=16, bos="prepend")
    reps = list(representations(models["opt"], seqs, batch_size=2))
    assert [r[FINAL].shape[0] for r in reps] == [16, 5]


def test_family_bos_follows_the_paper():
    assert [family_bos(f) for f in ("gpt2", "gpt_neo", "opt", "llama")] == ["none", "none", "prepend", "none"]
    with pytest.raises(ValueError, match="no BOS policy"):
        family_bos("bert")


def test_bad_sequences_fail_loudly(models):
    model = models["gpt2"]
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        list(representations(model, [[1, 2], []]))
    with pytest.raises(ValueError, match="more than the model's context 64"):
        list(representations(model, [[1] * 65]))
