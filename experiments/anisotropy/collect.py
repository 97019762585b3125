"""One isotropy table from the measure jobs, with an explicit row for every tiny language that has no texts.

    python -m experiments.anisotropy.collect --measured a.csv b.csv --tiny-langs en de ru \
        --status en=.../status.json de=... ru=... --out-all isotropy.csv --out-final isotropy_final.csv

isotropy.csv: every row of every measure job (all layers, both measures, with and without position 0), plus,
for a configured tiny language whose data is missing (so no model was trained), the rows of its trained model
and its twin with the status note "not run: missing data (...)". isotropy_final.csv: the paper's layer only
(final_norm), the table of the report (isotropy per language x model with CIs, both measures, both position-0
choices), not-run rows included.
"""
from __future__ import annotations

import argparse

import pandas as pd

from experiments.anisotropy.isotropy import FINAL
from experiments.anisotropy.measure import COLUMNS
from experiments.anisotropy.texts import read_status
from experiments.cli import add_output_args, name_pairs, optional, output_paths
from experiments.files import atomic_write_csv

NAN_OK = ["self_similarity", "isotropy", "ci_low", "ci_high", "depth", "n_layers", "n_tokens", "n_pairs",
          "n_dropped_texts", "max_tokens"]


def tiny_id(lang: str) -> str:
    from experiments.anisotropy.manifest import tiny_model_id

    return tiny_model_id(lang)


def missing_rows(status: dict[str, dict], tiny_langs: list[str]) -> list[dict]:
    rows = []
    for lang in tiny_langs:
        s = status[lang]
        if s["available"]:
            continue
        for variant, kind, suffix in (("trained", "trained_here", ""), ("random_init", "random_init", "_random_init")):
            rows.append(dict(model_id=tiny_id(lang) + suffix, model_label=f"tiny GPT-2 on {lang} (not trained)",
                             model_kind=kind, variant=variant, lang=lang, layer=FINAL, measure="pooled",
                             exclude_first=False, n_texts=0, status=s["note"]))
    return rows


def collect(measured: list[str], status: dict[str, dict], tiny_langs: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in measured]
    extra = pd.DataFrame(missing_rows(status, tiny_langs))
    df = pd.concat([f for f in frames + [extra] if len(f)], ignore_index=True).reindex(columns=COLUMNS)
    if df.duplicated(["model_id", "lang", "layer", "exclude_first", "measure"]).any():
        raise ValueError("duplicate isotropy rows (a model measured twice on one language?)")
    return df


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measured", nargs="*", default=[])
    ap.add_argument("--tiny-langs", nargs="+", type=optional(str), default=[])
    ap.add_argument("--status", nargs="+", type=optional(str), default=[], help="LANG=status.json (tiny langs)")
    add_output_args(ap, ["all", "final"])
    args = ap.parse_args(argv)
    tiny = [x for x in args.tiny_langs if x]
    status = {k: read_status(v) for k, v in name_pairs(args.status, "--status", "LANG=PATH").items()}
    df = collect(args.measured, status, tiny)
    out = output_paths(args, ["all", "final"])
    atomic_write_csv(df, out["all"], allow_nan=NAN_OK)
    final = df[(df.layer == FINAL) | df.status.ne("measured")]
    atomic_write_csv(final, out["final"], allow_nan=NAN_OK)
    show = final[(final.measure == "pooled") & (final.exclude_first.astype(str) == "False")]
    print(show[["model_id", "lang", "isotropy", "ci_low", "ci_high", "n_texts", "status"]].to_string(index=False))


if __name__ == "__main__":
    main()
