"""Completion-only loss after a marker, document-aligned windows (each opens at an EOT used as BOS), and a short
training run with both."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from experiments.data.tokens import document_batch, document_eval_blocks, document_starts, encode_documents
from experiments.lm.build import build_model
from experiments.lm.train import TrainConfig, marker_loss, train


class TableModel(torch.nn.Module):
    """logits[b, t] = table[x[b, t]] + t: fixed, and different at every position."""

    def __init__(self, vocab=10, seed=0):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed)))

    def forward(self, input_ids):
        t = torch.arange(input_ids.shape[1], dtype=torch.float32)[None, :, None]
        return type("Out", (), {"logits": self.table[input_ids] + 0.1 * t})


def test_marker_loss_is_cross_entropy_right_after_the_marker():
    model = TableModel()
    #                 0  1  2  3  4  5  6  7
    x = torch.tensor([[5, 6, 2, 5, 7, 5, 6, 4],     # marker ends at 1 and 6; "5 7" at 3-4 is no marker
                      [1, 2, 3, 4, 1, 2, 3, 5],     # ends with 5: the row below starts with 6, but rows are separate
                      [6, 3, 5, 5, 6, 9, 0, 0]])    # marker ends at 4 (5 5 6: the second 5 opens it)
    y = torch.tensor([[6, 2, 5, 7, 5, 6, 4, 8],
                      [2, 3, 4, 1, 2, 3, 5, 6],
                      [3, 5, 5, 6, 9, 0, 0, 1]])
    got = marker_loss([5, 6])(model, x, y)
    logits = model(x).logits
    hits = [(0, 1), (0, 6), (2, 4)]
    want = torch.stack([-F.log_softmax(logits[b, t], -1)[y[b, t]] for b, t in hits]).mean()
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert [int(y[b, t]) for b, t in hits] == [2, 4, 9]  # the tokens right after the marker
    lone = marker_loss([9])(model, x, y)  # a one-token marker: the position of the 9 itself
    assert lone.item() == pytest.approx((-F.log_softmax(logits[2, 5], -1)[0]).item(), rel=1e-6)
    got.backward()  # differentiable
    assert model.table.grad.abs().sum() > 0


def test_marker_loss_refuses_a_batch_without_the_marker_and_an_empty_marker():
    model = TableModel()
    x = torch.tensor([[1, 2, 3, 5], [6, 5, 5, 1]])
    with pytest.raises(ValueError, match="loss marker"):
        marker_loss([5, 6])(model, x, x)
    with pytest.raises(ValueError, match="loss marker"):
        marker_loss([1, 2, 3, 5, 6])(model, x, x)  # longer than the block
    with pytest.raises(ValueError, match="empty"):
        marker_loss([])


def test_document_starts_by_hand():
    stream = np.array([9, 0, 1, 2, 0, 3, 4, 5, 0, 6], dtype=np.uint16)  # EOT = 0 at 1, 4, 8
    assert document_starts(stream, 0, 3).tolist() == [1, 4]  # 8 + 4 > 10: no full window of 4 tokens
    assert document_starts(stream, 0, 5).tolist() == [1, 4]  # 4 + 6 = 10 fits exactly
    assert document_starts(stream, 0, 6).tolist() == [1]
    with pytest.raises(ValueError, match="no document boundary"):
        document_starts(stream, 0, 9)
    with pytest.raises(ValueError, match="no document boundary"):
        document_starts(stream, 7, 2)


def test_document_windows_open_at_eot():
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 50, rng.integers(3, 12)) for _ in range(200)]
    stream = np.concatenate([np.append(d, 0) for d in docs]).astype(np.uint16)
    starts = document_starts(stream, 0, 8)
    assert (stream[starts] == 0).all() and len(starts) >= 190
    x, y = document_batch(stream, starts, 64, 8, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (64, 8) and x.dtype == torch.int64
    assert (x[:, 0] == 0).all()  # every window opens at an EOT (the BOS of its document)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the next tokens
    begin = {int(s) for s in starts}
    for row_x, row_y in zip(x, y):
        s = next(s for s in begin if np.array_equal(stream[s:s + 8], row_x.numpy()))
        assert np.array_equal(stream[s + 1:s + 9], row_y.numpy())
    assert len({tuple(r.tolist()) for r in x}) > 30  # windows are drawn from many documents
    blocks = document_eval_blocks(stream, starts, 9, 5)
    assert blocks.shape == (5, 9) and (blocks[:, 0] == 0).all()
    assert blocks[:, 1:].tolist() == [stream[s + 1:s + 9].tolist() for s in starts[:5]]


def _item_streams():
    from experiments.anchored_bias.items import build
    from tests.unit.anchored_bias.test_items import config, world_tokenizer

    tok = world_tokenizer()
    train_items = build(config(n_options=[2, 3]))["train"]
    docs = [f"{p} {g}" for p, g in zip(train_items["prompt"], train_items["gold"])]
    stream = encode_documents(tok, docs, progress=False)
    return tok, stream[: len(stream) * 9 // 10], stream[len(stream) * 9 // 10:]


def test_short_training_run_with_document_windows_and_answer_only_loss(tmp_path):
    tok, train_stream, val_stream = _item_streams()
    eot = tok.eos_token_id
    ends = np.flatnonzero(train_stream == eot)
    block = int(np.diff(ends).max()) + 1  # the longest item (with its EOT) fits in one window
    marker = tok.encode(" Answer:", add_special_tokens=False)
    assert len(marker) == 2
    cfg = TrainConfig.from_dict(dict(max_steps=20, batch_size=8, block_size=block, lr=3e-3, warmup_steps=2,
                                     eval_every=10, eval_blocks=8, checkpoint_every=10, align="document",
                                     loss_after=" Answer:"))

    def fresh():
        torch.manual_seed(0)
        return build_model("gpt2", vocab_size=len(tok), d_model=16, n_layers=1, n_heads=2, context=64, eos_id=eot)

    model = fresh()
    curve = train(model, train_stream, val_stream, cfg, tmp_path, loss_fn=marker_loss(marker), progress=False,
                  doc_sep=eot)
    assert len(curve) == 20 and np.isfinite(curve["train_loss_nats"]).all()
    val = curve["val_loss_nats"].dropna()
    assert len(val) == 2 and np.isfinite(val).all()
    # the first step's loss is the marker loss of the initial model on the first document-aligned batch
    x, y = document_batch(train_stream, document_starts(train_stream, eot, block), 8, block,
                          torch.Generator().manual_seed(cfg.seed))
    with torch.no_grad():
        first = marker_loss(marker)(fresh().train(), x, y).item()
    assert curve["train_loss_nats"].iloc[0] == pytest.approx(first, rel=1e-5)
    with pytest.raises(ValueError, match="doc_sep"):
        train(model, train_stream, val_stream, cfg, tmp_path / "b", loss_fn=marker_loss(marker), progress=False)
    bad = TrainConfig.from_dict(dict(max_steps=1, batch_size=2, block_size=block, lr=1e-3, align="sideways"))
    with pytest.raises(ValueError, match="unknown align"):
        train(model, train_stream, val_stream, bad, tmp_path / "c", progress=False)
