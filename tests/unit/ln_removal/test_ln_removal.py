"""LN removal: FakeLayerNorm algebra, the c_attn split, per-path sigmas, the schedule, export, DLA, neurons."""
import numpy as np
import pytest
import torch
from torch import nn

from experiments.lm.arch import get_adapter, tiny_model
from experiments.ln_removal.analysis import (
    ablate_neurons,
    dla_check,
    mean_component_nmae,
    pick_entropy_neurons,
    pooled_ratio,
)
from experiments.ln_removal.fake_norm import FakeLayerNorm, SplitCAttn, fake_ln, per_token_std
from experiments.ln_removal.schedule import RemovalSchedule, ScheduleConfig, events, export_ln_free, fake_norms, install


def _ln(d=16, bias=True, seed=0):
    torch.manual_seed(seed)
    ln = nn.LayerNorm(d, bias=bias)
    with torch.no_grad():
        ln.weight.normal_()
        if bias:
            ln.bias.normal_()
    return ln


def test_fake_with_true_std_is_layernorm():
    ln = _ln()
    x = torch.randn(3, 7, 16) * 5 + 2
    sigma = per_token_std(x, ln.eps)
    torch.testing.assert_close(fake_ln(x, ln.weight, ln.bias, sigma), ln(x), atol=1e-6, rtol=1e-5)
    f = FakeLayerNorm(ln)
    torch.testing.assert_close(f(x), ln(x), atol=1e-6, rtol=1e-5)  # real mode


@pytest.mark.parametrize("bias", [True, False])
def test_fake_mode_is_affine_and_differs_by_std_ratio(bias):
    ln = _ln(bias=bias)
    f = FakeLayerNorm(ln)
    f.sigma.fill_(2.5)
    f.set_fake()
    x, y = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    z = torch.zeros_like(x)
    torch.testing.assert_close(f(x + y), f(x) + f(y) - f(z), atol=1e-5, rtol=1e-5)
    # fake - b = (LN(x) - b) * true_std / sigma: a known per-token rescaling, also without bias (bug fix)
    b = ln.bias if bias else 0
    expect = (ln(x) - b) * per_token_std(x, ln.eps) / 2.5 + b
    torch.testing.assert_close(f(x), expect, atol=1e-5, rtol=1e-5)
    # centering is kept: adding a constant to every channel changes nothing
    torch.testing.assert_close(f(x + 3.0), f(x), atol=1e-5, rtol=1e-5)


def test_ema_tracks_while_real_and_freezes_when_fake():
    f = FakeLayerNorm(_ln(), momentum=0.5).train()
    f(torch.randn(4, 8, 16) * 2)
    first = float(f.sigma)
    assert first == pytest.approx(2.0, rel=0.2)
    f(torch.randn(4, 8, 16) * 4)
    assert float(f.sigma) == pytest.approx(0.5 * first + 0.5 * 4.0, rel=0.15)
    f.set_fake()
    frozen = float(f.sigma)
    f(torch.randn(4, 8, 16) * 100)
    assert float(f.sigma) == frozen


def test_ln1_v_sigma_tracks_after_qk_event_and_freezes_at_v_event():
    f = FakeLayerNorm(_ln(), momentum=0.5, two_paths=True).train()
    f(torch.randn(4, 8, 16) * 2)
    assert float(f.sigma) == float(f.sigma_v)  # one input, both paths tracked
    f.set_fake("qk")
    qk_frozen = float(f.sigma)
    f(torch.randn(4, 8, 16) * 6)  # the ln_1 input's scale drifts between the two events
    assert float(f.sigma) == qk_frozen
    assert float(f.sigma_v) == pytest.approx(0.5 * qk_frozen + 0.5 * 6.0, rel=0.15)  # V still tracks
    f.set_fake("v")
    v_frozen = float(f.sigma_v)
    f(torch.randn(4, 8, 16) * 100)
    assert float(f.sigma) == qk_frozen and float(f.sigma_v) == v_frozen and v_frozen > 2 * qk_frozen
    # fully fake: each path divides by its own sigma
    x = torch.randn(2, 5, 16)
    out = f(x)
    assert out.shape[-1] == 32
    c = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(out[..., :16], c / qk_frozen * f.weight + f.bias)
    torch.testing.assert_close(out[..., 16:], c / v_frozen * f.weight + f.bias)


def test_single_path_norm_has_no_v_buffers():
    keys = set(FakeLayerNorm(_ln()).state_dict())
    assert keys == {"weight", "bias", "sigma", "sigma_pos0", "n_updates"}
    assert {"sigma_v", "sigma_v_pos0"} <= set(FakeLayerNorm(_ln(), two_paths=True).state_dict())


def test_pos0_sigma_applies_by_position_not_channel():
    f = FakeLayerNorm(_ln(), pos0=True).train()
    x = torch.randn(2, 6, 16)
    x[:, 0] *= 50  # massive BOS norm
    f(x)
    assert float(f.sigma_pos0) > 20 * float(f.sigma)
    f.set_fake()
    out = f(x)
    c = x - x.mean(-1, keepdim=True)
    torch.testing.assert_close(out[:, 0], c[:, 0] / f.sigma_pos0 * f.weight + f.bias)
    torch.testing.assert_close(out[:, 1:], c[:, 1:] / f.sigma * f.weight + f.bias)
    f.drop_pos0()
    torch.testing.assert_close(f(x)[:, 0], c[:, 0] / f.sigma * f.weight + f.bias)


def test_split_qk_v_paths():
    model = tiny_model("gpt2", d_model=16, n_layers=1, n_heads=2)
    ids = torch.randint(0, 96, (2, 10))
    ref = model(input_ids=ids).logits
    install(model, ScheduleConfig())
    torch.testing.assert_close(model(input_ids=ids).logits, ref, atol=1e-5, rtol=1e-5)  # all real: unchanged
    ln1 = fake_norms(model)[("ln_1", 0)]
    ln1.sigma.fill_(3.0)
    ln1.set_fake("qk")
    assert ln1.mode == "split"
    attn = get_adapter(model).attn(0)
    x = torch.randn(2, 10, 16)
    both = ln1(x)
    assert both.shape[-1] == 32
    qkv = attn.c_attn(both)
    conv_w, conv_b = attn.c_attn.weight, attn.c_attn.bias
    real, fake = ln1._norm(x, "real"), ln1._norm(x, "fake")
    torch.testing.assert_close(qkv[..., :32], (fake @ conv_w + conv_b)[..., :32])  # Q, K from the fake path
    torch.testing.assert_close(qkv[..., 32:], (real @ conv_w + conv_b)[..., 32:])  # V from the real path
    assert isinstance(attn.c_attn, SplitCAttn)
    assert "transformer.h.0.attn.c_attn.weight" in model.state_dict()


def test_schedule_events_scaled_and_exact():
    cfg = ScheduleConfig(start=200, gap_ln2=20, gap_qk=20, gap_v=30, gap_bos=120, pos0=True)
    ev = {e.name: e.step for e in events(cfg, 12)}  # Heimersheim's GPT-2 small schedule
    assert ev["ln_2.0"] == 200 and ev["ln_2.11"] == 420 and ev["ln_1qk.0"] == 440 and ev["ln_1qk.11"] == 660
    assert ev["ln_1v.0"] == 680 and ev["ln_1v.11"] == 1010 and ev["ln_f"] == 1040 and ev["bos"] == 1160
    model = tiny_model("gpt2", d_model=16, n_layers=2, n_heads=2)
    sched = RemovalSchedule(ScheduleConfig(start=3, gap_ln2=1, gap_qk=2, gap_v=1, pos0=True, gap_bos=2), 2)
    modes = []
    for step in range(14):
        sched.before_step(step, model)
        f = fake_norms(model)
        modes.append((f[("ln_2", 0)].mode, f[("ln_2", 1)].mode, f[("ln_1", 0)].mode, f[("ln_f", None)].mode,
                      f[("ln_f", None)].pos0))
    assert sched.fired_at == {"ln_2.0": 3, "ln_2.1": 4, "ln_1qk.0": 5, "ln_1qk.1": 7, "ln_1v.0": 9, "ln_1v.1": 10,
                              "ln_f": 11, "bos": 13}
    assert modes[2][0] == "real" and modes[3][0] == "fake" and modes[3][1] == "real" and modes[4][1] == "fake"
    assert modes[5][2] == "split" and modes[9][2] == "fake" and modes[10][3] == "real" and modes[11][3] == "fake"
    assert modes[12][4] and not modes[13][4]
    # load_state_dict replays the fired events on a fresh model
    fresh = tiny_model("gpt2", d_model=16, n_layers=2, n_heads=2)
    again = RemovalSchedule(sched.cfg, 2)
    again.load_state_dict(sched.state_dict(), fresh)
    assert again.fired == sched.fired
    assert all(f.mode == "fake" and not f.pos0 for f in fake_norms(fresh).values())
    assert set(fresh.state_dict()) == set(model.state_dict())
    keys = fresh.state_dict()
    assert "transformer.h.0.ln_1.sigma_v" in keys and "transformer.h.0.ln_2.sigma_v" not in keys


def _ln_free_model(seed=0, v_factor=1.0):
    """A tiny GPT-2 with every norm fake; ln_1's V sigma = v_factor x its Q/K sigma (as if the input drifted)."""
    model = tiny_model("gpt2", d_model=16, n_layers=2, n_heads=2, seed=seed)
    with torch.no_grad():  # non-trivial LN weights and biases, so the V fold's bias term is exercised
        for site in get_adapter(model).norms():
            site.module.weight.add_(0.3 * torch.randn_like(site.module.weight))
            site.module.bias.add_(0.3 * torch.randn_like(site.module.bias))
    install(model, ScheduleConfig())
    model.train()
    model(input_ids=torch.randint(0, 96, (4, 16)))  # EMA sigma from one batch
    model.eval()
    for (kind, _), f in fake_norms(model).items():
        f.set_fake()
        if kind == "ln_1":
            f.sigma_v.mul_(v_factor)
    return model


@pytest.mark.parametrize("v_factor", [1.0, 1.7])
def test_export_matches_fake_model(tmp_path, v_factor):
    from transformers import GPT2LMHeadModel

    model = _ln_free_model(v_factor=v_factor)
    ids = torch.randint(0, 96, (2, 12))
    before = model(input_ids=ids).logits
    export_ln_free(model)
    model.save_pretrained(tmp_path)
    loaded = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(input_ids=ids).logits, before, atol=1e-4, rtol=1e-4)


def test_export_needs_the_v_fold():
    """The V sigma matters: exporting ln_1 with the Q/K sigma alone (no fold) would change the logits."""
    from experiments.ln_removal import schedule

    model = _ln_free_model(v_factor=1.7)
    ids = torch.randint(0, 96, (2, 12))
    before = model(input_ids=ids).logits
    orig = schedule.fold_v_sigma
    schedule.fold_v_sigma = lambda conv, ln_1: None
    try:
        export_ln_free(model)
    finally:
        schedule.fold_v_sigma = orig
    assert (model(input_ids=ids).logits - before).abs().max() > 1e-3


def test_dla_identity_and_nmae_without_ln_only():
    ids = torch.randint(0, 96, (3, 12))
    res_ln = dla_check(tiny_model("gpt2", d_model=16, n_layers=2, n_heads=2), ids)
    free = export_ln_free(_ln_free_model(v_factor=1.3))
    res = dla_check(free, ids)
    assert res.max_abs_sum_error < 1e-4 and res_ln.max_abs_sum_error > 1e-3
    assert res.reconstruction_error < 1e-8
    assert res.components == ["embed", "attn.0", "mlp.0", "attn.1", "mlp.1"] and res.err_sum.shape == (3, 5)
    assert mean_component_nmae(res.err_sum, res.de_sum) < 1e-8
    assert mean_component_nmae(res_ln.err_sum, res_ln.de_sum) > 1e-3
    # per-component NMAE = ratio of the block sums; the bootstrap form (stacks of resampled blocks) agrees
    r = res_ln.rows()[2]
    assert r["nmae_dla_vs_de"] == pytest.approx(res_ln.err_sum[:, 2].sum() / res_ln.de_sum[:, 2].sum())
    idx = np.array([[0, 1, 2], [2, 2, 0]])
    boot = mean_component_nmae(res_ln.err_sum[idx], res_ln.de_sum[idx])
    assert boot.shape == (2,) and boot[0] == pytest.approx(mean_component_nmae(res_ln.err_sum, res_ln.de_sum))


def test_nmae_is_the_dla_error_of_a_hand_built_case():
    """One component, a scale that moves: DLA with the cached scale vs the true direct effect, by hand."""
    err = np.array([[1.0, 0.0], [3.0, 2.0]])
    de = np.array([[4.0, 1.0], [4.0, 1.0]])
    assert mean_component_nmae(err, de) == pytest.approx(((1 + 3) / 8 + (0 + 2) / 2) / 2)


def test_entropy_neurons_total_equals_direct_without_ln():
    ids = torch.randint(0, 96, (2, 12))
    free = export_ln_free(_ln_free_model())
    picked = pick_entropy_neurons(free, k=2)
    assert len(picked) == 2 and all(0 <= p["null_share"] <= 1 for p in picked)
    for r in ablate_neurons(free, ids, [p["neuron"] for p in picked]):
        assert r["total"].shape == (2, 12) and np.max(r["via_norm"]) < 1e-8
    lnm = tiny_model("gpt2", d_model=16, n_layers=2, n_heads=2)
    rows = ablate_neurons(lnm, ids, [p["neuron"] for p in pick_entropy_neurons(lnm, k=2)])
    assert max(np.max(r["via_norm"]) for r in rows) > 1e-8


def test_pooled_ratio_resamples_blocks():
    num = np.ones((2, 5, 4))  # 2 neurons, 5 blocks, 4 positions
    den = np.full((2, 5, 4), 2.0)
    value, (lo, hi), n = pooled_ratio(num, den, n_boot=200)
    assert value == pytest.approx(0.5) and lo == pytest.approx(0.5) and hi == pytest.approx(0.5) and n == 5
    num[:, 0] = 10.0  # one block with a large effect: the CI widens
    value, (lo, hi), n = pooled_ratio(num, den, n_boot=200)
    assert lo < value < hi


def test_with_seed_overlay_switches_fine_tuning_seed_and_base_models():
    from experiments.ln_removal.manifest import MANIFEST

    section = {"seed": 0, "per_model": {"w128_l4_s0": {"aux_weight": 0.0}},
               "models": [{"id": "w128_l2_s0", "spec": "dir:resources/tinystories/models/w128_l2_s0"},
                          {"id": "gpt2", "spec": "hub:gpt2"}]}
    over = MANIFEST.with_seed(section, 2)
    assert over["seed"] == 2
    assert over["models"] == [{"id": "w128_l2_s2", "spec": "dir:resources/tinystories/models/w128_l2_s2"},
                              {"id": "gpt2", "spec": "hub:gpt2"}]
    assert over["per_model"] == {"w128_l4_s2": {"aux_weight": 0.0}}
    assert section["models"][0]["id"] == "w128_l2_s0"  # the section itself is not modified
