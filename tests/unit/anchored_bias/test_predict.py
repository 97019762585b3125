"""Readouts and metrics on hand-made letter logits, and final_logits through the adapter with left padding."""
import numpy as np
import pandas as pd
import pytest
import torch

from experiments.anchored_bias import predict, prompts
from experiments.anchored_bias.items import build
from experiments.lm.arch import get_adapter, tiny_model
from tests.unit.anchored_bias.test_items import config, world_tokenizer

IDS = [10, 11, 12, 13, 14]  # token ids of " A" .. " E"


def _items(golds, ks):
    return pd.DataFrame({"item": [f"i{i}" for i in range(len(golds))], "topic": "t", "n_options": ks,
                         "gold": golds})


def test_predictions_by_hand():
    items = _items(["B", "A", "C", "E", "B"], [2, 3, 4, 5, 3])
    logits = np.array([[1.0, 3.0, 9.0, 0.0, 0.0],    # C is the largest but k = 2: B
                       [5.0, 1.0, 2.0, 7.0, 0.0],    # D beyond k = 3: A
                       [0.0, 1.0, 2.0, 0.5, 9.0],    # C
                       [0.0, 0.0, 0.0, 0.0, 4.0],    # E
                       [2.0, 1.0, 0.0, 0.0, 0.0]])   # A
    top = np.array([12, 10, 999, 14, 11])  # C (not an option of a 2-option item), A, no letter, E, B
    out = predict.predictions(items, logits, top, IDS)
    assert out["pred_option"].tolist() == ["B", "A", "C", "E", "A"]
    assert out["pred_vocab"].tolist() == ["", "A", "", "E", "B"]
    assert out["correct_option"].tolist() == [True, True, True, True, False]
    assert out["correct_vocab"].tolist() == [False, True, False, True, True]
    assert out["gap_A_minus_gold"].tolist() == [1 - 3, 0.0, 0 - 2, 0 - 4, 2 - 1]
    assert np.isnan(out.loc[0, "logit_C"]) and out.loc[1, "logit_C"] == 2.0 and np.isnan(out.loc[2, "logit_E"])
    assert out.loc[3, "logit_E"] == 4.0


def test_summarise_by_hand():
    pred = _items(["A", "B", "B", "C", "D", "A", "C"], [2, 3, 3, 4, 5, 2, 3])
    pred["pred_option"] = ["A", "A", "B", "A", "A", "B", "C"]
    pred["pred_vocab"] = ["A", "", "B", "A", "", "", "C"]
    s = predict.summarise(pred, "option")
    # gold != A: items 1-4 and 6 (5); predicted A among them: items 1, 3, 4 -> 3/5
    assert s == {"n": 7, "accuracy": pytest.approx(3 / 7), "n_gold_not_A": 5, "anchored_rate": pytest.approx(0.6),
                 "n_gold_A": 2, "accuracy_gold_A": pytest.approx(0.5), "pred_A_share": pytest.approx(4 / 7)}
    v = predict.summarise(pred, "vocab")  # "" is wrong and not A
    assert v["accuracy"] == pytest.approx(3 / 7) and v["anchored_rate"] == pytest.approx(1 / 5)
    assert v["accuracy_gold_A"] == pytest.approx(0.5) and v["pred_A_share"] == pytest.approx(2 / 7)


def test_summarise_without_gold_not_a_is_nan():
    pred = _items(["A", "A"], [2, 2])
    pred["pred_option"] = ["A", "B"]
    s = predict.summarise(pred)
    assert np.isnan(s["anchored_rate"]) and s["n_gold_not_A"] == 0 and s["accuracy"] == 0.5


def test_by_gold_position_by_hand():
    pred = _items(["A", "B", "B", "B", "C"], [3] * 5)
    pred["pred_option"] = ["A", "A", "B", "A", "C"]
    tab = predict.by_gold_position(pred)
    assert list(tab.columns) == ["A", "B", "C"] and list(tab.index) == ["A", "B", "C"]
    assert tab.loc["B", "A"] == pytest.approx(2 / 3) and tab.loc["B", "B"] == pytest.approx(1 / 3)
    assert tab.loc["A", "A"] == 1.0 and tab.loc["C", "C"] == 1.0 and tab.loc["A", "B"] == 0.0


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_final_logits_match_unpadded_forwards(family):
    tok = world_tokenizer()
    items = build(config())["eval"].iloc[:7].reset_index(drop=True)
    model = tiny_model(family, vocab_size=len(tok), n_ctx=64)
    ad = get_adapter(model)
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    calls = []

    def hooks(rows, cut):
        calls.append((rows.start, rows.stop, cut))
        return []

    ll, top = predict.final_logits(ad, enc, 3, hooks)
    assert ll.shape == (7, 5) and ll.dtype == np.float64 and top.shape == (7,)
    assert [c[:2] for c in calls] == [(0, 3), (3, 6), (6, 7)]
    with torch.no_grad():
        for i in range(7):
            ids = enc.input_ids[i][enc.attention_mask[i].bool()][None]  # the row without its padding
            want = model(input_ids=ids).logits[0, -1]
            np.testing.assert_allclose(ll[i], want[enc.letter_ids].double().numpy(), atol=1e-5)
            assert top[i] == int(want.argmax())
    ll1, top1 = predict.final_logits(ad, enc, 7)
    np.testing.assert_allclose(ll1, ll, atol=1e-5)
    pred = predict.predictions(items, ll, top, enc.letter_ids)
    assert len(pred) == 7 and set(pred["pred_option"]) <= set("ABCDE")
