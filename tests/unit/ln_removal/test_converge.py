"""converge.py: the plateau rule, the round loop (stop at the plateau, stop at the cap, resume), and the
claim's premise that reads its rounds table."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from experiments.ln_removal import claims as C
from experiments.ln_removal import converge as V
from tests.helpers import mini_section

TH = mini_section("ln_removal")["claims"]


def test_relative_gain_and_plateau():
    assert V.relative_gain(0.5, 0.45) == pytest.approx(0.10)
    assert V.relative_gain(0.4, 0.41) == pytest.approx(-0.025)  # got worse: a plateau (or past it)
    assert V.plateau_reached([0.05, 0.009], 0.01, 1) and V.plateau_reached([-0.02], 0.01, 1)
    assert not V.plateau_reached([0.011], 0.01, 1)
    # patience 2: one small round is a false plateau (a d64 base: +1.1%, then +10.5%)
    assert not V.plateau_reached([0.011], 0.015, 2) and not V.plateau_reached([0.105, 0.011], 0.015, 2)
    assert V.plateau_reached([0.105, 0.011, 0.004], 0.015, 2)
    with pytest.raises(ValueError):
        V.relative_gain(0.0, 0.1)


@pytest.mark.parametrize("bad", [dict(round_steps=0), dict(max_rounds=0), dict(tol=0.0), dict(tol=1.0),
                                 dict(patience=0)])
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        V.ConvergeConfig(**{**dict(round_steps=10, max_rounds=3, tol=0.01, eval_blocks=8), **bad})


class _Fake:
    """Stands in for train/evaluate: each round 'trains' by popping the next validation CE."""

    def __init__(self, ces):
        self.ces, self.trained = list(ces), 0

    def train(self, model, *a, **k):
        self.trained += 1

    def evaluate(self, model, blocks):
        return self.ces[min(self.trained, len(self.ces) - 1)]


def _rounds(monkeypatch, tmp_path, ces, max_rounds, tol=0.01, fake=None, patience=1):
    fake = fake or _Fake(ces)
    monkeypatch.setattr(V, "train", fake.train)
    monkeypatch.setattr(V, "evaluate", fake.evaluate)
    model = torch.nn.Linear(2, 2)
    val = np.arange(2000, dtype=np.uint16)
    cfg = V.ConvergeConfig(round_steps=5, max_rounds=max_rounds, tol=tol, eval_blocks=8, patience=patience)
    seen = []
    out = V.run_rounds(model, val, val, dict(batch_size=2, block_size=16, lr=1e-3), cfg, 0, str(tmp_path), "m",
                       progress=False, on_round=lambda r, m, rows: seen.append(r))
    return out, fake, seen


@pytest.mark.parametrize("ces, tol, rounds", [([1.0, 0.9, 0.85, 0.849, 0.7], 0.01, 3),   # 10%, 5.9%, 0.12%
                                              ([1.0, 0.9, 0.85, 0.849, 0.7], 0.08, 2),   # 5.9% < 8%
                                              ([1.0, 0.995], 0.01, 1)])                 # already at a plateau
def test_rounds_stop_at_the_plateau(monkeypatch, tmp_path, ces, tol, rounds):
    out, fake, seen = _rounds(monkeypatch, tmp_path, ces, max_rounds=6, tol=tol)
    assert len(out) == rounds == fake.trained and seen == list(range(1, rounds + 1))
    assert out.converged.tolist() == [False] * (rounds - 1) + [True]
    assert out.val_ce_before.iloc[0] == 1.0 and out.val_ce_after.iloc[-1] == ces[rounds]
    assert (out.val_ce_before.iloc[1:].to_numpy() == out.val_ce_after.iloc[:-1].to_numpy()).all()
    assert out.steps.tolist() == [5 * r for r in range(1, rounds + 1)] and (out.tol == tol).all()


def test_patience_skips_a_false_plateau(monkeypatch, tmp_path):
    ces = [1.0, 0.995, 0.9, 0.898, 0.897, 0.5]  # +0.5% (false plateau), +9.5%, +0.2%, +0.1%
    out, _, _ = _rounds(monkeypatch, tmp_path, ces, max_rounds=6, tol=0.01, patience=2)
    assert out.converged.tolist() == [False, False, False, True] and out.val_ce_after.iloc[-1] == 0.897
    one, _, _ = _rounds(monkeypatch, tmp_path / "p1", ces, max_rounds=6, tol=0.01, patience=1)
    assert len(one) == 1 and bool(one.converged.iloc[0])  # patience 1 would have stopped on it


def test_rounds_stop_at_the_cap_unconverged(monkeypatch, tmp_path):
    out, fake, _ = _rounds(monkeypatch, tmp_path, [1.0, 0.9, 0.8, 0.7], max_rounds=2)
    assert len(out) == 2 and not out.converged.any()
    assert out.rel_gain.iloc[-1] == pytest.approx(1 / 9)


def test_resume_after_a_finished_round(monkeypatch, tmp_path):
    """A killed run restarts at the round after the last finished one, from its recorded CE."""
    (tmp_path / "rounds.json").write_text(json.dumps([dict(model_id="m", round=1, steps=5, val_ce_before=1.0,
                                                           val_ce_after=0.9, rel_gain=0.1, tol=0.01,
                                                           converged=False, seconds=1.0)]))
    fake = _Fake([0.895])  # the next round barely moves: plateau at round 2
    out, fake, seen = _rounds(monkeypatch, tmp_path, None, max_rounds=6, fake=fake)
    assert fake.trained == 1 and seen == [2] and out["round"].tolist() == [1, 2]
    assert out.val_ce_before.iloc[1] == 0.9 and bool(out.converged.iloc[-1])


def test_round_data_seeds_differ_from_the_arms(monkeypatch, tmp_path):
    seeds = []
    monkeypatch.setattr(V, "train", lambda model, tr, va, cfg, *a, **k: seeds.append(cfg.seed))
    ces = iter([1.0, 0.5, 0.499])
    monkeypatch.setattr(V, "evaluate", lambda model, blocks: next(ces))
    val = np.arange(2000, dtype=np.uint16)
    V.run_rounds(torch.nn.Linear(2, 2), val, val, dict(batch_size=2, block_size=16, lr=1e-3),
                 V.ConvergeConfig(5, 4, 0.01, 8, patience=1), 7, str(tmp_path), progress=False)
    assert seeds == [7 + V.ROUND_SEED_OFFSET + 1, 7 + V.ROUND_SEED_OFFSET + 2] and 7 not in seeds


# --------------------------------------------------------------------------- the claim's premise

def _conv(converged, gain, rounds=3, model="w128_l2_s0"):
    return pd.DataFrame([dict(model_id=model, round=r, steps=300 * r, val_ce_before=0.5, val_ce_after=0.49,
                              rel_gain=0.05 if r < rounds else gain, tol=0.015,
                              converged=converged if r == rounds else False, seconds=10.0)
                         for r in range(1, rounds + 1)])


def test_base_plateau_reads_the_last_round():
    b = C.base_plateau(_conv(True, 0.004), "w128_l2_s0")
    assert b == C.BasePlateau(True, 3, 0.004, 0.015)
    assert C.base_plateau(_conv(True, 0.004), "other") is None
    assert C.base_plateau(pd.DataFrame(columns=_conv(True, 0.0).columns), "w128_l2_s0") is None


def test_small_ce_cost_reports_the_base_rounds():
    ok = C.small_ce_cost(0.0029, (0.0011, 0.0049), 0.4165, 64, TH["max_rel_delta_ce"],
                         base=C.BasePlateau(True, 3, 0.004, 0.015))
    assert ok.verdict == "reproduced" and "3 LN-kept round(s)" in ok.notes and "(plateau)" in ok.notes
    capped = C.small_ce_cost(0.0029, (0.0011, 0.0049), 0.4165, 64, TH["max_rel_delta_ce"],
                             base=C.BasePlateau(False, 4, 0.021, 0.015))
    assert capped.verdict == "reproduced" and "no plateau" in capped.notes  # the bracket decides, not the cap


def test_report_section_lists_the_rounds():
    lines = C.converge_lines(_conv(False, 0.021, rounds=3))
    assert any("| w128_l2_s0 | 3 | 0.5000 → 0.4900 | +5.0%, +5.0%, +2.1% | no (round cap) |" == x for x in lines)
    assert C.converge_lines(None) == [] and C.converge_lines(_conv(True, 0.0).iloc[:0]) == []
