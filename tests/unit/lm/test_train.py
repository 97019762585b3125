"""Trainer: lr schedule by hand, loss goes down, and a killed run resumes to the same weights."""
import math

import numpy as np
import pytest
import torch

from experiments.data.tokens import eval_blocks, random_batch
from experiments.lm.build import build_model, count_params
from experiments.lm.train import TrainConfig, lr_at, train


def test_lr_schedule_by_hand():
    cfg = TrainConfig(max_steps=110, batch_size=1, block_size=8, lr=1.0, min_lr=0.1, warmup_steps=10)
    assert lr_at(0, cfg) == pytest.approx(0.1)  # (0+1)/10
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)  # cosine start
    assert lr_at(60, cfg) == pytest.approx(0.1 + 0.5 * (1 + math.cos(math.pi * 0.5)) * 0.9)  # halfway: 0.55
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_train_config_rejects_unknown_key():
    with pytest.raises(ValueError, match="lr_typo"):
        TrainConfig.from_dict({"max_steps": 1, "lr_typo": 1})


def test_batches_and_blocks():
    stream = np.arange(100, dtype=np.uint16)
    x, y = random_batch(stream, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and torch.equal(y, x + 1)  # targets are the next tokens
    b = eval_blocks(stream, 30)
    assert b.shape == (3, 30) and b[1, 0] == 30
    tail = eval_blocks(stream, 30, 2, from_end=True)
    assert tail.shape == (2, 30) and tail[0, 0] == 40 and tail[-1, -1] == 99
    with pytest.raises(ValueError):
        eval_blocks(stream[:5], 30)


def _periodic_stream(n=6000, period=7, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(1, 20, period)
    return np.tile(base, n // period).astype(np.uint16)


def _model():
    torch.manual_seed(0)
    return build_model("gpt2", vocab_size=20, d_model=16, n_layers=1, n_heads=2, context=32, eos_id=0)


def test_training_lowers_loss(tmp_path):
    stream = _periodic_stream()
    cfg = TrainConfig(max_steps=60, batch_size=8, block_size=16, lr=1e-2, warmup_steps=5, eval_every=20,
                      eval_blocks=4, checkpoint_every=20)
    curve = train(_model(), stream, stream, cfg, tmp_path, progress=False)
    val = curve.val_loss_nats.dropna()
    assert len(val) == 3 and val.iloc[-1] < 0.5 * val.iloc[0]
    assert (tmp_path / "loss_curve.csv").exists()


class _Kill:
    """A step hook that raises at one step: simulates a job killed mid-run."""

    def __init__(self, at):
        self.at = at

    def before_step(self, step, model):
        if step == self.at:
            raise KeyboardInterrupt

    def state_dict(self):
        return {}

    def load_state_dict(self, state, model):
        pass


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    stream = _periodic_stream()
    cfg = TrainConfig(max_steps=30, batch_size=4, block_size=16, lr=5e-3, warmup_steps=3, eval_every=10,
                      eval_blocks=2, checkpoint_every=10)
    ref = _model()
    train(ref, stream, stream, cfg, tmp_path / "a", progress=False)

    killed = _model()
    with pytest.raises(KeyboardInterrupt):
        train(killed, stream, stream, cfg, tmp_path / "b", hooks=(_Kill(25),), progress=False)
    resumed = _model()  # a new process: fresh weights, state comes from the checkpoint at step 20
    curve = train(resumed, stream, stream, cfg, tmp_path / "b", progress=False)
    assert curve.step.tolist() == list(range(1, 31))
    for (name, p), q in zip(ref.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_nan_loss_fails_loudly(tmp_path):
    stream = _periodic_stream()
    cfg = TrainConfig(max_steps=5, batch_size=2, block_size=8, lr=1e-3, eval_blocks=1)
    nan_loss = lambda model, x, y: model(input_ids=x).logits.sum() * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="diverged"):
        train(_model(), stream, stream, cfg, tmp_path, loss_fn=nan_loss, progress=False)


def test_count_params_by_hand():
    m = build_model("gpt2", vocab_size=10, d_model=8, n_layers=1, n_heads=2, context=4, eos_id=0)
    n = count_params(m)
    # block: 2 LN (2*16) + attn (8*24+24 + 8*8+8) + mlp (8*32+32 + 32*8+8) = 32 + 288 + 552 = 872; ln_f 16
    assert n["params_non_embedding"] == 872 + 16
    assert n["params_total"] == 888 + 10 * 8 + 4 * 8
    neo = build_model("gpt_neo", vocab_size=10, d_model=8, n_layers=2, n_heads=2, context=4, eos_id=0)
    assert neo.config.attention_layers == ["global", "local"]


def test_defaults_are_the_schemas():
    import yaml

    from tests.helpers import ROOT

    props = yaml.safe_load((ROOT / "config" / "schemas" / "definitions.yaml").read_text())["definitions"]["train"]
    cfg = TrainConfig(max_steps=1, batch_size=1, block_size=8, lr=1e-3)
    for key, spec in props["properties"].items():
        if "default" in spec:
            value = getattr(cfg, key)
            assert (list(value) if isinstance(value, tuple) else value) == spec["default"], key
    assert set(props["required"]) == {"max_steps", "batch_size", "block_size", "lr"}
    with pytest.raises(TypeError):
        TrainConfig(max_steps=1)  # the schema's required fields are required here too
