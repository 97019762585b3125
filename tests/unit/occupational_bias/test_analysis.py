"""Occupational-bias analysis (Kirk et al. 2021): mention tables, diversity metrics, logits, labour comparison.

Hand-computed answers are in the comments; every check can fail if the code is wrong.
"""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy.special import expit

from experiments.occupational_bias.diversity import coverage_n, diversity_table, gini, gini_observed
from experiments.occupational_bias.frequency import design_frame, mention_counts, unit_totals, validate_completions
from experiments.occupational_bias.labour import (
    agreement_summary,
    labour_predictions,
    load_labour_table,
    paper_self_check,
)
from experiments.occupational_bias.regress import (
    design_matrix,
    fit_cells,
    is_separated,
    saturated_log_odds,
    summarise_regressions,
)


def completions(rows, model_id="m"):
    """rows: (group, gender, category, category_value, jobs string)."""
    df = pd.DataFrame(rows, columns=["group", "gender", "category", "category_value", "jobs"])
    df.insert(0, "model_id", model_id)
    df.insert(1, "prompt_type", "identity")
    df["sample_index"] = df.groupby("group").cumcount()
    df["n_jobs"] = df["jobs"].map(lambda s: len(s.split("|")) if s else 0)
    return df


# --------------------------------------------------------------------------- diversity metrics
def test_gini_statsdirect_by_hand():
    # [1,2,3,4]: weights 2i-n-1 = -3,-1,1,3 -> (-3-2+3+12) / (4*10) = 0.25
    assert gini([4, 1, 3, 2]) == pytest.approx(0.25)
    # [0,0,0,10]: 3*10 / (4*10) = 0.75
    assert gini([0, 0, 10, 0]) == pytest.approx(0.75)
    # shares [0,0,0,1] + 1e-7 each: numerator (-3-1+1+3)e-7 + 3 = 3, denominator 4(1 + 4e-7)
    assert gini([0, 0, 0, 1], epsilon=1e-7) == pytest.approx(0.75 / (1 + 4e-7), rel=1e-12)
    # observed-only: zeros dropped -> [1,2,3,4] -> 0.25; a single job -> 0; equal counts -> 0
    assert gini_observed([0, 4, 0, 1, 3, 2]) == pytest.approx(0.25)
    assert gini_observed([0, 0, 7]) == 0.0
    assert gini_observed([5, 5, 0]) == 0.0
    # vectorised over rows = row by row
    m = np.array([[0, 4, 0, 1, 3, 2], [0, 0, 0, 0, 0, 7], [1, 1, 1, 1, 1, 9]])
    np.testing.assert_allclose(gini_observed(m), [gini_observed(r) for r in m])
    np.testing.assert_allclose(gini(m, epsilon=1e-7), [gini(r, epsilon=1e-7) for r in m])


def test_coverage_n_by_hand():
    # sorted 50,30,10,5,5 of 100: cumulative 50 -> N50 = 1 (exactly 50%); 50+30+10 = 90 -> N90 = 3
    c = [5, 10, 50, 5, 30]
    assert coverage_n(c, 0.5) == 1 and coverage_n(c, 0.9) == 3
    # shares: 0.7 + 0.2 = 0.8999999999999999 < 0.9 * 1.0 in floating point, yet the top 2 hold exactly 90%
    assert coverage_n([0.05, 0.7, 0.05, 0.2], 0.9) == 2
    assert coverage_n([25, 25, 25, 25], 0.5) == 2 and coverage_n([25, 25, 25, 25], 0.9) == 4
    assert coverage_n([49, 1, 50], 0.5) == 1  # top job 50 of 100: exactly half
    assert coverage_n([49, 2, 49], 0.5) == 2  # top job 49 of 100 < half; 49 + 49 = 98
    assert coverage_n([0, 0], 0.5) == 0
    np.testing.assert_array_equal(coverage_n(np.array([c, [25, 25, 25, 25, 0]]), 0.9), [3, 4])


# --------------------------------------------------------------------------- frequency tables
def test_k_squared_rows_quirk_and_clean_multi_hot():
    df = completions([("man", "man", "base", "base", "nurse|teacher"),  # k = 2 -> 4 rows
                      ("man", "man", "base", "base", ""),               # no job -> 1 all-zero row
                      ("man", "man", "base", "base", "nurse"),          # k = 1 -> 1 row
                      ("woman", "woman", "base", "base", "maid|maid")])  # k = 2, same job twice -> 4 rows
    f = design_frame(df, "faithful")
    assert len(f) == 4 + 1 + 1 + 4
    assert f.groupby("completion").size().tolist() == [4, 1, 1, 4]
    first = f[f["completion"] == 0]
    assert first["nurse"].sum() == 2 and first["teacher"].sum() == 2  # each job counted k = 2 times
    assert (first[["nurse", "teacher"]].sum(axis=1) == 1).all()  # every row one-hot
    assert f.loc[f["completion"] == 1, ["maid", "nurse", "teacher"]].to_numpy().sum() == 0  # the zero row
    assert f.loc[f["completion"] == 3, "maid"].sum() == 4

    c = design_frame(df, "clean")
    assert len(c) == 4
    assert c[["maid", "nurse", "teacher"]].to_numpy().tolist() == [[0, 1, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0]]

    # the fast count path equals the design frame's column sums and row counts
    for variant, frame in (("faithful", f), ("clean", c)):
        counts = mention_counts(df, variant, ["group"]).set_index(["group", "job"])["mentions"]
        expect = frame.groupby("group")[["maid", "nurse", "teacher"]].sum().stack()
        assert counts.to_dict() == expect[expect > 0].to_dict()
        tot = unit_totals(df, variant, ["group"]).set_index("group")
        assert tot["n_rows"].to_dict() == frame.groupby("group").size().to_dict()
        assert tot.loc["man", "n_no_job"] == 1 and tot.loc["man", "n_completions"] == 3
    assert unit_totals(df, "faithful", ["group"]).set_index("group").loc["man", "n_mentions"] == 5  # 2+2+1


def test_n_jobs_mismatch_warns_and_missing_column_raises():
    df = completions([("man", "man", "base", "base", "nurse|teacher")]).assign(n_jobs=1)
    with pytest.warns(UserWarning, match="n_jobs"):
        validate_completions(df)
    with pytest.raises(ValueError, match="jobs"):
        validate_completions(df.drop(columns="jobs"))


# --------------------------------------------------------------------------- diversity table
def _two_group_table():
    # man: A x3, B x1 (and one completion without a job); woman: A x2, B x2; Black man: C x1
    rows = [("man", "man", "base", "base", j) for j in ("A", "A", "A", "B", "")]
    rows += [("woman", "woman", "base", "base", j) for j in ("A", "A", "B", "B")]
    rows += [("Black man", "man", "ethnicity", "black", "C")]
    return completions(rows)


def _metric(t, variant, group, metric, level="group"):
    r = t[(t["variant"] == variant) & (t["group"] == group) & (t["metric"] == metric) & (t["level"] == level)]
    assert len(r) == 1, (variant, group, metric, len(r))
    return r.iloc[0]


def test_diversity_table_by_hand():
    t = diversity_table(_two_group_table(), n_boot=200, seed=1)
    # man counts [A 3, B 1]: N50 = 1 (3/4), N90 = 2; no-job share 1/5
    assert _metric(t, "clean", "man", "n50")["value"] == 1 and _metric(t, "clean", "man", "n90")["value"] == 2
    assert _metric(t, "clean", "man", "no_job_share")["value"] == pytest.approx(0.2)
    assert _metric(t, "faithful", "man", "n_rows")["value"] == 5 and _metric(t, "clean", "man", "n_rows")["value"] == 5
    # clean Gini over observed [1, 3]: (-1*1 + 1*3) / (2*4) = 0.25; woman [2, 2] -> 0
    assert _metric(t, "clean", "man", "gini")["value"] == pytest.approx(0.25)
    assert _metric(t, "clean", "woman", "gini")["value"] == pytest.approx(0.0)
    # faithful: vocabulary of the identity matrix = {A, B, C}; man shares (.75, .25, 0) + 1e-7:
    # sorted weights -2, 0, 2 -> 2 * .75 / (3 (1 + 3e-7)) = 0.5 / (1 + 3e-7); woman (.5, .5, 0) -> (1/3) / (1 + 3e-7)
    g_man = _metric(t, "faithful", "man", "gini")["value"]
    assert g_man == pytest.approx(0.5 / (1 + 3e-7), rel=1e-12)
    assert _metric(t, "faithful", "woman", "gini")["value"] == pytest.approx((1 / 3) / (1 + 3e-7), rel=1e-12)
    assert _metric(t, "faithful", "man", "gini_rel_base_man")["value"] == pytest.approx(100)
    assert _metric(t, "faithful", "woman", "gini_rel_base_man")["value"] == pytest.approx(100 * 2 / 3)
    # pooled over all identity prompts per gender: man + Black man = A 3, B 1, C 1
    men = t[(t["level"] == "prompt_type") & (t["gender"] == "man") & (t["variant"] == "clean")]
    assert men.set_index("metric").loc["n_mentions", "value"] == 5
    # a group whose completions are all the same has a degenerate bootstrap; others bracket the estimate
    bm = _metric(t, "clean", "Black man", "n50")
    assert bm["ci_low"] == bm["ci_high"] == 1
    for m in ("n50", "n90", "gini"):
        r = _metric(t, "faithful", "man", m)
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    # seeded: same table twice
    pd.testing.assert_frame_equal(t, diversity_table(_two_group_table(), n_boot=200, seed=1))


def test_diversity_counts_match_frequency_tables():
    rng = np.random.default_rng(0)
    jobs = np.array(["A", "B", "C", "D", "A|B", "C|C", "", "D|A|B"], dtype=object)
    rows = [(g, g, "base", "base", j) for g in ("man", "woman") for j in rng.choice(jobs, 300)]
    df = completions(rows)
    t = diversity_table(df, n_boot=0)
    for variant in ("faithful", "clean"):
        tot = unit_totals(df, variant, ["group"]).set_index("group")["n_mentions"]
        rows_ = unit_totals(df, variant, ["group"]).set_index("group")["n_rows"]
        for g in ("man", "woman"):
            assert _metric(t, variant, g, "n_mentions")["value"] == tot[g]
            assert _metric(t, variant, g, "n_rows")["value"] == rows_[g]


# --------------------------------------------------------------------------- regressions
def _simulate_rows(seed=0, n_cell=(400, 700, 900, 500, 650, 800)):
    rng = np.random.default_rng(seed)
    cells = [(g, v) for g in ("man", "woman") for v in ("base", "x", "y")]
    eta = {("man", "base"): -1.5, ("man", "x"): -1.0, ("man", "y"): -2.0,
           ("woman", "base"): -0.5, ("woman", "x"): -0.8, ("woman", "y"): -1.9}
    rows = []
    for (g, v), n in zip(cells, n_cell):
        y = rng.random(n) < expit(eta[(g, v)])
        rows.append(pd.DataFrame({"gender": g, "category_value": v, "y": y.astype(int)}))
    return pd.concat(rows, ignore_index=True)


SMF_FORMULAS = {"a": "y ~ C(category_value, Treatment('base'))",
                "b": "y ~ C(category_value, Treatment('base')) + woman",
                "c": "y ~ C(category_value, Treatment('base')) * woman"}


def _smf_name(name):
    name = name.replace("C(category_value, Treatment('base'))[T.", "").replace("]", "")
    if name == "Intercept":
        return "intercept"
    if ":woman" in name:
        return "woman:" + name.replace(":woman", "")
    return name


@pytest.mark.parametrize("model", ["a", "b", "c"])
def test_grouped_binomial_glm_equals_row_level_smf_logit(model):
    rows = _simulate_rows()
    rows["woman"] = (rows["gender"] == "woman").astype(int)
    ref = smf.logit(SMF_FORMULAS[model], rows).fit(disp=0, tol=1e-12)
    cells = rows.groupby(["gender", "category_value"]).agg(n=("y", "size"), successes=("y", "sum")).reset_index()
    fit = fit_cells(cells, model)
    mine = fit.terms.set_index("term")
    ref_coef = ref.params.rename(index=_smf_name)
    ref_se = ref.bse.rename(index=_smf_name)
    assert sorted(mine.index) == sorted(ref_coef.index)
    np.testing.assert_allclose(mine.loc[ref_coef.index, "coef"], ref_coef, atol=1e-6)
    np.testing.assert_allclose(mine.loc[ref_se.index, "se"], ref_se, atol=1e-6)
    np.testing.assert_allclose(mine.loc[ref_coef.index, "pvalue"], ref.pvalues.rename(index=_smf_name), atol=1e-6)
    assert fit.llf == pytest.approx(ref.llf, abs=1e-6)
    assert fit.llnull == pytest.approx(ref.llnull, abs=1e-6)
    assert fit.prsquared == pytest.approx(ref.prsquared, abs=1e-9)
    assert fit.status == "ok" and not fit.separated


def test_saturated_log_odds_and_recovery_of_planted_coefficients():
    planted = {"intercept": -2.0, "x": 0.5, "y": -0.3, "woman": 1.2, "woman:x": -0.8, "woman:y": 0.0}
    cells = pd.DataFrame([(g, v) for g in ("man", "woman") for v in ("base", "x", "y")],
                         columns=["gender", "category_value"])
    x, names, _ = design_matrix(cells, "c")
    p = expit(x @ np.array([planted[n] for n in names]))
    truth = saturated_log_odds(cells.assign(p=p)).set_index("term")["value"]
    for term, value in planted.items():
        assert truth[term] == pytest.approx(value, abs=1e-12)

    rng = np.random.default_rng(3)
    n = 20000
    covered = []
    for rep in range(60):
        fit = fit_cells(cells.assign(n=n, successes=rng.binomial(n, p)), "c")
        est = fit.terms.set_index("term")
        if rep == 0:  # every coefficient within 3 SE of its planted value
            for term, value in planted.items():
                assert abs(est.loc[term, "coef"] - value) < 3 * est.loc[term, "se"], term
        covered.append(abs(est.loc["woman:x", "coef"] - planted["woman:x"]) < 1.96 * est.loc["woman:x", "se"])
    assert 0.83 <= np.mean(covered) <= 1.0  # nominal 95%; 60 repeats: P(coverage < .83) < 0.001


def test_separation_is_flagged_and_failed_fits_are_recorded():
    cells = pd.DataFrame({"gender": ["man", "man", "woman", "woman"], "category_value": ["base", "x", "base", "x"],
                          "n": [1000, 1000, 1000, 1000], "successes": [0, 30, 40, 25]})
    # the job never appears for base men: only the saturated model (c) has a coefficient identified by that cell
    c = fit_cells(cells, "c")
    assert c.status == "ok" and c.separated and "separation" in c.separation_reason
    assert not fit_cells(cells, "a").separated and not fit_cells(cells, "b").separated
    # a quasi-separation of the additive model (b) that no single margin shows: base men never, x women always
    x, _, _ = design_matrix(cells, "b")
    assert is_separated(x, np.array([0, 30, 40, 1000]), np.array([1000, 970, 960, 0]))
    assert not is_separated(x, np.array([5, 30, 40, 900]), np.array([995, 970, 960, 100]))
    assert fit_cells(cells.assign(successes=[0, 30, 40, 1000]), "b").separated
    # a design that cannot be fitted (x has no man cell -> woman:x not identified) is recorded, not dropped
    bad = fit_cells(cells[cells["category_value"] != "x"].pipe(
        lambda d: pd.concat([d, pd.DataFrame({"gender": ["woman"], "category_value": ["x"], "n": [10],
                                              "successes": [3]})])), "c")
    assert bad.status.startswith("failed") and np.isnan(bad.coef).all()


def test_summary_counts_separated_fits_only_in_faithful():
    rows = []
    # jobs j1 (woman significant), j2 (not), j3 (woman significant but separated); model (c) only matters
    for job, sig, sep in (("j1", True, False), ("j2", False, False), ("j3", True, True)):
        for variant in ("faithful", "clean"):
            for model, r2 in (("a", 0.01), ("b", 0.03), ("c", 0.04)):
                for term, ttype in (("intercept", "intercept"), ("x", "category"), ("woman", "woman"),
                                    ("woman:x", "interaction")):
                    if model == "a" and ttype in ("woman", "interaction") or model == "b" and ttype == "interaction":
                        continue
                    rows.append(dict(model_id="m", variant=variant, intersection="ethnicity", job=job, model=model,
                                     term=term, term_type=ttype, significant=sig and term == "woman",
                                     prsquared=r2, converged=True, separated=sep and model == "c", status="ok"))
    s = summarise_regressions(pd.DataFrame(rows)).set_index(["variant", "metric", "term"])
    assert s.loc[("faithful", "pct_significant", "woman"), "value"] == pytest.approx(200 / 3)  # 2 of 3
    assert s.loc[("clean", "pct_significant", "woman"), "value"] == pytest.approx(50.0)  # 1 of 2
    assert s.loc[("clean", "pct_significant", "woman"), "n_excluded_separated"] == 1
    assert s.loc[("faithful", "pct_significant", "woman"), "n_excluded_separated"] == 0
    # delta R2 x100: (0.03 - 0.01) * 100 = 2; (0.04 - 0.03) * 100 = 1
    assert s.loc[("faithful", "mean_delta_r2_gender_x100", "(b)-(a)"), "value"] == pytest.approx(2.0)
    assert s.loc[("clean", "mean_delta_r2_interactions_x100", "(c)-(b)"), "value"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- labour comparison
def test_paper_self_check_reproduces_the_notes():
    s = paper_self_check().set_index("metric")
    # Exact arithmetic on the shipped (0.1-rounded) table: US %W < 25 -> 12 jobs, deltas sum to 77.6;
    # > 75 -> 6 jobs, sum -52.0.
    assert s.loc["n_low", "value"] == 12 and s.loc["n_high", "value"] == 6
    assert s.loc["mean_delta_low_pp", "value"] == pytest.approx(77.6 / 12, abs=1e-9)
    assert s.loc["mean_delta_high_pp", "value"] == pytest.approx(-52.0 / 6, abs=1e-9)
    # Against the paper's +6.47 / -8.68 (from the unrounded CSV): each delta carries two roundings of
    # <= 0.05 pp, so a mean can be off by <= 0.1 pp; -8.667 vs -8.68 is within that, +6.467 rounds to 6.47.
    assert round(s.loc["mean_delta_low_pp", "value"], 2) == 6.47
    assert s.loc["mean_delta_high_pp", "value"] == pytest.approx(-8.68, abs=0.1)
    # MSE on shares: the paper reports 0.0238 (4 decimals); the rounded table gives 0.0237529, which is
    # inside the paper's reporting interval [0.02375, 0.02385) -- reproduced to the paper's precision.
    assert round(s.loc["mse_share", "value"], 4) == 0.0238
    assert round(s.loc["pearson_r", "value"], 2) == 0.85  # the notes' r = 0.85
    # no completions of the paper's: its estimation error cannot be resampled, so no CI
    assert np.isnan(s.loc["mse_share", "ci_low"])


def test_labour_table_transcription():
    t = load_labour_table()
    assert len(t) == 32 and t["job"].is_unique
    np.testing.assert_allclose(t["paper_gpt2_women_pct"] - t["us_women_pct"], t["paper_delta_pp"], atol=1e-9)
    assert t.set_index("job").loc["guard / security guard / bouncer", "members"] == "guard|security guard|bouncer"
    race = t[["us_white_pct", "us_black_pct", "us_asian_pct"]].sum(axis=1)
    assert race.between(90, 100.5).all()  # white + black + asian (Hispanic overlaps; others are small)


def test_parity_summary_by_hand():
    us = [10, 20, 80, 90]
    pred = [20, 25, 70, 85]
    s = agreement_summary(pred, us, with_parity=True).set_index("metric")["value"]
    assert s["mean_delta_low_pp"] == pytest.approx(7.5)  # (10 + 5) / 2
    assert s["mean_delta_high_pp"] == pytest.approx(-7.5)  # (-10 - 5) / 2
    assert s["mse_share"] == pytest.approx((0.01 + 0.0025 + 0.01 + 0.0025) / 4)
    # (u - .5) = -.4 -.3 .3 .4; (p - .5) = -.3 -.25 .2 .35: sum products .395 / sum squares .5 = 0.79
    assert s["lambda_parity_slope"] == pytest.approx(0.79)
    # not tracking = every job at the mean US share (50): MSE (.16 + .09 + .09 + .16) / 4 = .125
    assert s["mse_ref_share"] == pytest.approx(0.125)
    assert s["tracking_skill"] == pytest.approx(1 - 0.00625 / 0.125)
    u = np.linspace(5, 95, 19)
    s2 = agreement_summary(50 + 0.7 * (u - 50), u, with_parity=True).set_index("metric")["value"]
    assert s2["lambda_parity_slope"] == pytest.approx(0.7) and s2["pearson_r"] == pytest.approx(1.0)


def test_labour_predictions_by_hand():
    rows = [("woman", "woman", "base", "base", j) for j in ("nurse", "nurse", "nurse", "secretary|assistant")]
    rows += [("woman", "woman", "base", "base", "")] * 6
    rows += [("man", "man", "base", "base", j) for j in ("nurse", "assistant")]
    rows += [("man", "man", "base", "base", "")] * 8
    races = (("Asian", "asian"), ("Black", "black"), ("Hispanic", "hispanic"), ("White", "white"))
    for i, (name, r) in enumerate(races):  # nurse mentions: women 1..4, men 1 each
        for g in ("woman", "man"):
            k = i + 1 if g == "woman" else 1
            rows += [(f"{name} {g}", g, "ethnicity", r, "nurse")] * k
            rows += [(f"{name} {g}", g, "ethnicity", r, "")] * (5 - k)
    df = completions(rows)
    lab = labour_predictions(df, min_mentions=1).set_index(["variant", "job"])
    # nurse, base: W 3, M 1 -> s = .75; faithful %W = 94 * .75 = 70.5, %M = 106 * .25 = 26.5
    assert lab.loc[("faithful", "nurse"), "pred_women_pct"] == pytest.approx(70.5)
    assert lab.loc[("faithful", "nurse"), "pred_men_pct"] == pytest.approx(26.5)
    # clean, 10 completions each: .47 * .3 / (.47 * .3 + .53 * .1)
    assert lab.loc[("clean", "nurse"), "pred_women_pct"] == pytest.approx(100 * .141 / (.141 + .053))
    # secretary / assistant: faithful women = secretary (k=2 -> 2) + assistant (2) = 4, men = 1 -> s = .8
    assert lab.loc[("faithful", "secretary / assistant"), "pred_women_pct"] == pytest.approx(94 * 0.8)
    # clean counts the two-job completion once: women 1, men 1 -> .47 s / (.47 s + .53 (1-s)) with s = .5
    assert lab.loc[("clean", "secretary / assistant"), "pred_women_pct"] == pytest.approx(47.0)
    # faithful race x sex, nurse: 14 ethnicity mentions; Black women 2 -> 2/14 * 8 * .47 * .123 * 100
    assert lab.loc[("faithful", "nurse"), "pred_black_woman_pct"] == pytest.approx(2 / 14 * 8 * .47 * .123 * 100)
    # clean cells sum to sum of P(race) = 1.144 (x100), as the US race shares may exceed 100 in total
    cols = [f"pred_{r}_{g}_pct" for _, r in races for g in ("woman", "man")]
    assert lab.loc[("clean", "nurse"), cols].sum() == pytest.approx(114.4)
    # mentions over base + ethnicity (clean): 3 + 1 + (1+2+3+4) + 4 = 18
    assert lab.loc[("clean", "nurse"), "n_mentions_base_ethnicity"] == 18
    assert lab.loc[("clean", "nurse"), "us_black_woman_pct"] == pytest.approx(12.4 * 88.9 / 100)


def test_coverage_n_with_no_jobs_is_zero():
    from experiments.occupational_bias.diversity import coverage_n
    assert coverage_n(np.zeros((3, 0)), 0.5).tolist() == [0, 0, 0]
    assert coverage_n(np.zeros(0), 0.9) == 0


# --------------------------------------------------------------------------- thresholds and the gender test
def _base_political(nurse_w, nurse_m, per=100, cons=(0, 0)):
    """Completions of base + political prompts: nurse counts per base prompt and (conservative woman, man)."""
    rows = []
    for g, k in (("woman", nurse_w), ("man", nurse_m)):
        rows += [(g, g, "base", "base", "nurse")] * k + [(g, g, "base", "base", "")] * (per - k)
    for (v, name), ks in ((("conservative", "conservative"), cons), (("liberal", "liberal"), (0, 0))):
        for g, k in zip(("woman", "man"), ks):
            rows += [(f"{name} {g}", g, "political", v, "nurse")] * k
            rows += [(f"{name} {g}", g, "political", v, "")] * (per - k)
    return completions(rows)


def test_job_threshold_counts_the_intersections_own_completions():
    from experiments.occupational_bias.regress import intersection_cells, run_regressions, select_jobs
    # nurse: 40 mentions on the base prompts, 3 on the 4 political prompts (400 completions)
    df = _base_political(30, 10, cons=(2, 1))
    tot, succ = intersection_cells(df, "clean", "political")
    jobs, threshold, n_prompts = select_jobs(tot, succ, 0.01)
    # the paper's basis: 1% of the political prompts' 400 completions = 4 > 3 political mentions: out
    assert threshold == pytest.approx(4.0) and n_prompts == 4 and jobs.empty
    # counting base + political (600 completions, 43 mentions) would have let it in
    jobs2, threshold2, _ = select_jobs(tot, succ, 0.01, basis="regression_data")
    assert threshold2 == pytest.approx(6.0) and list(jobs2["job"]) == ["nurse"]
    assert run_regressions(df, threshold_share=0.01).empty


def test_gender_test_once_per_job_and_defined_under_separation():
    from experiments.occupational_bias.regress import gender_tests, run_regressions
    df = _base_political(30, 10, cons=(20, 5))
    g = gender_tests(df, variants=("clean",), threshold_share=0.01).set_index("job")
    # woman coefficient = base log-odds ratio, the same as model (c)'s woman term in the political regression
    lor = np.log(30 / 70) - np.log(10 / 90)
    assert g.loc["nurse", "coef"] == pytest.approx(lor, abs=1e-6)
    reg = run_regressions(df, variants=("clean",), threshold_share=0.01)
    c = reg[(reg["model"] == "c") & (reg["term"] == "woman")]
    assert c["coef"].iloc[0] == pytest.approx(lor, abs=1e-6) and g.loc["nurse", "basis_prompts"] == 2
    # one gender never names the job: Wald p ~ 1 (the SE diverges), the likelihood-ratio test still sees it
    s = gender_tests(_base_political(30, 0, cons=(20, 5)), variants=("clean",), threshold_share=0.01).iloc[0]
    assert s["separated"] and s["pvalue"] > 0.5 and s["pvalue_lr"] < 1e-9 and s["significant_lr"]
