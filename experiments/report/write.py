"""Write results/report.md: verdict summary, then per result its section, claims table and figures.

The report knows no paper: each result supplies a markdown section (what was run, what differs from
the paper, sample outputs), its claims rows and its sanity checks, and its manifest gives the title;
figures are embedded by path.

CLI: python -m experiments.report.write --claims results/claims.csv --sanity results/sanity_checks.csv \
        --results tinystories --sections results/tinystories/report_section.md \
        --figures results/figures/*.png --out results/report.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
from pathlib import Path

import pandas as pd

from experiments.files import atomic_write_text
from experiments.report.claims import SANITY_COLUMNS, SOURCE_STATUS, VERDICTS, read_table


def fmt(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, str):  # a column mixing numbers and text is read back as text
        try:
            v = float(v)
        except ValueError:
            return v.replace("|", "\\|").replace("\n", " ")
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def claims_table(df: pd.DataFrame) -> str:
    cols = ["claim_id", "claim", "source", "source_status", "model", "paper_value", "our_value", "ci", "n (min)",
            "verdict"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        ci = f"[{fmt(r.ci_low)}, {fmt(r.ci_high)}]" if fmt(r.ci_low) else ""
        n = f"{fmt(r.n)} ({fmt(r.min_n)})" if fmt(r.n) else ""
        cells = [fmt(r.claim_id), fmt(r.claim), fmt(r.source), fmt(r.source_status), fmt(r.model),
                 fmt(r.paper_value), fmt(r.our_value), ci, n, f"**{r.verdict}**"]
        lines.append("| " + " | ".join(cells) + " |")
    tests = [f"- `{r.claim_id}`: {fmt(r.test)}" + (f" ({fmt(r.notes)})" if fmt(r.notes) else "")
             for _, r in df.iterrows()]
    return "\n".join(lines) + "\n\nHow each verdict was decided:\n\n" + "\n".join(tests) + "\n"


def sanity_table(df: pd.DataFrame) -> str:
    """Checks that hold by construction: value and pass/FAIL (a FAIL is a bug, not a finding)."""
    cols = ["check_id", "check", "model", "expected", "value", "status"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        status = "pass" if str(r.passed).lower() in ("true", "1") else "**FAIL**"
        cells = [fmt(r.check_id), fmt(r.check), fmt(r.model), fmt(r.expected), fmt(r.value), status]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_report(claims: pd.DataFrame, results: list[str], sections: dict[str, str],
                 figures: dict[str, list[str]], scale: str, out_dir: Path, *, titles: dict[str, str] | None = None,
                 sanity: pd.DataFrame | None = None) -> str:
    titles = titles or {}
    sanity = pd.DataFrame(columns=SANITY_COLUMNS) if sanity is None else sanity
    out = [f"# gpt2-findings report ({scale} scale)", "",
           f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC} from commit `{git_commit()}`.", ""]
    if scale == "mini":
        out += ["**Mini scale**: offline, CPU, tiny models and synthetic worlds with planted ground truth. "
                "A `reproduced` verdict here means the paper's statement holds in our small analogue "
                "(named in each claim), not that the paper's numbers were matched; claims that need the "
                "papers' models or data say `not_testable_at_scale`.", ""]
    counts = claims.groupby(["result", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=[v for v in VERDICTS if v in counts.columns])
    out += ["## Verdicts", "", "| result | " + " | ".join(counts.columns) + " |",
            "|---|" + "---|" * len(counts.columns)]
    out += [f"| {r} | " + " | ".join(str(int(x)) for x in counts.loc[r]) + " |" for r in counts.index]
    if len(sanity):
        failed = sanity[~sanity["passed"].astype(str).str.lower().isin(["true", "1"])]
        out += ["", f"Sanity checks (hold by construction, not claims): {len(sanity) - len(failed)}/{len(sanity)} "
                "passed" + (f"; **failed: {', '.join(failed['check_id'])}**" if len(failed) else "") + "."]
    out += ["", "Source status: " + "; ".join(f"`{k}` = {v}" for k, v in SOURCE_STATUS.items()), ""]
    for result in results:
        out += [f"## {titles.get(result, result)}", ""]
        if result in sections:
            out += [sections[result].strip(), ""]
        sub = claims[claims.result == result]
        out += ["### Claims", "", claims_table(sub), ""]
        checks = sanity[sanity.result == result]
        if len(checks):
            out += ["### Sanity checks", "", "These hold by construction (identities, graders compiled from their own "
                    "generator); they guard the code, they are not findings.", "", sanity_table(checks), ""]
        out += ["### Figures", ""]
        for fig in figures.get(result, []):
            rel = os.path.relpath(fig, out_dir)
            out += [f"![{Path(fig).stem}]({rel})", ""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", required=True)
    ap.add_argument("--sanity", default=None, help="results/sanity_checks.csv")
    ap.add_argument("--results", nargs="+", required=True)
    ap.add_argument("--sections", nargs="*", default=[], help="results/<result>/report_section.md files")
    ap.add_argument("--figures", nargs="*", default=[], help="results/figures/<result>__<name>.png files")
    ap.add_argument("--scale", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    claims = read_table(args.claims)
    sanity = read_table(args.sanity) if args.sanity else None
    sections = {Path(p).parent.name: Path(p).read_text() for p in args.sections}
    figures: dict[str, list[str]] = {}
    for f in args.figures:
        figures.setdefault(Path(f).name.split("__")[0], []).append(f)
    from experiments.manifest import load_manifest

    titles = {r: load_manifest(r).title for r in args.results}
    text = build_report(claims, args.results, sections, figures, args.scale, Path(args.out).parent, titles=titles,
                        sanity=sanity)
    atomic_write_text(args.out, text)
    print(f"report -> {args.out}")


if __name__ == "__main__":
    main()
