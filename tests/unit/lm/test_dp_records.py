"""Record batches and one DP-SGD step against brute force: per-record clipped gradients, computed one record at a
time without padding, averaged over the expected batch size."""
import pytest
import torch

pytest.importorskip("opacus", reason="opacus is installed by make setup (extra dp)")

from experiments.lm.dp import dp_optimizer  # noqa: E402
from experiments.lm.records import IGNORE, per_record_loss, record_batch  # noqa: E402
from tests.helpers import tiny_gpt2 as make_tiny  # noqa: E402

RECORDS = [[5, 6, 7, 8, 9], [3, 4], [10, 11, 12]]


def tiny(seed=0):
    return make_tiny(positions=8, width=8, seed=seed, double=True)


def test_record_batch_by_hand():
    b = record_batch(RECORDS, bos_id=0, pad_id=1, block=4)
    assert b["input_ids"].tolist() == [[0, 5, 6, 7], [0, 3, 4, 1], [0, 10, 11, 12]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]]
    assert b["labels"][1].tolist() == [0, 3, 4, IGNORE]
    with pytest.raises(ValueError):
        record_batch([[]], bos_id=0, pad_id=1, block=4)


def test_padded_row_loss_equals_the_record_alone():
    model = tiny()
    batch = record_batch(RECORDS, bos_id=0, pad_id=1, block=8)
    losses = per_record_loss(model, batch)
    for i, r in enumerate(RECORDS):
        alone = per_record_loss(model, record_batch([r], bos_id=0, pad_id=1, block=8))
        assert losses[i].item() == pytest.approx(alone.item(), abs=1e-12)


@pytest.mark.parametrize("clip", [1e6, 0.05])
def test_dp_step_equals_mean_of_clipped_per_record_gradients(clip):
    ref = tiny()
    expected = {n: torch.zeros_like(p) for n, p in ref.named_parameters()}
    for r in RECORDS:  # brute force: one record at a time, no padding
        ref.zero_grad()
        per_record_loss(ref, record_batch([r], bos_id=0, pad_id=1, block=8)).sum().backward()
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in ref.parameters()))
        scale = min(1.0, clip / (norm.item() + 1e-6))
        for n, p in ref.named_parameters():
            expected[n] += p.grad * scale / len(RECORDS)
    model = tiny()
    gsm, opt = dp_optimizer(model, torch.optim.SGD(model.parameters(), lr=1.0), noise_multiplier=0.0,
                            max_grad_norm=clip, expected_batch_size=len(RECORDS))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    per_record_loss(gsm, record_batch(RECORDS, bos_id=0, pad_id=1, block=8)).mean().backward()
    opt.step()
    for n, p in model.named_parameters():
        torch.testing.assert_close(before[n] - p.detach(), expected[n], atol=1e-9, rtol=1e-6)
    if clip < 1:  # clipping bound every record's gradient: the step differs from the unclipped mean
        plain = tiny()
        per_record_loss(plain, record_batch(RECORDS, bos_id=0, pad_id=1, block=8)).mean().backward()
        assert any(not torch.allclose(p.grad, expected[n]) for n, p in plain.named_parameters())


def test_dp_noise_has_the_configured_std():
    model = tiny()
    gsm, opt = dp_optimizer(model, torch.optim.SGD(model.parameters(), lr=1.0), noise_multiplier=2.0,
                            max_grad_norm=0.5, expected_batch_size=4, seed=0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    gsm.zero_grad()
    (0.0 * per_record_loss(gsm, record_batch(RECORDS, bos_id=0, pad_id=1, block=8))).mean().backward()
    opt.step()
    step = before - torch.cat([p.detach().flatten() for p in model.parameters()])
    assert step.std().item() == pytest.approx(2.0 * 0.5 / 4, rel=0.1)  # sigma C / expected batch, zero gradient
