"""Unit tests for experiments.files (atomic writes) and experiments.seeding."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from experiments.files import (
    atomic_dir,
    atomic_save_numpy,
    atomic_save_torch,
    atomic_write_csv,
    atomic_write_text,
    ensure_parent,
)
from experiments.seeding import seed_everything


def _names(directory):
    return sorted(p.name for p in directory.iterdir())


def test_ensure_parent(tmp_path):
    target = ensure_parent(tmp_path / "a" / "b" / "c.txt")
    assert target.parent.is_dir() and not target.exists()


def test_atomic_write_text_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "hello\n")
    atomic_write_text(path, "again\n")  # overwrite
    assert path.read_text() == "again\n"
    assert _names(path.parent) == ["out.txt"]
    assert path.stat().st_mode & 0o044  # readable by others (not mkstemp's 0600)


def test_atomic_write_text_failure_keeps_old(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_text(path, 123)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert _names(tmp_path) == ["out.txt"]


def test_atomic_write_csv_round_trip(tmp_path):
    df = pd.DataFrame({"model": ["a", None], "loss": [1.5, 2.0], "n": [1, 2], "ok": [True, False]})
    path = atomic_write_csv(df, tmp_path / "r.csv")  # NaN in a string column is fine
    pd.testing.assert_frame_equal(pd.read_csv(path), df.replace({None: np.nan}))
    assert _names(tmp_path) == ["r.csv"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_atomic_write_csv_refuses_nonfinite(tmp_path, bad):
    df = pd.DataFrame({"model": ["a", "b"], "loss": [1.0, 2.0], "ppl": [3.0, bad]})
    with pytest.raises(ValueError, match="'ppl'"):
        atomic_write_csv(df, tmp_path / "r.csv")
    assert _names(tmp_path) == []
    atomic_write_csv(df, tmp_path / "r.csv", allow_nan=["ppl", "optional_col_not_present"])
    assert (tmp_path / "r.csv").exists()
    atomic_write_csv(df, tmp_path / "r.csv", allow_nonfinite=["ppl"])  # alias
    # only the listed columns are checked
    atomic_write_csv(df, tmp_path / "r2.csv", check_finite_cols=["loss"])
    with pytest.raises(ValueError, match="'ppl'"):
        atomic_write_csv(df, tmp_path / "r3.csv", check_finite_cols=["loss", "ppl"])


def test_atomic_write_csv_nullable_and_bad_args(tmp_path):
    df = pd.DataFrame({"k": pd.array([1, None], dtype="Int64"), "s": ["x", "y"]})
    with pytest.raises(ValueError, match="'k'"):
        atomic_write_csv(df, tmp_path / "r.csv")
    with pytest.raises(ValueError, match="not in the frame"):
        atomic_write_csv(df, tmp_path / "r.csv", check_finite_cols=["nope"])
    with pytest.raises(ValueError, match="not numeric"):
        atomic_write_csv(df, tmp_path / "r.csv", check_finite_cols=["s"])


def test_atomic_dir_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "w.bin").write_bytes(b"1")
        assert not target.exists()
    assert _names(tmp_path) == ["model"]
    assert (target / "w.bin").read_bytes() == b"1"


def test_atomic_dir_cleans_up_on_exception(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "partial.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert _names(tmp_path) == []


def test_atomic_dir_existing(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(FileExistsError):
        with atomic_dir(target, overwrite=False):
            pass
    with atomic_dir(target) as tmp:  # replaces by default
        (tmp / "new.txt").write_text("new")
    assert _names(target) == ["new.txt"]
    assert _names(tmp_path) == ["model"]
    with pytest.raises(ValueError):
        with atomic_dir(target):
            raise ValueError
    assert _names(target) == ["new.txt"]  # untouched by a failed overwrite


def test_atomic_save_torch(tmp_path):
    obj = {"w": torch.arange(4.0), "step": 3}
    path = atomic_save_torch(obj, tmp_path / "ckpt" / "state.pt")
    loaded = torch.load(path)
    assert loaded["step"] == 3 and torch.equal(loaded["w"], obj["w"])
    assert _names(path.parent) == ["state.pt"]


def test_atomic_save_numpy(tmp_path):
    ids = np.arange(10, dtype=np.uint16)
    path = atomic_save_numpy(ids, tmp_path / "tokens" / "val.npy")
    assert _names(path.parent) == ["val.npy"]
    loaded = np.load(path, mmap_mode="r")
    assert loaded.dtype == np.uint16 and np.array_equal(loaded, ids)
    with pytest.raises(ValueError):
        atomic_save_numpy(np.array([object()]), tmp_path / "bad.npy")
    assert not (tmp_path / "bad.npy").exists()


def test_seed_everything_reproducible():
    import random

    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    assert seed_everything(123) == 123
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first
    with pytest.raises(ValueError):
        seed_everything(-1)
