"""LN-removal verdict rules: a holds and a fails input each, the papers' own numbers (rule 2), the min-n gates,
and the CSV plumbing of evaluate_claims (sanity checks separate from claims)."""
import numpy as np
import pandas as pd
import pytest

from experiments.ln_removal import claims as C
from tests.helpers import mini_section

TH = mini_section("ln_removal")["claims"]  # the schema's defaults as the workflow passes them


# --------------------------------------------------------------------------- small_ce_cost / xl_ce_cost

def test_small_ce_cost_holds_and_fails():
    ok = C.small_ce_cost(0.0029, (0.0011, 0.0049), 0.4165, 64, TH["max_rel_delta_ce"])
    assert ok.verdict == "reproduced" and ok.value == pytest.approx(0.0029 / 0.4165) and ok.n == 64
    # the same absolute gap that passes on GPT-2's loss scale (0.03 nats ~ 1%) fails on a 0.45-nat loss (6.7%)
    bad = C.small_ce_cost(0.030, (0.025, 0.035), 0.45, 64, TH["max_rel_delta_ce"])
    assert bad.verdict == "not_reproduced"
    assert C.small_ce_cost(0.030, (0.025, 0.035), 3.0, 64, TH["max_rel_delta_ce"]).verdict == "reproduced"
    # a point estimate under the target whose CI reaches over it does not pass
    assert C.small_ce_cost(0.010, (0.002, 0.016), 0.45, 64, TH["max_rel_delta_ce"]).verdict == "not_reproduced"


def test_small_ce_cost_bracket_when_the_base_still_learns():
    """ΔCE vs the original base bounds the removal cost from below, ΔCE vs the control from above."""
    th = TH["max_rel_delta_ce"]
    # seed 2's w128_l2 base before converge rounds: vs control +3.6% [3.2, 4.1], vs original -1.4%
    straddle = C.small_ce_cost(0.0193, (0.0170, 0.0218), 0.532, 64, th, vs_original=(-0.008, (-0.011, -0.005), 0.559))
    assert straddle.verdict == "not_testable_at_scale" and "straddles" in straddle.notes
    assert straddle.value == pytest.approx(0.0193 / 0.532)
    # both ends above the threshold: the cost is large whatever the control learned
    big = C.small_ce_cost(0.05, (0.045, 0.055), 0.45, 64, th, vs_original=(0.03, (0.025, 0.035), 0.47))
    assert big.verdict == "not_reproduced"
    # the upper end below: reproduced, whatever the lower end says
    small = C.small_ce_cost(0.004, (0.003, 0.0056), 0.372, 64, th, vs_original=(0.0002, (-0.0018, 0.0021), 0.3765))
    assert small.verdict == "reproduced"
    # a converged base (the papers'): both ends agree, and a large gap fails
    conv = C.small_ce_cost(0.03, (0.025, 0.035), 0.45, 64, th, vs_original=(0.03, (0.025, 0.035), 0.45))
    assert conv.verdict == "not_reproduced"


def test_small_ce_cost_min_n():
    d = C.small_ce_cost(0.001, (0.0, 0.002), 0.45, 12, TH["max_rel_delta_ce"])
    assert d.verdict == "not_testable_at_scale" and "n = 12" in d.notes


@pytest.mark.parametrize("model", ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"])
def test_ce_rule_accepts_baronis_model_card_numbers(model):
    """Rule 2: Baroni et al.'s own OWT val CE (model cards), LN-free vs vanilla, pass the rule."""
    lnf, vanilla, _ = C.BARONI_OWT[model]
    spec = C.CE_XL if model == "gpt2-xl" else C.CE_SMALL
    d = C.small_ce_cost(lnf - vanilla, None, vanilla, C.BARONI_EVAL_BLOCKS, TH["max_rel_delta_ce"], spec)
    assert d.verdict == "reproduced"


def test_ce_rule_accepts_heimersheims_blog_numbers():
    """Rule 2: Heimersheim's blog table, OWT, FT without LN vs FT with LN (the blog gives no n: at the minimum)."""
    lnf, ft_ln = C.HEIMERSHEIM_OWT
    assert C.small_ce_cost(lnf - ft_ln, None, ft_ln, C.CE_SMALL.min_n, TH["max_rel_delta_ce"]).verdict == "reproduced"


def test_paper_value_at_paper_scale_is_the_protocol_run():
    spec = C._ce_spec(C.CE_SMALL, "gpt2", "paper")
    assert "+0.0671" in spec.paper_value and "gpt2_aux" in spec.paper_value
    assert "+0.0671" in C.CE_SMALL.paper_value  # mini: the protocol scaled down is Baroni's gpt2_aux


# --------------------------------------------------------------------------- dla_exact

def test_dla_exact_holds_and_fails():
    ok = C.dla_exact(0.30, (0.29, 0.31), 8e-15, 16, TH["dla_orig_nmae_min"], TH["dla_free_nmae_tol"])
    assert ok.verdict == "reproduced" and ok.value == 0.30
    # the original's DLA already accurate: nothing for removal to make exact
    flat = C.dla_exact(0.01, (0.008, 0.012), 8e-15, 16, TH["dla_orig_nmae_min"], TH["dla_free_nmae_tol"])
    assert flat.verdict == "not_reproduced" and "not shown to be inexact" in flat.notes
    # LN-free not exact (e.g. ln_f left real)
    left = C.dla_exact(0.30, (0.29, 0.31), 0.2, 16, TH["dla_orig_nmae_min"], TH["dla_free_nmae_tol"])
    assert left.verdict == "not_reproduced" and "not exact" in left.notes
    assert C.dla_exact(0.30, (0.29, 0.31), 0.0, 4, 0.05, 1e-6).verdict == "not_testable_at_scale"


# --------------------------------------------------------------------------- confidence neurons

def test_confidence_neurons_holds_fails_and_premise():
    args = (TH["min_norm_amplification"], TH["max_total_ratio"])
    ok = C.confidence_neurons(5.0, (4.0, 6.0), 0.2, (0.15, 0.25), 16, *args)
    assert ok.verdict == "reproduced"
    kept = C.confidence_neurons(5.0, (4.0, 6.0), 0.9, (0.8, 1.0), 16, *args)  # LN-free total effect did not drop
    assert kept.verdict == "not_reproduced"
    none = C.confidence_neurons(0.5, (0.42, 0.62), 0.55, (0.47, 0.64), 16, *args)  # the norm damps: no such neurons
    assert none.verdict == "not_testable_at_scale" and "no confidence neurons" in none.notes
    assert C.confidence_neurons(5.0, (4.0, 6.0), 0.2, (0.15, 0.25), 4, *args).verdict == "not_testable_at_scale"


# --------------------------------------------------------------------------- sublinear_data

def test_sublinear_accepts_baronis_budgets():
    """Rule 2: the *_aux budgets (tokens used per size, from the configs) give slope ~0.37 < 1."""
    d = C.sublinear_data(list(C.BARONI_BUDGETS), list(C.BARONI_BUDGETS.values()))
    assert d.verdict == "reproduced" and d.value == pytest.approx(0.371, abs=0.002) and d.ci[1] < 1


def test_sublinear_fails_on_linear_data_and_gates_on_sizes():
    params = [1e5, 4e5, 1.6e6, 6.4e6]
    linear = C.sublinear_data(params, [30 * p * (1 + 0.05 * (-1) ** i) for i, p in enumerate(params)])
    assert linear.verdict == "not_reproduced" and linear.value == pytest.approx(1.0, abs=0.05)
    assert C.sublinear_data(params[:2], [1e5, 2e5]).verdict == "not_testable_at_scale"


def test_tokens_to_target_censoring():
    pts = pd.DataFrame(dict(tokens=[100, 300, 1000], meets=[False, True, True]))
    assert C.tokens_to_target(pts) == (300.0, False)
    assert C.tokens_to_target(pts.assign(meets=True)) == (100.0, True)  # smallest tried already meets: upper bound
    assert C.tokens_to_target(pts.assign(meets=False)) == (None, True)


# --------------------------------------------------------------------------- evaluate_claims plumbing

def _frames(amp=0.5, delta=0.003, orig_nmae=0.3):
    m = "w128_l2_s0"
    ce = pd.DataFrame([
        dict(model_id=m, variant="with_ln", metric="ce_nats", value=0.4165, ci_low=0.41, ci_high=0.42, n=64),
        dict(model_id=m, variant="original", metric="ce_nats", value=0.456, ci_low=0.45, ci_high=0.46, n=64),
        dict(model_id=m, variant="ln_free", metric="ce_nats", value=0.4195, ci_low=0.41, ci_high=0.43, n=64),
        dict(model_id=m, variant="ln_free", metric="delta_ce_vs_control_nats", value=delta, ci_low=delta - 0.002,
             ci_high=delta + 0.002, n=64)])
    dla = pd.DataFrame([
        dict(model_id=m, variant=v, component="mean_over_components", metric="nmae_dla_vs_de", value=x,
             ci_low=0.98 * x, ci_high=1.02 * x, n=16) for v, x in (("original", orig_nmae), ("ln_free", 8e-15),
                                                                    ("with_ln", 0.29))] + [
        dict(model_id=m, variant=v, component="all", metric="max_abs_sum_error", value=x, ci_low=np.nan,
             ci_high=np.nan, n=16) for v, x in (("original", 13.2), ("ln_free", 1.4e-13))])
    neurons = pd.DataFrame([
        dict(model_id=m, variant="original", neuron=220, metric="mean_abs_dentropy_total", value=2e-4, ci_low=1e-4,
             ci_high=3e-4, n=16),
        dict(model_id=m, variant="original", neuron=-1, metric="amplification_total_over_direct", value=amp,
             ci_low=0.85 * amp, ci_high=1.15 * amp, n=16),
        dict(model_id=m, variant="ln_free", neuron=-1, metric="total_ratio_vs_control", value=0.3, ci_low=0.25,
             ci_high=0.35, n=16),
        dict(model_id=m, variant="ln_free", neuron=-1, metric="ln_mediated_share", value=1e-12, ci_low=1e-12,
             ci_high=1e-12, n=16)])
    fit = pd.DataFrame([dict(model_id=m, params_non_embedding=396800, tokens_to_target=102400.0, censored=True,
                             n_budgets=2)])
    return ce, dla, neurons, fit


def test_evaluate_claims_reads_the_csvs_and_separates_sanity():
    rows, sanity = C.evaluate_claims(*_frames(), TH, "mini")
    v = {r.claim_id: r.verdict for r in rows}
    assert v == {"small_ce_cost": "reproduced", "dla_exact": "reproduced",
                 "confidence_neurons_inactive": "not_testable_at_scale", "xl_ce_cost": "not_testable_at_scale",
                 "sublinear_data": "not_testable_at_scale", "pile_hellaswag": "not_testable_at_scale",
                 "rmsnorm_smollm2": "not_testable_at_scale"}
    assert {s.check_id: s.passed for s in sanity} == {"dla_sum_identity": True, "neurons_no_norm_path": True}
    sub = next(r for r in rows if r.claim_id == "sublinear_data")
    assert "n = 0" in sub.notes and "<= 102400 tokens" in sub.notes
    rows, _ = C.evaluate_claims(*_frames(amp=5.0, delta=0.05, orig_nmae=0.01), TH, "mini")
    v = {r.claim_id: r.verdict for r in rows}
    assert v["confidence_neurons_inactive"] == "reproduced" and v["small_ce_cost"] == "not_reproduced"
    assert v["dla_exact"] == "not_reproduced"


def test_claims_rules_take_no_default_thresholds():
    """Every threshold comes from the config block (defaults in the schema only)."""
    for key in TH:
        with pytest.raises(KeyError):
            C.evaluate_claims(*_frames(), {k: v for k, v in TH.items() if k != key}, "mini")


def test_evaluate_claims_reads_the_converge_rounds():
    conv = [pd.DataFrame([dict(model_id="w128_l2_s0", round=r, steps=300 * r, val_ce_before=0.5, val_ce_after=0.49,
                               rel_gain=g, tol=0.015, converged=c, seconds=1.0)
                          for r, g, c in ((1, 0.05, False), (2, g2, c2))]) for g2, c2 in ((0.004, True), (0.03, False))]
    ok, capped = (next(r for r in C.evaluate_claims(*_frames(), TH, "mini", c)[0] if r.claim_id == "small_ce_cost")
                  for c in conv)
    assert ok.verdict == "reproduced" and "trained 2 LN-kept round(s)" in ok.notes and "(plateau)" in ok.notes
    assert capped.verdict == "reproduced" and "last gain 3.00% (no plateau" in capped.notes
    empty = pd.DataFrame(columns=["model_id", "round", "steps", "val_ce_before", "val_ce_after", "rel_gain", "tol",
                                  "converged", "seconds"])
    plain = next(r for r in C.evaluate_claims(*_frames(), TH, "mini", empty)[0] if r.claim_id == "small_ce_cost")
    assert plain.verdict == "reproduced" and "round" not in plain.notes  # bases used as they are (paper)


def test_evaluate_claims_brackets_with_the_original():
    ce, dla, neurons, fit = _frames(delta=0.02)  # +4.8% of the control's CE
    m = "w128_l2_s0"
    def row(v, lo, hi):
        return pd.DataFrame([dict(model_id=m, variant="ln_free", metric="delta_ce_vs_original_nats", value=v,
                                  ci_low=lo, ci_high=hi, n=64)])

    def verdict(extra):
        rows = C.evaluate_claims(pd.concat([ce, extra]), dla, neurons, fit, TH, "mini")[0]
        return next(r for r in rows if r.claim_id == "small_ce_cost")
    assert verdict(row(-0.016, -0.02, -0.012)).verdict == "not_testable_at_scale"  # control learned 0.036 more
    assert verdict(row(0.02, 0.018, 0.022)).verdict == "not_reproduced"  # control learned nothing: a real cost
