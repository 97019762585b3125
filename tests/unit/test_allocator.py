"""experiments.allocator: glibc accepts the settings, and they change no number (allocation is not arithmetic)."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from experiments import allocator
from tests.helpers import ROOT

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")

TRAIN = '''
import hashlib, json, sys, torch
from experiments import allocator
tuned = allocator.tune() if sys.argv[1] == "tuned" else None
from experiments.lm.build import build_model
from experiments.lm.train import lm_loss
torch.set_num_threads(1)
torch.manual_seed(0)
m = build_model("gpt2", vocab_size=128, d_model=64, n_layers=2, n_heads=4, context=128, eos_id=0)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(0)
losses = []
for _ in range(6):
    x = torch.randint(0, 128, (4, 128), generator=g)
    loss = lm_loss(m, x[:, :-1], x[:, 1:])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    losses.append(loss.item())
h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in m.parameters())).hexdigest()
print(json.dumps({"tuned": tuned, "losses": losses, "weights": h}))
'''


@glibc
def test_glibc_accepts_every_setting_once_per_process():
    assert allocator.tune() is True
    assert allocator.tune() is True  # idempotent
    assert [p for p, _ in allocator.SETTINGS] == [allocator.M_MMAP_THRESHOLD, allocator.M_MMAP_MAX,
                                                   allocator.M_TRIM_THRESHOLD, allocator.M_TOP_PAD]


@glibc
def test_training_is_bitwise_the_same_with_and_without_the_settings():
    runs = {mode: json.loads(subprocess.run([sys.executable, "-c", TRAIN, mode], cwd=ROOT, capture_output=True,
                                            text=True, check=True, timeout=120).stdout.strip().splitlines()[-1])
            for mode in ("default", "tuned")}
    assert runs["tuned"]["tuned"] is True and runs["default"]["tuned"] is None
    assert runs["tuned"]["losses"] == runs["default"]["losses"]
    assert runs["tuned"]["weights"] == runs["default"]["weights"]
