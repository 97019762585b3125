"""The target fine-tuning CLI: trains on a world's records, unties the embeddings, logs the privacy spent, and
writes a model that loads with its tokenizer."""
import json

import pytest
import torch

pytest.importorskip("opacus", reason="opacus is installed by make setup (extra dp)")
pytest.importorskip("faker", reason="faker is installed by make setup (extra ner)")

from experiments.lm.build import build_model  # noqa: E402
from experiments.lm.load import load_model  # noqa: E402
from experiments.lm.tokenizer import documents_text, train_bpe  # noqa: E402
from experiments.pii_leakage import finetune  # noqa: E402
from experiments.pii_leakage.world import WorldConfig, make_world  # noqa: E402

SMALL = WorldConfig(duplication=(1, 4), members_per_level=3, n_nonmembers=4, n_public=4,
                    public_records_per_identity=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("pii")
    _, records = make_world(SMALL)
    texts = [r.text for r in records if r.split == "train"]
    tok = train_bpe([r.text for r in records], vocab_size=300)
    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=len(tok), d_model=32, n_layers=1, n_heads=2, context=128,
                        eos_id=tok.eos_token_id)
    assert model.config.tie_word_embeddings
    model.save_pretrained(d / "base")
    tok.save_pretrained(d / "base")
    (d / "train.txt").write_text(documents_text(texts), encoding="utf-8")
    return d, len(texts)


@pytest.mark.parametrize("epsilon", [None, 8.0])
def test_finetune_cli(base, tmp_path, epsilon):
    d, n = base
    cfg = {"epochs": 3, "batch_size": 4, "lr": 3e-3, "block": 96, "dp_epsilon": epsilon}
    finetune.main(["--base", f"dir:{d / 'base'}", "--text", str(d / "train.txt"), "--train-config", json.dumps(cfg),
                   "--threads", "1", "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "m"),
                   "--curve", str(tmp_path / "curve.csv")])
    meta = json.loads((tmp_path / "m" / "training.json").read_text())
    assert meta["n_records"] == n and meta["dp"] is (epsilon is not None)
    assert meta["steps_done"] == meta["steps"] == -(-3 * n // 4)
    if epsilon is not None:
        assert epsilon * 0.9 < meta["epsilon_rdp"] <= epsilon * 1.001
    assert not (tmp_path / "ck").exists()
    model, tok = load_model(f"dir:{tmp_path / 'm'}")
    assert not model.config.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr()
    orig, _ = load_model(f"dir:{d / 'base'}")
    assert not torch.equal(model.transformer.wte.weight, orig.transformer.wte.weight)
    assert len(tok) == len(load_model(f"dir:{d / 'base'}")[1])


def test_untie_copies_the_shared_weight():
    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=20, d_model=8, n_layers=1, n_heads=2, context=8, eos_id=0)
    before = model.transformer.wte.weight.detach().clone()
    finetune.untie_embeddings(model)
    assert model.lm_head.weight is not model.transformer.wte.weight
    assert torch.equal(model.lm_head.weight, before) and torch.equal(model.transformer.wte.weight, before)
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    assert torch.equal(model.transformer.wte.weight, before)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="epoch"):
        finetune.config_from_json('{"epoch": 4, "batch_size": 2, "lr": 1e-3}', 0)
