"""anchored_bias.analyse end to end on a tiny random GPT-2 with a planted value vector: the eval baseline it reads
from the cached residual + the blocks after the located vector equals a plain full forward, the locate baseline
(read from the lens forward) equals one too, and --no-edits writes the eval predictions only."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from experiments.anchored_bias import analyse, edit, predict, prompts
from experiments.anchored_bias.items import LETTERS, build
from experiments.lm.arch import get_adapter
from tests.unit.anchored_bias.test_items import config, world_tokenizer
from tests.unit.anchored_bias.test_lens import random_model

OPTIONS = {"batch_size": 16, "top_neurons": 10, "gap_threshold": 4.0, "threshold_scale": "fixed", "lam1": 1.0,
           "lam2": 8.0, "lam2_sweep": [0.0, 8.0], "label_free_max": 64.0, "label_free_steps": 6, "n_vectors": 1,
           "n_heads": 2, "n_locate": 60, "n_eval": 40, "plant_topics": ["tool"]}
PLANT = (1, 7, 6.0)  # layer, neuron, multiple of u_A


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("ab")
    tok = world_tokenizer()
    model = random_model("gpt2", len(tok))
    ad = get_adapter(model)
    layer, neuron, strength = PLANT
    letter_ids = prompts.answer_token_ids(tok, "plain")
    edit.RowEdits(ad, [(layer, neuron, edit.anchor_delta(ad, letter_ids, strength))]).apply()  # saved planted
    with torch.no_grad():
        model.transformer.h[layer].mlp.c_fc.bias[neuron] += 3.0  # the neuron fires on every item
    model.save_pretrained(d / "model")
    tok.save_pretrained(d / "model")
    splits = build(config())
    splits["locate"].to_csv(d / "locate.csv", index=False)
    splits["eval"].to_csv(d / "eval.csv", index=False)
    return d, tok


def run(d, tag, *extra):
    out = d / tag
    analyse.main(["--spec", f"dir:{d / 'model'}", "--model-id", "m", "--locate", str(d / "locate.csv"),
                  "--eval", str(d / "eval.csv"), "--options", json.dumps(OPTIONS), "--seed", "0", "--threads", "1",
                  *extra, *[a for k in analyse.OUTPUTS for a in (f"--out-{k}", str(out / f"{k}.csv"))]])
    return {k: pd.read_csv(out / f"{k}.csv") for k in analyse.OUTPUTS}


def full_forward(d, tok, split: str) -> np.ndarray:
    from experiments.lm.load import load_model

    model, _ = load_model(f"dir:{d / 'model'}")
    items = pd.read_csv(d / f"{split}.csv").head(OPTIONS[f"n_{split}"])
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    ll, _ = predict.final_logits(get_adapter(model.requires_grad_(False)), enc, 7)  # other batches than the run
    return predict.predictions(items, ll, np.zeros(len(items), int), enc.letter_ids)[
        [f"logit_{x}" for x in LETTERS]].to_numpy()


def test_baselines_equal_the_full_forward(world):
    d, tok = world
    out = run(d, "edits")
    meta = out["meta"].iloc[0]
    assert meta["located"] == f"L{PLANT[0]}N{PLANT[1]}"  # a vector was located, so eval went through the cache
    assert meta["partial_forward_max_abs_diff"] < 1e-4
    assert meta["partial_forward_checked_items"] == OPTIONS["batch_size"]
    assert meta["n_failing_eval"] > 0
    cols = [f"logit_{x}" for x in LETTERS]
    p = out["predictions"]
    base = p[p["condition"] == "baseline"][cols].to_numpy()
    assert np.nanmax(np.abs(base - full_forward(d, tok, "eval"))) < 1e-4
    s = out["summary"]
    assert set(s.loc[s["condition"] == "baseline", "split"]) == {"eval", "locate"}
    loc = s[(s["split"] == "locate") & (s["subset"] == "all") & (s["readout"] == "option")].iloc[0]
    full_loc = full_forward(d, tok, "locate")
    gold = pd.read_csv(d / "locate.csv").head(OPTIONS["n_locate"])["gold"].to_numpy()
    acc = (np.array(list(LETTERS))[np.nanargmax(full_loc, axis=1)] == gold).mean()
    assert loc["accuracy"] == pytest.approx(acc)
    assert {"oracle_mlp", "label_free_mlp", "oracle_attention_swap"} <= set(p["condition"])


def test_no_edits_writes_the_eval_baseline_only(world):
    d, tok = world
    out = run(d, "plain", "--no-edits")
    assert set(out["summary"]["split"]) == {"eval"}
    assert set(out["predictions"]["condition"]) == {"baseline"}
    cols = [f"logit_{x}" for x in LETTERS]
    assert np.nanmax(np.abs(out["predictions"][cols].to_numpy() - full_forward(d, tok, "eval"))) < 1e-4
    assert out["meta"].iloc[0]["located_on"] == "not run (--no-edits)"


TEXTS = ["Which one is a fruit? Answer: apple", "A red car and a blue bus.", "The dog and the cat."]


def per_text_nll(d, tok, texts, max_tokens):
    """Pooled next-token loss with one unpadded forward per text (no batching, no mask)."""
    from experiments.lm.load import load_model

    model, _ = load_model(f"dir:{d / 'model'}")
    total, count = 0.0, 0
    with torch.no_grad():
        for t in texts:
            ids = torch.tensor([[prompts.bos_id(tok)] + tok.encode(t, add_special_tokens=False)[:max_tokens]])
            logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
            total -= float(logp.gather(-1, ids[0, 1:, None]).sum())
            count += ids.shape[1] - 1
    return total / count, count


def test_general_text_side_effect(world):
    d, tok = world
    from experiments.lm.tokenizer import EOT

    (d / "general.txt").write_text("".join(f"{t}\n{EOT}\n" for t in TEXTS))
    out = run(d, "general", "--general-text", str(d / "general.txt"), "--general-max-tokens", "6")
    meta = out["meta"].iloc[0]
    want, n = per_text_nll(d, tok, TEXTS, 6)
    assert meta["general_n_tokens"] == n
    assert meta["general_nll_baseline"] == pytest.approx(want, abs=1e-4)  # batched + right-padded = one by one
    for col in ("general_nll_label_free", "general_nll_oracle_mean", "general_nll_oracle_max"):
        assert np.isfinite(meta[col]) and meta[col] != pytest.approx(meta["general_nll_baseline"], abs=1e-6)
    assert meta["general_nll_oracle_max"] >= meta["general_nll_oracle_mean"]
    (d / "empty.txt").write_text("")
    meta = run(d, "general_missing", "--general-text", str(d / "empty.txt"), "--general-max-tokens", "6")["meta"]
    assert meta.iloc[0]["general_text"].startswith("not run: missing data")
    assert "general_nll_baseline" not in meta.columns


def test_signed_edits_flip_the_update_for_a_negative_coefficient():
    delta = torch.tensor([0.5, -1.25, 3.0])
    vectors = [(1, 7), (0, 3)]
    out = analyse.signed_edits(vectors, {(1, 7): 1.0, (0, 3): -1.0}, delta)
    assert [(l, n) for l, n, _ in out] == vectors
    assert torch.equal(out[0][2], delta)  # +1: the notebook's update, bit for bit
    assert torch.equal(out[1][2], -delta)


def test_located_vector_sign_is_recorded(world):
    d, _ = world
    meta = run(d, "sign")["meta"].iloc[0]
    k = float(str(meta["located_mean_activation"]).split(";")[0])
    assert k > 0  # the planted neuron fires positively (bias +3): the update is applied unflipped
