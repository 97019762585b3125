"""Record-level fine-tuning: it learns, DP spends the configured epsilon, an empty Poisson sample takes a
noise-only step, and a killed run resumes to the same weights."""
import pytest
import torch

pytest.importorskip("opacus", reason="opacus is installed by make setup (extra dp)")

from experiments.lm.finetune_records import RecordTrainConfig, finetune_records  # noqa: E402
from experiments.lm.records import per_record_loss, record_batch  # noqa: E402
from tests.helpers import tiny_gpt2 as make_tiny  # noqa: E402

RECORDS = [[2 + (i * 3 + j) % 12 for j in range(4 + i % 5)] for i in range(40)]


def tiny(seed=0):
    return make_tiny(layers=1, seed=seed)


def mean_loss(model):
    with torch.no_grad():
        return per_record_loss(model, record_batch(RECORDS, bos_id=0, pad_id=1, block=16)).mean().item()


def test_undefended_learns(tmp_path):
    model = tiny()
    before = mean_loss(model)
    rows, meta = finetune_records(model, RECORDS, RecordTrainConfig(epochs=15, batch_size=8, lr=1e-2, block=16),
                                  tmp_path, bos_id=0, pad_id=1, progress=False)
    assert meta["steps"] == 75 and not meta["dp"] and (rows["batch"] == 8).all()
    assert mean_loss(model) < 0.5 * before


def test_dp_spends_the_configured_epsilon_and_learns_less(tmp_path):
    cfg = RecordTrainConfig(epochs=15, batch_size=8, lr=1e-2, block=16, dp_epsilon=2.0, dp_clip=0.5)
    model = tiny()
    _, meta = finetune_records(model, RECORDS, cfg, tmp_path / "dp", bos_id=0, pad_id=1, progress=False)
    assert meta["delta"] == 1 / 40 and meta["noise_multiplier"] > 0.5
    assert 1.95 <= meta["epsilon_rdp"] <= 2.0 + 1e-6 and meta["epsilon_prv"] <= meta["epsilon_rdp"] + 1e-3
    plain = tiny()
    finetune_records(plain, RECORDS, RecordTrainConfig(epochs=15, batch_size=8, lr=1e-2, block=16), tmp_path / "p",
                     bos_id=0, pad_id=1, progress=False)
    assert mean_loss(plain) < mean_loss(model)


def test_empty_poisson_sample_takes_a_noise_only_step(tmp_path):
    # q = 1 / 40 per record: P(empty) = (39/40)^40 ~ 0.36, so some of 30 steps are empty
    cfg = RecordTrainConfig(epochs=0.75, batch_size=1, lr=1e-3, block=16, dp_epsilon=8.0, dp_clip=1.0)
    model = tiny()
    w0 = model.lm_head.weight.detach().clone()
    rows, _ = finetune_records(model, RECORDS, cfg, tmp_path, bos_id=0, pad_id=1, progress=False)
    assert (rows["batch"] == 0).any() and len(rows) == 30
    assert not torch.equal(w0, model.lm_head.weight)


@pytest.mark.parametrize("dp", [None, 4.0])
def test_resume_is_exact(tmp_path, dp):
    cfg = RecordTrainConfig(epochs=4, batch_size=8, lr=5e-3, block=16, dp_epsilon=dp, checkpoint_every=5)
    whole = tiny()
    r_whole, _ = finetune_records(whole, RECORDS, cfg, tmp_path / "a", bos_id=0, pad_id=1, progress=False)
    part = tiny()
    finetune_records(part, RECORDS, cfg, tmp_path / "b", bos_id=0, pad_id=1, max_steps=10, progress=False)
    resumed = tiny(seed=1)  # a fresh process: other weights until the checkpoint is loaded
    r_res, _ = finetune_records(resumed, RECORDS, cfg, tmp_path / "b", bos_id=0, pad_id=1, progress=False)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert r_whole["train_loss_nats"].tolist() == r_res["train_loss_nats"].tolist()


def test_dp_micro_batches_give_the_same_update(tmp_path):
    """Per-record clipping, then one noise draw per logical batch: micro-batches of 3 (opacus' virtual steps) end
    where the whole Poisson batch does, up to float round-off (and differ from no clipping at all)."""
    cfg = RecordTrainConfig(epochs=2, batch_size=8, lr=5e-3, block=16, dp_epsilon=4.0, dp_clip=0.5)
    whole, micro = tiny(), tiny()
    r_whole, _ = finetune_records(whole, RECORDS, cfg, tmp_path / "a", bos_id=0, pad_id=1, progress=False)
    cfg3 = RecordTrainConfig(**{**cfg.__dict__, "dp_micro_batch": 3})
    r_micro, _ = finetune_records(micro, RECORDS, cfg3, tmp_path / "b", bos_id=0, pad_id=1, progress=False)
    assert r_whole["batch"].tolist() == r_micro["batch"].tolist() and r_whole["batch"].max() > 3
    for a, b in zip(whole.parameters(), micro.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert r_whole["train_loss_nats"].tolist() == pytest.approx(r_micro["train_loss_nats"].tolist(), abs=1e-5)
    changed = tiny()
    assert any(not torch.allclose(a, b) for a, b in zip(changed.parameters(), micro.parameters()))
