"""Every anisotropy verdict rule: a holds / fails pair, the paper's own numbers through the rule, the minimum n,
and the CSV -> claims path on synthetic tables (paper scale with the README values, mini with no checkpoint)."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from experiments.anisotropy import claims as C
from experiments.anisotropy.metrics import CONTROL, per_prompt_table
from tests.helpers import mini_section

TH = mini_section("anisotropy")["claims"]


# ---- only_gpt2_anisotropic ---------------------------------------------------------------------------------------

def test_the_papers_own_table_reproduces_the_only_gpt2_claim():
    d = C.paper_table_decision(TH["anisotropic_below"], TH["min_checkpoints"])
    assert d.verdict == "reproduced" and d.n == 38
    assert d.value == pytest.approx(0.53) and "akhooli/gpt2-small-arabic" in d.notes


@pytest.mark.parametrize("change", [{"akhooli/gpt2-small-arabic": 0.30},   # another anisotropic checkpoint
                                    {"gpt2-medium": 0.60},                 # an exception that is isotropic
                                    {"facebook/opt-13b": 0.20, "gpt2": 0.70}])
def test_only_gpt2_fails_when_the_set_of_anisotropic_checkpoints_differs(change):
    table = {**C.PAPER_ISOTROPY, **change}
    assert C.only_gpt2_anisotropic(table, TH["anisotropic_below"], TH["min_checkpoints"]).verdict == "not_reproduced"


def test_only_gpt2_needs_enough_checkpoints_and_both_exceptions():
    few = {k: C.PAPER_ISOTROPY[k] for k in list(C.PAPER_ISOTROPY)[:5]}
    assert C.only_gpt2_anisotropic(few, 0.5, 20).verdict == "not_testable_at_scale"
    no_gpt2 = {k: v for k, v in C.PAPER_ISOTROPY.items() if k != "gpt2"}
    d = C.only_gpt2_anisotropic(no_gpt2, 0.5, 20)
    assert d.verdict == "not_testable_at_scale" and "gpt2 not measured" in d.notes


# ---- checkpoint_isotropy ------------------------------------------------------------------------------------------

def test_every_paper_value_passes_its_own_rule_and_a_shifted_one_fails():
    for pid, v in C.PAPER_ISOTROPY.items():
        assert C.checkpoint_isotropy(v, None, v, 2000, TH["value_tol"], TH["min_texts"]).verdict == "reproduced", pid
        off = C.checkpoint_isotropy(v + 2 * TH["value_tol"], None, v, 2000, TH["value_tol"], TH["min_texts"])
        assert off.verdict == "not_reproduced"
    assert C.checkpoint_isotropy(0.1, None, 0.1, 30, 0.03, 200).verdict == "not_testable_at_scale"


# ---- contrastive_human_like ---------------------------------------------------------------------------------------

def _paper_inputs():
    p = C.PAPER_DECODING
    ratio = p["contrastive"]["diversity"] / p["human"]["diversity"]
    diffs = {m: (p["contrastive"]["coherence"] - p[m]["coherence"], None) for m in ("top_k", "nucleus", "typical")}
    return ratio, diffs


def test_the_papers_decoding_table_reproduces_the_contrastive_claim():
    ratio, diffs = _paper_inputs()
    d = C.contrastive_human_like(ratio, None, diffs, C.PAPER_DECODING_N, TH["human_like_min_ratio"],
                                 TH["min_prompts"])
    assert d.verdict == "reproduced" and d.value == pytest.approx(0.988, abs=1e-3)


def test_contrastive_fails_on_a_sampler_with_higher_coherence_or_low_diversity():
    ratio, diffs = _paper_inputs()
    worse = {**diffs, "typical": (-0.1, None)}
    assert C.contrastive_human_like(ratio, None, worse, 1000, 0.9, 8).verdict == "not_reproduced"
    # greedy's diversity (5.38 / 93.62) is not human-like even with the best coherence
    assert C.contrastive_human_like(5.38 / 93.62, None, diffs, 1000, 0.9, 8).verdict == "not_reproduced"
    # a CI that reaches below the threshold or 0 fails (the whole CI must be on the claimed side)
    assert C.contrastive_human_like(ratio, (0.85, 1.05), diffs, 1000, 0.9, 8).verdict == "not_reproduced"
    assert C.contrastive_human_like(ratio, None, {"top_k": (0.3, (-0.1, 0.7))}, 1000, 0.9, 8).verdict == \
        "not_reproduced"


def test_contrastive_gates_on_prefixes_and_the_scorer_premise():
    ratio, diffs = _paper_inputs()
    assert C.contrastive_human_like(ratio, None, diffs, 5, 0.9, 8).verdict == "not_testable_at_scale"
    blind = C.contrastive_human_like(ratio, None, diffs, 100, 0.9, 8, premise=(0.01, (-0.05, 0.07)))
    assert blind.verdict == "not_testable_at_scale" and "cannot judge coherence" in blind.notes
    reads = C.contrastive_human_like(ratio, None, diffs, 100, 0.9, 8, premise=(0.3, (0.1, 0.5)))
    assert reads.verdict == "reproduced"


# ---- trained_below_random_init ------------------------------------------------------------------------------------

def test_trained_below_random_init_pair():
    assert C.trained_below_random_init((0.5, 0.45, 0.55), (0.97, 0.96, 0.98), 30).verdict == "reproduced"
    assert C.trained_below_random_init((0.9, 0.85, 0.965), (0.97, 0.96, 0.98), 30).verdict == "not_reproduced"
    assert C.trained_below_random_init((0.5, 0.45, 0.55), (0.97, 0.96, 0.98), 3).verdict == "not_testable_at_scale"


# ---- from the CSVs ------------------------------------------------------------------------------------------------

def _iso_row(mid, lang, value, n_texts, kind="pretrained", ex=False, measure="pooled", half=0.01, status="measured"):
    return dict(model_id=mid, model_label=mid, model_kind=kind, variant="trained", lang=lang, layer=C.FINAL,
                exclude_first=ex, measure=measure, isotropy=value, self_similarity=1 - value, ci_low=value - half,
                ci_high=value + half, n_texts=n_texts, n_tokens=100 * n_texts, status=status)


def _mid(pid):
    return pid.split("/")[-1]


@pytest.mark.parametrize("shift, verdict", [(0.0, "reproduced"), (-0.2, "not_reproduced")])
def test_paper_scale_tables_through_isotropy_claims(shift, verdict):
    # the README values; shifted by -0.2, ar small (0.33) and others fall below 0.5 and every |Δ| exceeds tol
    models = {_mid(p): {"label": p, "paper_id": p, "langs": ["en"], "group": "paper"} for p in C.PAPER_ISOTROPY}
    iso = pd.DataFrame([_iso_row(_mid(p), "en", v + shift, 2000) for p, v in C.PAPER_ISOTROPY.items()])
    rows, _ = C.isotropy_claims(iso, models, TH, "paper")
    by = {(r.claim_id, r.model): r for r in rows}
    assert by["only_gpt2_anisotropic", "paper checkpoints (38)"].verdict == verdict
    vals = [r for r in rows if r.claim_id == "checkpoint_isotropy"]
    assert len(vals) == 38 and {r.verdict for r in vals} == {verdict}
    assert by["checkpoint_isotropy", "gpt2"].paper_value == "0.10"


def test_mini_tables_say_what_was_measured_instead():
    models = {"smollm2_135m": {"label": "SmolLM2", "paper_id": None, "langs": ["en"], "group": "mini"}}
    iso = pd.DataFrame([_iso_row("smollm2_135m", "en", 0.47, 30),
                        _iso_row("tiny_gpt2_en", "en", 0.55, 30, kind="trained_here"),
                        _iso_row("tiny_gpt2_en_random_init", "en", 0.97, 30, kind="random_init"),
                        dict(_iso_row("tiny_gpt2_ru", "ru", np.nan, 0, kind="trained_here"),
                             status="not run: missing data (fortunes-ru)")])
    rows, _ = C.isotropy_claims(iso, models, TH, "mini")
    by = {(r.claim_id, r.model): r for r in rows}
    only = by["only_gpt2_anisotropic", "paper checkpoints (38)"]
    assert only.verdict == "not_testable_at_scale" and "smollm2_135m en 0.47" in only.notes
    assert by["checkpoint_isotropy", "paper checkpoints (38)"].verdict == "not_testable_at_scale"
    assert by["trained_below_random_init", "tiny_gpt2_en"].verdict == "reproduced"
    ru = by["trained_below_random_init", "tiny_gpt2_ru"]
    assert ru.verdict == "not_testable_at_scale" and "missing data" in ru.notes


def _per(coh_contrastive: float, premise_gap: float, n=12, seed=0):
    """A per-prompt table: human texts; contrastive as diverse as human; two samplers at coherence -2."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n):
        words = " ".join(f"w{j}_{i}" for i in range(12))
        for method, kind, seeds, coh in (("human", "human", [-1], -1.5), (CONTROL, "control", [-1], -1.5 - premise_gap),
                                         ("contrastive", "contrastive", [-1], coh_contrastive),
                                         ("top_k", "sample", [0, 1, 2], -2.0), ("nucleus", "sample", [0, 1, 2], -2.0)):
            for s in seeds:
                rows.append(dict(method=method, kind=kind, seed=s, prompt_id=f"p{j}", prefix="x", continuation=words,
                                 reference=words, n_new_tokens=16, ended_eos=False,
                                 coherence=coh + rng.normal(0, 0.05)))
    gen = pd.DataFrame(rows)
    per = per_prompt_table(gen, "word")
    per["coherence"] = gen.coherence.to_numpy()
    return per


@pytest.mark.parametrize("coh, gap, verdict", [(-1.0, 0.5, "reproduced"), (-2.5, 0.5, "not_reproduced"),
                                               (-1.0, 0.0, "not_testable_at_scale")])
def test_decoding_claim_from_a_per_prompt_table(coh, gap, verdict):
    per = _per(coh, gap)
    summary = pd.DataFrame([dict(method=m, diversity=100.0, coherence=-1.0, coherence_scorer="scorer",
                                 generator="gen") for m in per.method.unique()])
    row = C.decoding_claim(summary, per, "contrastive", ["top_k", "nucleus"], TH, "mini")
    assert row.verdict == verdict and row.model == "gen (scored by scorer)"
    assert row.our_value == pytest.approx(1.0)


def test_spec_thresholds_are_in_the_schema_not_in_code():
    assert set(TH) >= {"anisotropic_below", "value_tol", "min_texts", "min_checkpoints", "human_like_min_ratio",
                       "min_prompts", "sanity_batch_tol"}
    assert dataclasses.replace(C.ONLY_GPT2, min_n=3).gate(2).verdict == "not_testable_at_scale"
