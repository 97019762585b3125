"""Claims registry and report: verdict vocabulary enforced, CI-based decisions, tables validated."""
import pandas as pd
import pytest

from experiments.report.claims import (
    VERDICTS,
    ClaimSpec,
    Decision,
    SanitySpec,
    holds,
    one_row,
    rows_where,
    write_claims,
    write_sanity,
)
from experiments.report.collect import collect, collect_sanity
from experiments.report.write import build_report

SPEC = ClaimSpec("demo", "c1", "Something holds.", "abstract", "paper", "0.5", "test text", min_n=3, n_unit="jobs")
SANITY = SanitySpec("demo", "identity", "The identity holds.", "< 1e-6", "algebra")


def test_holds_uses_whole_ci():
    assert holds(0.1, 0.3, 0.2, above=0)
    assert not holds(-0.01, 0.3, 0.2, above=0)  # point estimate passes, CI does not
    assert holds(None, None, 0.2, above=0.1)
    assert holds(0.1, 0.2, 0.15, below=0.3) and not holds(0.1, 0.4, 0.15, below=0.3)


def test_bad_verdict_and_status_rejected():
    with pytest.raises(ValueError, match="verdict"):
        SPEC.row(scale="mini", model="m", verdict="passed")
    with pytest.raises(ValueError, match="source_status"):
        ClaimSpec("demo", "c2", "x", "y", "rumour")
    with pytest.raises(ValueError, match="NaN"):
        SPEC.row(scale="mini", model="m", verdict="reproduced", our_value=float("nan"))


def test_write_collect_and_report(tmp_path):
    rows = [SPEC.row(scale="mini", model="m", verdict="reproduced", our_value=0.6, ci=(0.55, 0.65)),
            ClaimSpec("demo", "c2", "Other.", "Fig. 1", "memory").row(scale="mini", model="m",
                                                                    verdict="not_testable_at_scale")]
    write_claims(rows, tmp_path / "demo" / "claims.csv")
    write_sanity([SANITY.row(scale="mini", model="m", value=1e-12, passed=True)], tmp_path / "demo" / "sanity.csv")
    df = collect([str(tmp_path / "demo" / "claims.csv")])
    sanity = collect_sanity([str(tmp_path / "demo" / "sanity.csv")])
    assert list(df.verdict) == ["reproduced", "not_testable_at_scale"]
    assert set(df.verdict) <= set(VERDICTS)
    text = build_report(df, ["demo"], {"demo": "Section text."}, {"demo": ["results/figures/demo__x.png"]},
                        "mini", tmp_path, titles={"demo": "A demo result"}, sanity=sanity)
    assert "Section text." in text and "**reproduced**" in text and "demo__x.png" in text
    assert "| demo | 1 | 1 |" in text and "## A demo result" in text
    assert "### Sanity checks" in text and "| identity | The identity holds. | m | < 1e-6 | 1e-12 | pass |" in text
    assert "Sanity checks (hold by construction, not claims): 1/1 passed." in text


def test_duplicate_claims_rejected(tmp_path):
    row = SPEC.row(scale="mini", model="m", verdict="reproduced")
    with pytest.raises(ValueError, match="duplicate"):
        write_claims([row, row], tmp_path / "c.csv")
    pd.DataFrame({"result": ["x"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="missing columns"):
        collect([str(tmp_path / "bad.csv")])


def test_report_formats_numbers_read_back_as_text():
    from experiments.report.write import fmt

    assert fmt("0.397150888006148") == "0.3972"  # mixed-type columns come back from CSV as strings
    assert fmt("grammar 1.0 | x") == "grammar 1.0 \\| x"  # pipes would break the markdown table
    assert fmt(float("nan")) == "" and fmt(None) == ""


def test_gate_says_not_testable_below_the_minimum_n():
    d = SPEC.gate(2, "above the threshold")
    assert d.verdict == "not_testable_at_scale" and d.n == 2
    assert d.notes == "n = 2 jobs above the threshold, below the minimum 3"
    assert SPEC.gate(3) is None and SPEC.gate(float("nan")).n == 0
    row = SPEC.row(d, scale="mini", model="m")
    assert row.verdict == "not_testable_at_scale" and row.min_n == 3 and row.n == 2


def test_planted_verdicts_only_for_planted_claims():
    with pytest.raises(ValueError, match="planted"):
        SPEC.row(Decision("planted_recovered"), scale="mini", model="m")
    planted = ClaimSpec("demo", "p", "Recovered.", "planted world", "planted")
    with pytest.raises(ValueError, match="planted"):
        planted.row(Decision("reproduced"), scale="mini", model="m")
    assert planted.row(Decision("not_testable_at_scale"), scale="mini", model="m").verdict == "not_testable_at_scale"


def test_rows_where_and_one_row():
    df = pd.DataFrame({"model": ["a", "a", "b"], "metric": ["x", "y", "x"], "value": [1, 2, 3]})
    assert rows_where(df, model="a")["value"].tolist() == [1, 2]
    assert rows_where(df, model="a", metric="y")["value"].tolist() == [2]
    assert rows_where(df, model="c").empty
    assert one_row(df, model="b")["value"] == 3 and one_row(df, model="c") is None
    with pytest.raises(ValueError, match="more than one row"):
        one_row(df, model="a")
