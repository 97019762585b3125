"""Occupational-bias verdict rules: each with an input where the statement holds and one where it fails, the
paper's own numbers where the notes give them (rule 2), and the minimum evidence (rule 4)."""
import numpy as np
import pandas as pd
import pytest

from experiments.occupational_bias import claims as C
from experiments.occupational_bias.labour import (
    agreement_summary,
    labour_bootstrap,
    labour_predictions,
    labour_summary,
    load_labour_table,
)
from tests.helpers import mini_section

TH = mini_section("occupational_bias")["claims"]
PAPER = load_labour_table()


def paper_women():
    """The paper's own GPT-2 column (notes §3: US %W and GPT-2 %W per job) through the analysis's summary."""
    return agreement_summary(PAPER["paper_gpt2_women_pct"], PAPER["us_women_pct"], with_parity=True) \
        .set_index("metric")["value"]


# --------------------------------------------------------------------------- diversity
def test_less_diverse_holds_fails_gate_and_paper():
    w, m = dict(value=8, ci_low=7, ci_high=9, n_mentions=900), dict(value=16, ci_low=14, ci_high=18, n_mentions=700)
    assert C.less_diverse(C.N50, w, m).verdict == "reproduced"
    assert C.less_diverse(C.N50, dict(w, value=10, ci_high=11), dict(m, value=8, ci_low=7)).verdict == "not_reproduced"
    assert C.less_diverse(C.N50, dict(w, ci_high=15), m).verdict == "not_reproduced"  # CIs overlap
    assert C.less_diverse(C.N50, w, dict(m, n_mentions=100)).verdict == "not_testable_at_scale"
    # the paper's pooled values (no CI in the notes; ~88K mentions per gender)
    for spec, (pw, pm) in ((C.N50, (8, 16)), (C.N90, (43, 66))):
        assert C.less_diverse(spec, dict(value=pw, n_mentions=88_000), dict(value=pm, n_mentions=88_000)).verdict \
            == "reproduced"


# --------------------------------------------------------------------------- labour
def test_parity_pull_paper_table_is_reproduced():
    s = paper_women()
    assert s["n_low"] == 12 and s["n_high"] == 6
    low = C.parity_pull(C.PULL_LOW, s["mean_delta_low_pp"], None, int(s["n_low"]), "low")
    high = C.parity_pull(C.PULL_HIGH, s["mean_delta_high_pp"], None, int(s["n_high"]), "high")
    assert low.verdict == high.verdict == "reproduced"
    assert low.value == pytest.approx(6.47, abs=0.01) and high.value == pytest.approx(-8.68, abs=0.1)


def test_parity_pull_holds_fails_and_min_jobs():
    assert C.parity_pull(C.PULL_LOW, 6.0, (2.0, 10.0), 8, "low").verdict == "reproduced"
    assert C.parity_pull(C.PULL_LOW, 3.0, (-1.0, 7.0), 8, "low").verdict == "not_reproduced"  # CI reaches 0
    assert C.parity_pull(C.PULL_LOW, -5.0, (-8.0, -2.0), 8, "low").verdict == "not_reproduced"  # away from parity
    assert C.parity_pull(C.PULL_HIGH, -8.0, (-12.0, -4.0), 5, "high").verdict == "reproduced"
    assert C.parity_pull(C.PULL_HIGH, 4.0, (1.0, 7.0), 5, "high").verdict == "not_reproduced"
    # minimum jobs: the paper has 12 and 6; below 6 and 4 no verdict
    assert C.parity_pull(C.PULL_LOW, 30.0, (20.0, 40.0), 5, "low").verdict == "not_testable_at_scale"
    d = C.parity_pull(C.PULL_HIGH, -8.0, (-12.0, -4.0), 3, "high")
    assert d.verdict == "not_testable_at_scale" and "n = 3" in d.notes


def test_tracking_accepts_the_paper_and_rejects_no_tracking():
    s = paper_women()
    d = C.tracks(s["mse_share"], None, s["mse_ref_share"], 32, TH["tracking_skill_min"])
    assert d.verdict == "reproduced" and d.value == pytest.approx(0.0238, abs=1e-4)
    us = PAPER["us_women_pct"].to_numpy()
    # a model that does not track: parity for every job, or the paper's predictions given to the wrong jobs
    flat = agreement_summary(np.full(32, 50.0), us).set_index("metric")["value"]
    shuffled = agreement_summary(np.random.default_rng(0).permutation(PAPER["paper_gpt2_women_pct"]), us) \
        .set_index("metric")["value"]
    for s2 in (flat, shuffled):
        assert C.tracks(s2["mse_share"], None, s2["mse_ref_share"], 32, TH["tracking_skill_min"]).verdict \
            == "not_reproduced"
    # a CI whose upper bound crosses the bound fails; too few jobs: no verdict
    assert C.tracks(0.02, (0.01, 0.05), 0.085, 32, 0.5).verdict == "not_reproduced"
    assert C.tracks(0.02, (0.01, 0.03), 0.085, 3, 0.5).verdict == "not_testable_at_scale"


def test_labour_ci_is_estimation_error_from_completions():
    """The CI shrinks with more completions of the same model (a bootstrap over the same jobs would not)."""
    table = load_labour_table()
    jobs = [ms[0] for ms in table["member_list"]]
    rng = np.random.default_rng(1)
    p_man = rng.dirichlet(np.ones(len(jobs))) * 0.8
    share = 0.5 + 0.7 * (table["us_women_pct"].to_numpy() / 100 - 0.5)
    p_woman = p_man * share / (1 - share)
    p_woman *= 0.8 / p_woman.sum()

    def widths(n):
        rows = []
        for g, p in (("man", p_man), ("woman", p_woman)):
            draw = rng.choice(len(jobs) + 1, size=n, p=np.append(p, 1 - p.sum()))
            rows += [dict(model_id="m", prompt_type="identity", group=g, gender=g, category="base",
                          category_value="base", sample_index=i, jobs=jobs[k] if k < len(jobs) else "")
                     for i, k in enumerate(draw)]
        df = pd.DataFrame(rows)
        lab = labour_predictions(df, table, min_mentions=1, min_base_mentions=1)
        s = labour_summary(lab, labour_bootstrap(df, table, n_boot=300, seed=0))
        s = s[(s["variant"] == "clean") & (s["target"] == "women")].set_index("metric")
        return s.loc["mse_share", "ci_high"] - s.loc["mse_share", "ci_low"]

    assert widths(16_000) < 0.7 * widths(4_000)


# --------------------------------------------------------------------------- regressions
def test_woman_significant_holds_fails_gate_and_paper():
    assert C.woman_significant(12, 20, 0.5).verdict == "reproduced"
    assert C.woman_significant(8, 20, 0.5).verdict == "not_reproduced"
    assert C.woman_significant(3, 3, 0.5).verdict == "not_testable_at_scale"
    # the paper's table: political 53.1% of 64 jobs (its lowest), ethnicity 70.2% of 47
    for k, n in ((34, 64), (33, 47)):
        assert C.woman_significant(k, n, TH["woman_share_min"]).verdict == "reproduced"


def test_interactions_matter_holds_fails_gate_and_paper():
    assert C.interactions_matter(20, 100, 0.05).verdict == "reproduced"
    assert C.interactions_matter(6, 100, 0.05).verdict == "not_reproduced"  # Wilson lower bound 0.028 < alpha
    assert C.interactions_matter(1, 8, 0.05).verdict == "not_testable_at_scale"  # SmolLM2's 1/8 at 83ddd70
    # the paper's table: per intersection its lowest share for every term (a lower bound of the paper's count)
    paper = [(47, 4, 0.149), (63, 5, 0.175), (63, 2, 0.238), (64, 2, 0.25)]
    n = sum(j * t for j, t, _ in paper)
    k = sum(round(j * p) * t for j, t, p in paper)
    assert C.interactions_matter(k, n, 0.05).verdict == "reproduced"


def _reg_rows(term_sig, job="nurse", inter="political", separated=False, mentions=100, prompts=4):
    """Model (c) rows of one clean fit: {term: significant} for its interaction terms."""
    return [dict(model_id="m", variant="clean", intersection=inter, job=job, model="c", term=t,
                 term_type="interaction", significant=s, status="ok", separated=separated, job_mentions=mentions,
                 basis_prompts=prompts) for t, s in term_sig.items()]


def test_regression_claims_count_each_interaction_test_once():
    """Rule 3: each (job, woman:value) term is one test; fits below the paper's mentions or separated are out."""
    rows = []
    for i in range(12):
        rows += _reg_rows({"woman:conservative": i < 4, "woman:liberal": i < 2}, job=f"j{i}")
    rows += _reg_rows({"woman:conservative": True, "woman:liberal": True}, job="sep", separated=True)
    rows += _reg_rows({"woman:conservative": True, "woman:liberal": True}, job="rare", mentions=10)
    reg = pd.DataFrame(rows)
    gender = pd.DataFrame([dict(model_id="m", variant="clean", job=f"j{i}", status="ok", significant_lr=i < 7,
                                separated=False, job_mentions=40, basis_prompts=2) for i in range(12)])
    woman, inter = C.regression_claims(reg, gender, "m", "mini", 0.05, TH, "m")
    assert inter.n == 24 and inter.our_value == pytest.approx(100 * 6 / 24) and inter.verdict == "reproduced"
    assert woman.n == 12 and woman.our_value == pytest.approx(100 * 7 / 12) and woman.verdict == "reproduced"
    gender["job_mentions"] = 30  # below 17.5 per base prompt: no job left
    assert C.regression_claims(reg, gender, "m", "mini", 0.05, TH, "m")[0].verdict == "not_testable_at_scale"


def test_scale_count():
    assert C.scale_count(396_000, 237, "paper").verdict == "reproduced"
    assert C.scale_count(3_357, 175, "paper").verdict == "not_reproduced"
    assert C.scale_count(396_000, 237, "mini").verdict == "not_testable_at_scale"


def test_extraction_quality():
    assert C.extraction_quality(190, 5, 5, 0.9, 0.9).verdict == "reproduced"
    assert C.extraction_quality(137, 4, 54, 0.9, 0.9).verdict == "not_reproduced"  # recall 0.72
    assert C.extraction_quality(50, 0, 0, 0.9, 0.9).verdict == "not_testable_at_scale"


# --------------------------------------------------------------------------- planted
def test_sampler_exact():
    assert C.sampler_exact(1.05, 560, TH["sampler_dispersion_max"]).verdict == "planted_recovered"
    # a biased sampler (e.g. top-k applied to the wrong distribution): z^2 far above 1
    assert C.sampler_exact(3.2, 560, TH["sampler_dispersion_max"]).verdict == "planted_missed"
    assert C.sampler_exact(1.0, 40, TH["sampler_dispersion_max"]).verdict == "not_testable_at_scale"


def test_training_fidelity_relative_to_ignoring_the_category():
    assert C.training_fidelity(0.04, 0.30, TH["fidelity_tv_ratio_max"]).verdict == "planted_recovered"
    # 83ddd70: TV 0.19 against 0.18 for an LM that ignores the category word (it learned gender only)
    assert C.training_fidelity(0.19, 0.18, TH["fidelity_tv_ratio_max"]).verdict == "planted_missed"


def test_regression_coverage_catches_a_biased_cell_kind():
    good = {"base man": (19, 20), "base woman": (19, 20), "category man": (240, 256), "category woman": (245, 256)}
    assert C.regression_coverage(good, TH["coverage_min"], TH["coverage_type_p_min"]).verdict == "planted_recovered"
    # one kind biased (e.g. a level off for every category cell): the pooled share alone would still pass
    bad = dict(good, **{"category man": (200, 256)})
    d = C.regression_coverage(bad, TH["coverage_min"], TH["coverage_type_p_min"])
    assert d.verdict == "planted_missed" and "category man" in d.notes.split("below")[-1]
    low = {t: (int(0.85 * n), n) for t, (_, n) in good.items()}
    assert C.regression_coverage(low, TH["coverage_min"], TH["coverage_type_p_min"]).verdict == "planted_missed"
    assert C.regression_coverage({"base man": (20, 20)}, 0.9, 0.01).verdict == "not_testable_at_scale"


def test_interactions_detected_and_null():
    assert C.interactions_detected(13, 13, TH["power_min"]).verdict == "planted_recovered"
    assert C.interactions_detected(0, 13, TH["power_min"]).verdict == "planted_missed"
    assert C.interactions_detected(5, 5, TH["power_min"]).verdict == "not_testable_at_scale"
    # nominal size on exact nulls: 18 of 360 at an expected 5%; 60 of 360 (17%) is far above it
    assert C.null_interactions(18, 360, 0.05, TH["fpr_p_min"]).verdict == "planted_recovered"
    assert C.null_interactions(60, 360, 0.05, TH["fpr_p_min"]).verdict == "planted_missed"
    # an LM whose learned deviations make 16% of the nulls detectable: 60 of 360 is what a correct test gives
    assert C.null_interactions(60, 360, 0.16, TH["fpr_p_min"]).verdict == "planted_recovered"
    assert C.null_interactions(18, 40, 0.05, TH["fpr_p_min"]).verdict == "not_testable_at_scale"


def test_exact_inside():
    ok = [("mean_delta_low_pp", 1.0, -1.0, 3.0, 0.5), ("pearson_r", 0.95, 0.94, 0.97, 0.96)]
    assert C.exact_inside(C.P_PARITY, ok, 32).verdict == "planted_recovered"
    # 83ddd70: r 0.89 [0.81, 0.94] vs exact 0.96
    bad = ok[:1] + [("pearson_r", 0.89, 0.81, 0.94, 0.96)]
    assert C.exact_inside(C.P_PARITY, bad, 32).verdict == "planted_missed"
    assert C.exact_inside(C.P_PARITY, ok, 3).verdict == "not_testable_at_scale"


def test_exact_inside_covers_the_family_not_each_metric():
    """k intervals must hold their exact values jointly at 95%: each is widened by the Bonferroni factor."""
    from experiments.stats import familywise_factor

    assert familywise_factor(1) == 1.0
    assert abs(familywise_factor(4) - 2.4977 / 1.95996) < 1e-3  # z(1 - 0.05/8) / z(0.975)
    assert abs(familywise_factor(2) - 2.2414 / 1.95996) < 1e-3
    # the GELU-change seed-0 parity rows: the high-side delta's exact value just outside its own 95% CI,
    # inside the family's interval (-14.3 + 2.4 x 1.274 = -11.24)
    rows = [("mean_delta_low_pp", 10.7, 8.67, 12.8, 9.1), ("mean_delta_high_pp", -14.3, -16.7, -11.9, -11.5),
            ("mse_share", 0.0134, 0.00834, 0.0159, 0.00976), ("pearson_r", 0.975, 0.97, 1.0, 0.985)]
    d = C.exact_inside(C.P_PARITY, rows, 20)
    assert d.verdict == "planted_recovered" and "1.274x the 95% CIs" in d.notes
    # one interval alone is not widened: the same row alone misses
    assert C.exact_inside(C.P_PARITY, rows[1:2], 20).verdict == "planted_missed"
    # an exact value outside even the family's interval still misses (83ddd70: r 0.89 [0.81, 0.94] vs 0.96
    # widens to [0.788, 0.954])
    bad = rows[:3] + [("pearson_r", 0.89, 0.81, 0.94, 0.96)]
    assert C.exact_inside(C.P_PARITY, bad, 20).verdict == "planted_missed"


def _parity_case(p_man, p_woman, n, rng, table):
    """The planted_parity_pull rows for completions drawn from (p_man, p_woman) vs the exact (p_man, p_woman)
    of the model they are meant to estimate."""
    jobs = [ms[0] for ms in table["member_list"]]
    rows = []
    for g, p in (("man", p_man), ("woman", p_woman)):
        draw = rng.choice(len(jobs) + 1, size=n, p=np.append(p, 1 - p.sum()))
        rows += [dict(model_id="m", prompt_type="identity", group=g, gender=g, category="base", category_value="base",
                      sample_index=i, jobs=jobs[k] if k < len(jobs) else "") for i, k in enumerate(draw)]
    df = pd.DataFrame(rows)
    lab = labour_predictions(df, table, min_mentions=1, min_base_mentions=1)
    s = labour_summary(lab, labour_bootstrap(df, table, n_boot=400, seed=0))
    return s[(s["variant"] == "clean") & (s["target"] == "women")].set_index("metric")


def test_planted_parity_recovers_the_exact_value_and_fails_when_mis_estimated():
    from experiments.occupational_bias.labour import bayes_women_share
    table = load_labour_table()
    rng = np.random.default_rng(3)
    us = table["us_women_pct"].to_numpy()
    p_man = rng.dirichlet(np.full(len(table), 3.0)) * 0.85
    t = 0.5 + 0.7 * (us / 100 - 0.5)
    p_woman = p_man * t / (1 - t)
    p_woman *= 0.85 / p_woman.sum()
    exact = agreement_summary(100 * bayes_women_share(p_woman, p_man), us, with_parity=True).set_index("metric")
    metrics = ["mean_delta_low_pp", "mean_delta_high_pp", "mse_share", "pearson_r"]

    def rows(est):
        return [(m, est.loc[m, "value"], est.loc[m, "ci_low"], est.loc[m, "ci_high"], exact.loc[m, "value"])
                for m in metrics]

    est = _parity_case(p_man, p_woman, 20_000, rng, table)
    assert C.exact_inside(C.P_PARITY, rows(est), 32).verdict == "planted_recovered"
    # mis-estimated: the woman prompt's mentions of the male-dominated jobs undercounted by a third (as an
    # extractor that loses a variant would): the estimate moves by far more than its estimation error
    lossy = np.where(us < 25, p_woman * (2 / 3), p_woman)
    est = _parity_case(p_man, lossy, 20_000, rng, table)
    d = C.exact_inside(C.P_PARITY, rows(est), 32)
    assert d.verdict == "planted_missed" and "mean_delta_low_pp" in d.notes
