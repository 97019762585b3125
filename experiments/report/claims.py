"""The claims registry: each result declares the paper's statements it tests, and how.

A `ClaimSpec` is the declaration (sentence, the paper's number, where that number comes from and
whether it was read in the paper itself or only in secondary notes). Evaluating it yields a
`ClaimRow` with our value, a confidence interval and one verdict from VERDICTS. Rows are written to
results/<result>/claims.csv and collected into results/claims.csv.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from experiments.files import atomic_write_csv

VERDICTS = ("reproduced", "not_reproduced", "not_testable_at_scale", "planted_recovered", "planted_missed")

# How sure we are of the paper's number (tags of ../shared/papers/*.md).
SOURCE_STATUS = {
    "paper": "read in the paper (abstract, table, figure or official card/code)",
    "secondary": "secondary notes only (third-party reproduction/blog); not checked against the paper body",
    "memory": "from memory of the paper; not re-read: qualitative only, never a threshold",
    "planted": "planted by our synthetic world (config), not a paper number",
    "extension": "an extension the project asked for, not a claim of the paper",
}

COLUMNS = [
    "result", "claim_id", "claim", "source", "source_status", "scale", "model", "paper_value",
    "our_value", "ci_low", "ci_high", "verdict", "test", "notes",
]


@dataclass(frozen=True)
class ClaimSpec:
    result: str
    claim_id: str
    claim: str  # one sentence, the paper's statement as we test it
    source: str  # e.g. "abstract", "Fig. 4 (via blog)", "Table 1"
    source_status: str  # key of SOURCE_STATUS
    paper_value: str = ""  # the paper's number or qualitative statement
    test: str = ""  # how the verdict is decided, in words

    def __post_init__(self):
        if self.source_status not in SOURCE_STATUS:
            raise ValueError(f"{self.claim_id}: source_status {self.source_status!r} not in {list(SOURCE_STATUS)}")

    def row(self, *, scale: str, model: str, verdict: str, our_value: float | str | None = None,
            ci: tuple[float, float] | None = None, notes: str = "") -> "ClaimRow":
        if verdict not in VERDICTS:
            raise ValueError(f"{self.claim_id}: verdict {verdict!r} not in {VERDICTS}")
        if isinstance(our_value, float) and not math.isfinite(our_value):
            raise ValueError(f"{self.claim_id}: our_value is {our_value}; a claim never gets a NaN value")
        lo, hi = ci if ci is not None else (None, None)
        return ClaimRow(
            result=self.result, claim_id=self.claim_id, claim=self.claim, source=self.source,
            source_status=self.source_status, scale=scale, model=model, paper_value=self.paper_value,
            our_value=our_value, ci_low=lo, ci_high=hi, verdict=verdict, test=self.test, notes=notes,
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
    verdict: str
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


def write_claims(rows: list[ClaimRow], path: str | Path) -> pd.DataFrame:
    if not rows:
        raise ValueError("no claims to write: a result must declare at least one claim")
    df = validate_table(pd.DataFrame([asdict(r) for r in rows]), str(path))
    atomic_write_csv(df, path, allow_nan=["our_value", "ci_low", "ci_high"])
    return df
