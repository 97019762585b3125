"""The claims kit: each result declares the paper's statements it tests, how, and the checks that cannot fail.

A `ClaimSpec` is the declaration (sentence, the paper's number, which number of the paper it is and whether
it was read in the paper itself or only in secondary notes, the minimum evidence the rule needs). A verdict
rule is a plain function of numbers or small frames that returns a `Decision`; `spec.row(decision, ...)`
turns it into a `ClaimRow` of results/<result>/claims.csv, collected into results/claims.csv.

    TRENDS = ClaimSpec(R, "loss_falls", "Loss falls with size.", "Fig. 4", "secondary", "2.02 -> 1.18",
                       "reproduced when the CI of alpha lies above 0", min_n=3, n_unit="model sizes")

    def loss_falls(alpha, ci, n_sizes) -> Decision:          # unit-tested with a holds and a fails input
        if (gate := TRENDS.gate(n_sizes)):
            return gate                                      # not_testable_at_scale, the n in the notes
        return Decision(reproduced_if(holds(*ci, alpha, above=0)), alpha, ci, n_sizes)

A `SanitySpec` is a check that holds by construction (an algebraic identity, a grader compiled from its own
generator): it is reported with its value in the report's sanity-check table, never as a verdict.

`claims_main` is the one CLI skeleton of every result's claims step: the result's named inputs, plus
--thresholds (JSON: the config section's `claims:` block; its defaults live in the schema only), --scale,
--out, --sanity and --section.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from experiments.files import atomic_write_csv, atomic_write_text

VERDICTS = ("reproduced", "not_reproduced", "not_testable_at_scale", "planted_recovered", "planted_missed")

# How sure we are of the paper's number (tags of ../shared/papers/*.md). `paper` = the authors' own paper,
# repository, model card or blog post; `secondary` = a third party's reading of it.
SOURCE_STATUS = {
    "paper": "read in the authors' own paper, repository, model card or blog post",
    "secondary": "third-party notes only (a reproduction, a blog); not checked against the authors' text",
    "memory": "from memory of the paper; not re-read: qualitative only, never a threshold",
    "planted": "planted by our synthetic world (config), not a paper number",
    "extension": "an extension the project asked for, not a claim of the paper",
}

COLUMNS = [
    "result", "claim_id", "claim", "source", "source_status", "scale", "model", "paper_value",
    "our_value", "ci_low", "ci_high", "n", "min_n", "verdict", "test", "notes",
]
SANITY_COLUMNS = ["result", "check_id", "check", "scale", "model", "expected", "value", "passed", "test", "notes"]


@dataclass(frozen=True)
class Decision:
    """What a verdict rule returns: verdict, our value, its CI, the amount of evidence n, and notes."""

    verdict: str
    value: float | str | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    notes: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")


def reproduced_if(ok: bool) -> str:
    return "reproduced" if ok else "not_reproduced"


def recovered_if(ok: bool) -> str:
    return "planted_recovered" if ok else "planted_missed"


@dataclass(frozen=True)
class ClaimSpec:
    result: str
    claim_id: str
    claim: str  # one sentence, the paper's statement as we test it
    source: str  # which number of the paper: e.g. "abstract", "Table 2, GPT-2 column", "blog table (author's)"
    source_status: str  # key of SOURCE_STATUS
    paper_value: str = ""  # the paper's number or qualitative statement
    test: str = ""  # how the verdict is decided, in words
    min_n: int = 0  # the least evidence the rule decides on; below it: not_testable_at_scale
    n_unit: str = ""  # what n counts: "jobs", "models", "seeds", "items", ...

    def __post_init__(self):
        if self.source_status not in SOURCE_STATUS:
            raise ValueError(f"{self.claim_id}: source_status {self.source_status!r} not in {list(SOURCE_STATUS)}")

    def gate(self, n: int | float | None, what: str = "") -> Decision | None:
        """not_testable_at_scale (with the n in the notes) when n < min_n, else None."""
        n = 0 if n is None or (isinstance(n, float) and not math.isfinite(n)) else n
        if n >= self.min_n:
            return None
        unit = self.n_unit or "units of evidence"
        return Decision("not_testable_at_scale", n=int(n),
                        notes=f"n = {int(n)} {unit}{' ' + what if what else ''}, below the minimum {self.min_n}")

    def not_testable(self, notes: str, n: int | None = None) -> Decision:
        return Decision("not_testable_at_scale", n=n, notes=notes)

    def row(self, decision: Decision | None = None, *, scale: str, model: str, verdict: str | None = None,
            our_value: float | str | None = None, ci: tuple[float, float] | None = None, n: int | None = None,
            notes: str = "") -> "ClaimRow":
        """A row from a Decision (or from the same fields given one by one)."""
        if decision is None:
            if verdict is None:
                raise ValueError(f"{self.claim_id}: a row needs a decision or a verdict")
            decision = Decision(verdict, our_value, ci, n, notes)
        d = decision
        if isinstance(d.value, float) and not math.isfinite(d.value):
            raise ValueError(f"{self.claim_id}: our_value is {d.value}; a claim never gets a NaN value")
        planted_verdict, planted_claim = d.verdict.startswith("planted"), self.source_status == "planted"
        if d.verdict != "not_testable_at_scale" and planted_verdict != planted_claim:
            raise ValueError(f"{self.claim_id}: verdict {d.verdict!r} does not fit source_status "
                             f"{self.source_status!r} (planted verdicts are for planted claims only)")
        lo, hi = d.ci if d.ci is not None else (None, None)
        return ClaimRow(
            result=self.result, claim_id=self.claim_id, claim=self.claim, source=self.source,
            source_status=self.source_status, scale=scale, model=model, paper_value=self.paper_value,
            our_value=d.value, ci_low=lo, ci_high=hi, n=d.n, min_n=self.min_n, verdict=d.verdict,
            test=self.test, notes=d.notes,
        )


@dataclass
class ClaimRow:
    result: str
    claim_id: str
    claim: str
    source: str
    source_status: str
    scale: str
    model: str
    paper_value: str
    our_value: float | str | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    min_n: int
    verdict: str
    test: str
    notes: str


@dataclass(frozen=True)
class SanitySpec:
    """A check that holds by construction: shown with its value, never a verdict."""

    result: str
    check_id: str
    check: str  # one sentence: what must hold
    expected: str  # e.g. "< 1e-6", "1.0"
    test: str = ""  # why it holds by construction, and what a failure would mean (a bug)

    def row(self, *, scale: str, model: str, value: float | str | None, passed: bool, notes: str = "") -> "SanityRow":
        return SanityRow(self.result, self.check_id, self.check, scale, model, self.expected, value, bool(passed),
                         self.test, notes)


@dataclass
class SanityRow:
    result: str
    check_id: str
    check: str
    scale: str
    model: str
    expected: str
    value: float | str | None
    passed: bool
    test: str
    notes: str


def holds(ci_low: float | None, ci_high: float | None, value: float, *, above: float | None = None,
          below: float | None = None) -> bool:
    """A claim "value > above" (or "< below") holds only when the whole CI is on the claimed side.

    Without a CI the point estimate decides.
    """
    lo = value if ci_low is None else ci_low
    hi = value if ci_high is None else ci_high
    if above is not None and not lo > above:
        return False
    if below is not None and not hi < below:
        return False
    return True


def rows_where(df: pd.DataFrame, **match) -> pd.DataFrame:
    """The rows of a claims step's input table whose columns equal every given value."""
    keep = pd.Series(True, index=df.index)
    for col, value in match.items():
        keep &= df[col] == value
    return df[keep]


def one_row(df: pd.DataFrame, **match) -> pd.Series | None:
    """The one row matching (rows_where), None when there is none; more than one is an error in the inputs."""
    sel = rows_where(df, **match)
    if len(sel) > 1:
        raise ValueError(f"more than one row for {match}")
    return None if sel.empty else sel.iloc[0]


def validate_table(df: pd.DataFrame, where: str = "claims") -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}")
    bad = df.loc[~df["verdict"].isin(VERDICTS), "verdict"]
    if len(bad):
        raise ValueError(f"{where}: verdicts outside {VERDICTS}: {sorted(set(map(str, bad)))}")
    dup = df.duplicated(["result", "claim_id", "model"])
    if dup.any():
        raise ValueError(f"{where}: duplicate claim rows {df.loc[dup, 'claim_id'].tolist()}")
    return df[COLUMNS]


def validate_sanity(df: pd.DataFrame, where: str = "sanity checks") -> pd.DataFrame:
    missing = [c for c in SANITY_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}")
    dup = df.duplicated(["result", "check_id", "model"])
    if dup.any():
        raise ValueError(f"{where}: duplicate sanity rows {df.loc[dup, 'check_id'].tolist()}")
    return df[SANITY_COLUMNS]


def write_claims(rows: list[ClaimRow], path: str | Path) -> pd.DataFrame:
    if not rows:
        raise ValueError("no claims to write: a result must declare at least one claim")
    df = validate_table(pd.DataFrame([asdict(r) for r in rows]), str(path))
    atomic_write_csv(df, path, allow_nan=["our_value", "ci_low", "ci_high", "n"])
    return df


def write_sanity(rows: list[SanityRow], path: str | Path) -> pd.DataFrame:
    df = pd.DataFrame([asdict(r) for r in rows], columns=SANITY_COLUMNS)
    df = validate_sanity(df, str(path))
    atomic_write_csv(df, path, allow_nan=["value"])
    return df


NUMERIC = ("our_value", "ci_low", "ci_high", "n", "min_n", "value")


def read_table(path: str | Path) -> pd.DataFrame:
    """A claims or sanity CSV as written: empty numeric cells are NaN, empty text cells stay empty strings."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    text = [c for c in df.columns if c not in NUMERIC]
    df[text] = df[text].astype(object).fillna("")
    return df


@dataclass
class ClaimsOutput:
    claims: list[ClaimRow]
    sanity: list[SanityRow] = field(default_factory=list)
    section: str = ""


def claims_main(doc: str, inputs: dict[str, dict], evaluate: Callable[[argparse.Namespace, dict], ClaimsOutput],
                *, extra_args: Callable[[argparse.ArgumentParser], None] | None = None,
                argv: list[str] | None = None) -> ClaimsOutput:
    """The claims CLI of a result: parse its inputs (`--<name>` per entry of `inputs`, argparse keywords as
    values, required unless said otherwise), the thresholds and outputs; evaluate; write claims.csv,
    sanity.csv and the report section atomically."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, kw in inputs.items():
        ap.add_argument(f"--{name.replace('_', '-')}", **{"required": True, **kw})
    if extra_args is not None:
        extra_args(ap)
    ap.add_argument("--thresholds", required=True,
                    help="JSON: the result's `claims:` config block (defaults and reasons: its schema)")
    ap.add_argument("--scale", required=True, choices=["mini", "paper"])
    ap.add_argument("--out", required=True, help="claims CSV")
    ap.add_argument("--sanity", required=True, help="sanity-check CSV")
    ap.add_argument("--section", required=True, help="report section (markdown)")
    args = ap.parse_args(argv)
    out = evaluate(args, json.loads(args.thresholds))
    df = write_claims(out.claims, args.out)
    sanity = write_sanity(out.sanity, args.sanity)
    atomic_write_text(args.section, out.section)
    print(df[["claim_id", "model", "our_value", "verdict"]].to_string(index=False))
    if len(sanity):
        print(sanity[["check_id", "model", "value", "passed"]].to_string(index=False))
    return out
