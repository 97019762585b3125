"""The PII claims step: each verdict reads the row of the defense that plays its role (config roles, not ids), the
base-model control is read at the configured (or smallest) C, planted claims are not testable without planted truth,
and the epsilon sanity check; the step's CLI writes its three outputs."""
import json

import pandas as pd

from experiments.pii_leakage import claims as C
from experiments.pii_leakage.summary import row

TH = {"dp_paper_rate": 0.03, "dp_rate_factor": 3.0, "dp_max_ratio": 0.5, "scrub_max_share": 0.05,
      "base_chance_size": None, "base_chance_pool": "nonmember"}
META = {"roles": {"t_und": "undefended", "t_scr": "scrubbed", "t_dp": "dp"}, "defenses": ["t_und", "t_scr", "t_dp"],
        "base": "tiny", "source": "world",
        "dp_epsilon": {"t_und": None, "t_scr": None, "t_dp": 8.0}}


def score(defense, hit, masked_hit, missed_hit):
    return {"defense": defense, "n_hit": hit, "n_real_unique": 200, "verbatim_masked_n": 100,
            "verbatim_masked_hit": masked_hit, "verbatim_missed_n": 20, "verbatim_missed_hit": missed_hit}


def tables(base_correct=5, ours=30, tab=10, dp_hit=6):
    scores = pd.DataFrame([score("t_und", 60, 40, 12), score("t_scr", 30, 0, 8), score("t_dp", dp_hit, 0, 0)])
    levels = pd.DataFrame([{"defense": d, "dup": k, "n": 10, "n_leaked": x}
                           for d, xs in (("t_und", (0, 1, 3, 7, 10)), ("t_dp", (0, 0, 0, 0, 0)))
                           for k, x in zip((1, 2, 4, 8, 16), xs)])
    attacks = pd.DataFrame([
        row("t_und", "reconstruction", "ours", ours, 50), row("t_und", "reconstruction", "tab", tab, 50),
        row("base", "inference", "accuracy", base_correct, 50, pool="nonmember", size=10, chance=0.1),
        row("base", "inference", "accuracy", 50, 50, pool="nonmember", size=100, chance=0.01)])
    defenses = pd.DataFrame([{"defense": "t_dp", "dp": True, "target_epsilon": 8.0, "epsilon_rdp": 7.999,
                              "epsilon_prv": 7.2, "delta": 1e-3, "noise_multiplier": 0.7, "n_records": 1000,
                              "steps": 63},
                             {"defense": "t_und", "dp": False, "target_epsilon": None, "epsilon_rdp": None,
                              "epsilon_prv": None, "delta": None, "noise_multiplier": None, "n_records": 1000,
                              "steps": 125}])
    return scores, levels, attacks, defenses


def verdicts(*args, meta=META, th=TH):
    rows, sanity = C.evaluate_claims(*args, meta, th, "mini")
    return {r.claim_id: r for r in rows}, sanity


def test_every_claim_reads_its_role():
    v, sanity = verdicts(*tables())
    assert v["more_than_existing_attacks"].verdict == "reproduced" and v["more_than_existing_attacks"].model == "t_und"
    assert v["dp_still_leaks"].verdict == "reproduced" and v["dp_still_leaks"].our_value == 6 / 200
    assert v["recall_rises_with_duplication"].verdict == "planted_recovered"
    assert v["dp_far_below_undefended"].verdict == "planted_recovered"
    assert v["scrubbed_names_not_leaked"].verdict == "planted_recovered"
    assert v["scrubbed_leaks_missed"].verdict == "planted_recovered"
    # the smallest C (10): 5 of 50 at chance 0.1; C = 100 (50 of 50, far above chance) is not the one read
    base = v["base_inference_at_chance"]
    assert base.verdict == "planted_recovered" and "C = 10" in base.model
    assert [(s.model, s.passed) for s in sanity] == [("t_dp", True)]


def test_the_same_rules_fail_on_failing_numbers():
    v, _ = verdicts(*tables(base_correct=30, ours=10, tab=10, dp_hit=60))
    assert v["more_than_existing_attacks"].verdict == "not_reproduced"
    assert v["dp_still_leaks"].verdict == "not_reproduced"
    assert v["dp_far_below_undefended"].verdict == "planted_missed"
    assert v["base_inference_at_chance"].verdict == "planted_missed"


def test_configured_size_and_swapped_ids():
    v, _ = verdicts(*tables(), th={**TH, "base_chance_size": 100})
    assert v["base_inference_at_chance"].verdict == "planted_missed"  # 50 of 50 at C = 100
    swapped = {**META, "roles": {"t_dp": "undefended", "t_und": "dp", "t_scr": "scrubbed"}}
    v, _ = verdicts(*tables(), meta=swapped)
    # roles follow the config: the "DP" model is now the one that leaks 60, the "undefended" one 6
    assert v["dp_far_below_undefended"].verdict == "planted_missed"
    assert v["dp_still_leaks"].our_value == 60 / 200


def test_no_planted_truth_and_missing_defenses():
    v, _ = verdicts(*tables(), meta={**META, "source": "echr"})
    for cid in ("recall_rises_with_duplication", "dp_far_below_undefended", "scrubbed_names_not_leaked",
                "scrubbed_leaks_missed", "base_inference_at_chance"):
        assert v[cid].verdict == "not_testable_at_scale" and "planted truth" in v[cid].notes
    assert v["dp_still_leaks"].verdict == "reproduced"  # the paper's claims still read the measured rows
    v, _ = verdicts(*tables(), meta={**META, "roles": {"t_und": "undefended"}})
    assert v["dp_still_leaks"].verdict == "not_testable_at_scale" and "no DP defense" in v["dp_still_leaks"].notes


def test_epsilon_check_fails_on_an_overspent_run():
    scores, levels, attacks, defenses = tables()
    defenses.loc[0, "epsilon_rdp"] = 9.0
    _, sanity = verdicts(scores, levels, attacks, defenses)
    assert [s.passed for s in sanity] == [False]


def test_cli_writes_claims_sanity_and_section(tmp_path):
    paths = {}
    for name, df in zip(("scores", "levels", "attacks", "defenses"), tables()):
        paths[name] = tmp_path / f"{name}.csv"
        df.to_csv(paths[name], index=False)
    C.main([*[a for n, p in paths.items() for a in (f"--{n}", str(p))], "--meta", json.dumps(META),
            "--thresholds", json.dumps(TH), "--scale", "mini", "--out", str(tmp_path / "claims.csv"),
            "--sanity", str(tmp_path / "sanity.csv"), "--section", str(tmp_path / "section.md")])
    claims = pd.read_csv(tmp_path / "claims.csv")
    assert len(claims) == 7 and set(claims.result) == {"pii_leakage"}
    text = (tmp_path / "section.md").read_text()
    assert "| t_und |" in text and "What differs from the paper" in text
    assert "Not run in this configuration: DP + scrubbed" in text  # META has three of the four roles


def test_section_names_no_absent_defense_when_all_four_run():
    meta = {**META, "roles": {**META["roles"], "t_ds": "dp_scrubbed"}}
    text = C.section(*[tables()[i] for i in (2, 0, 3)], meta, "mini")
    assert "Not run in this configuration" not in text
