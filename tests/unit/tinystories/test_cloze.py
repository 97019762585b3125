"""Cloze scoring: equal-token-length options, the n-gram chance baselines, and the metrics rows."""
import numpy as np
import pandas as pd
import pytest
import torch

from experiments.tinystories.cloze import NGramLM, cloze_metrics, equal_length, score_items
from tests.unit.lm.test_score import char_tokenizer


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()  # one token per character


def test_equal_length_keeps_the_answers_token_count(tok):
    item = {"prefix": "my", "options": [" blue", " red", " tan"], "answer": 1}
    assert equal_length(tok, item) == ([" red", " tan"], 0)
    assert equal_length(tok, {"prefix": "my", "options": [" red", " blue"], "answer": 0}) is None


def test_ngram_models_are_normalised_frequency_tables(tok):
    ids = tok("ab ab ab b", add_special_tokens=False)["input_ids"]
    stream = np.array(ids * 50)
    uni, bi = NGramLM(stream, len(tok), 1), NGramLM(stream, len(tok), 2)
    x = torch.tensor([ids[:3]])
    for m in (uni, bi):
        logp = m(input_ids=x).logits
        assert logp.shape == (1, 3, len(tok))
        np.testing.assert_allclose(logp.exp().sum(-1).numpy(), 1.0, atol=1e-5)
    a, b = ids[0], ids[1]
    assert bi(input_ids=torch.tensor([[a]])).logits[0, 0].argmax() == b  # after "a" always "b"
    assert uni(input_ids=torch.tensor([[a]])).logits[0, 0].argmax() == b  # "b" is the most frequent token
    with pytest.raises(ValueError):
        NGramLM(stream, len(tok), 3)


def test_score_items_and_metrics(tok):
    # a bigram of a stream where "x" is followed by "y" answers "x" -> " y..."-style items; chance 1/2 per item
    stream = np.array(tok("xy xy xy xz", add_special_tokens=False)["input_ids"] * 30)
    model = NGramLM(stream, len(tok), 2)
    items = [{"prefix": "ax", "options": ["y", "z"], "answer": 0, "kind": "colour"},
             {"prefix": "ax", "options": ["z", "y"], "answer": 0, "kind": "colour"},
             {"prefix": "ax", "options": ["y", "zz"], "answer": 0, "kind": "name"}]  # dropped: unequal length
    scored = score_items(model, tok, items)
    assert list(scored.correct) == [1.0, 0.0] and list(scored.n_options) == [2, 2]
    rows = {m: (v, n) for m, v, _, n in cloze_metrics(scored, len(items), 100)}
    assert rows["cloze_items_dropped"] == (1.0, 3) and rows["cloze_accuracy"] == (0.5, 2)
    assert rows["cloze_chance"] == (0.5, 2) and rows["cloze_accuracy_colour"] == (0.5, 2)
    (only,) = cloze_metrics(pd.DataFrame(columns=["kind", "n_options", "correct"]), 3, 100)  # nothing scored
    assert only[0] == "cloze_items_dropped" and only[1] == 3.0 and only[3] == 3
