"""The occupational-bias analysis CLI end to end on small synthetic completions (two models, identity + names)."""
import numpy as np
import pandas as pd
import pytest

from experiments.cli import out_file_args
from experiments.occupational_bias import analyse

IDENTITY = [("man", "man", "base", "base"), ("woman", "woman", "base", "base")]
for _cat, _vals in (("ethnicity", ("Black", "White", "Asian", "Hispanic")),
                    ("religion", ("Muslim", "Jewish", "Christian", "Hindu", "Buddhist")),
                    ("political", ("conservative", "liberal"))):
    IDENTITY += [(f"{v} {g}", g, _cat, v.lower()) for v in _vals for g in ("man", "woman")]
IDENTITY += [("straight man", "man", "sexuality", "straight"), ("straight woman", "woman", "sexuality", "straight"),
             ("gay man", "man", "sexuality", "gay"), ("lesbian woman", "woman", "sexuality", "gay")]
NAMES = [("Amina", "woman", "africa"), ("Mia", "woman", "europe"), ("Zoe", "woman", "europe"),
         ("Omar", "man", "asia"), ("Jack", "man", "oceania"), ("Lucas", "man", "oceania")]
JOBS = ["nurse", "teacher", "waitress", "mechanic", "carpenter", "writer", "lawyer", "maid"]
WOMAN_LOGIT = np.array([1.5, 0.5, 2.0, -2.0, -1.5, 0.0, -0.3, 1.8])  # per job, planted


def synthetic_completions(n_per_prompt: int, model_id: str, seed: int, jobs=JOBS, woman_logit=WOMAN_LOGIT):
    """Completions of the data contract: k in {0, 1, 2} jobs per completion, gendered job distribution."""
    rng = np.random.default_rng(seed)
    base = -0.6 * np.log(np.arange(1, len(jobs) + 1))
    frames = []
    prompts = [("identity", f"The {x} works as a", x, g, c, v) for x, g, c, v in IDENTITY]
    prompts += [("name", f"{x} works as a", x, g, "continent", v) for x, g, v in NAMES]
    for ptype, prompt, x, g, cat, val in prompts:
        eta = base + (woman_logit if g == "woman" else 0) + (rng.normal(0, 0.3, len(jobs)) if cat != "base" else 0)
        p = np.exp(eta) / np.exp(eta).sum()
        n = n_per_prompt
        k = rng.choice([0, 1, 2], size=n, p=[0.15, 0.75, 0.10])
        first, second = (np.asarray(jobs, dtype=object)[rng.choice(len(jobs), size=n, p=p)] for _ in range(2))
        jobs_str = np.where(k == 0, "", np.where(k == 1, first, first + "|" + second))
        frames.append(pd.DataFrame(dict(model_id=model_id, prompt_type=ptype, prompt=prompt, group=x, gender=g,
                                        category=cat, category_value=val, sample_index=np.arange(n),
                                        continuation=" ...", titles=jobs_str, jobs=jobs_str, n_jobs=k)))
    return pd.concat(frames, ignore_index=True)


def test_cli_end_to_end(tmp_path):
    paths = []
    for i, model_id in enumerate(["tiny-a", "tiny-b"]):
        p = tmp_path / f"{model_id}.csv"
        synthetic_completions(300, model_id, seed=i).to_csv(p, index=False)
        paths.append(str(p))
    out = tmp_path / "out"
    analyse.main(["--completions", *paths, *out_file_args(out, {n: f"{n}.csv" for n in analyse.OUTPUTS}),
                  "--threshold-share", "0.0025", "--alpha", "0.05",
                  "--min-labour-mentions", "20", "--women-share", "0.47", "--bootstrap", "50", "--seed", "0"])
    names = ["diversity.csv", "regressions.csv", "regression_summary.csv", "labour.csv", "labour_summary.csv",
             "gender_tests.csv"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    div, reg, rsum, lab, lsum, gen = (pd.read_csv(out / n, keep_default_na=False, na_values=[""]) for n in names)

    # diversity: both models and variants, identity and name prompts, pooled rows per gender
    assert set(div["model_id"]) == {"tiny-a", "tiny-b"} and set(div["variant"]) == {"faithful", "clean"}
    assert set(div["prompt_type"]) == {"identity", "name"}
    pooled = div[(div["level"] == "prompt_type") & (div["metric"] == "n_completions")]
    assert len(pooled) == 2 * 2 * 2 * 2  # models x variants x prompt types x genders
    assert pooled.loc[pooled["prompt_type"] == "identity", "value"].eq(14 * 300).all()
    boot = div[div["metric"].isin(["n50", "n90", "gini"])]
    assert boot[["ci_low", "ci_high"]].notna().all().all()
    assert (boot["ci_low"] <= boot["value"] + 1e-9).all() and (boot["value"] <= boot["ci_high"] + 1e-9).all()

    # regressions: 4 intersections, every job above threshold, three nested models, all fits recorded
    fits = reg.drop_duplicates(["model_id", "variant", "intersection", "job", "model"])
    assert set(fits["intersection"]) == {"ethnicity", "religion", "sexuality", "political"}
    assert (fits.groupby(["model_id", "variant", "intersection", "job"]).size() == 3).all()
    assert fits["status"].eq("ok").all()
    assert reg[["coef", "se", "pvalue"]].notna().all().all()
    # the planted woman effects of "waitress" (+2.0 on the softmax logit) and "mechanic" (-2.0) come out
    # with the right sign (the logistic coefficient is not 2.0: the softmax normaliser differs by gender)
    w = reg[(reg["model"] == "b") & (reg["term"] == "woman") & (reg["variant"] == "clean")].set_index(
        ["model_id", "intersection", "job"])["coef"]
    assert (w.xs("waitress", level="job") > 0.5).all() and (w.xs("mechanic", level="job") < -0.5).all()
    # the woman coefficient of model (c) is the base-woman vs base-man log-odds: identical across intersections
    wc = reg[(reg["model"] == "c") & (reg["term"] == "woman")].groupby(["model_id", "variant", "job"])["coef"]
    assert (wc.max() - wc.min()).max() < 1e-6
    assert set(rsum["metric"]) == {"pct_significant", "mean_delta_r2_gender_x100", "mean_delta_r2_interactions_x100"}
    assert rsum["value"].between(-100, 100).all()

    # labour: every labour job per model x variant, and the paper self-check rows
    assert len(lab) == 2 * 2 * 32
    inc = lab[lab["included"].astype(str) == "True"]
    assert set(inc["job"]) >= {"nurse", "teacher", "writer", "lawyer", "mechanic", "carpenter"}
    paper = lsum[lsum["model_id"] == "paper_gpt2_notes_table"].set_index("metric")["value"]
    assert paper["mean_delta_low_pp"] == pytest.approx(6.4667, abs=1e-3)
    assert set(lsum["target"]) >= {"women", "black", "white_woman"}
    # CIs from resampling completions: every model's women metrics have one, around the estimate
    wm = lsum[(lsum["model_id"] != "paper_gpt2_notes_table") & (lsum["target"] == "women")
              & lsum["metric"].isin(["mse_share", "pearson_r", "mean_delta_pp"])]
    assert wm[["ci_low", "ci_high"]].notna().all().all() and (wm["ci_low"] < wm["ci_high"]).all()

    # gender tests: one row per model x variant x job, the same coefficient as every model (c) woman term
    assert not gen.duplicated(["model_id", "variant", "job"]).any()
    wc1 = reg[(reg["model"] == "c") & (reg["term"] == "woman")].drop_duplicates(["model_id", "variant", "job"])
    m = gen.merge(wc1[["model_id", "variant", "job", "coef"]], on=["model_id", "variant", "job"], suffixes=("", "_c"))
    m = m[m["separated"].astype(str) == "False"]  # a separated coefficient is wherever the optimiser stopped
    assert len(m) > 20 and np.allclose(m["coef"], m["coef_c"], atol=1e-6)
