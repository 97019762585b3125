"""One table of every attack on every model (attacks.csv) and one of the defenses as trained (defenses.csv).

attacks.csv, one row per model x attack x metric (x distractor pool x candidate-set size for inference): the count
k, the n it is out of, k / n with its Wilson 95% interval, and chance where there is one.
    extraction      precision (k = real PII among the leaked, n = leaked); recall_unique (n = unique training PII,
                    ours); recall_mentions (n = PII mentions with duplicates: the original code's denominator,
                    labelled); targets only (leaked = target PII - base PII)
    reconstruction  tab (the top-1 completion opens with the target: the existing attack the paper compares with);
                    ours (the sample-then-rank attack's top-1); coverage (the target is among the candidates)
    membership      auc_loss_ratio (the paper's attack: target loss / base loss, lower = member) and auc_loss (the
                    target's loss alone), training records vs held-out records (k = members, n = members +
                    non-members; Hanley-McNeil 95% interval); targets only
    inference       accuracy with C candidates; accuracy_skip_base (the original code's variant: queries on which
                    the public base model predicts the same candidate as the target are left out, n = the rest)
defenses.csv: each target's training metadata (records, steps, DP noise, the epsilon spent by the RDP and PRV
accountants next to the configured one).

CLI:
    python -m experiments.pii_leakage.summary --scores extraction_scores.csv --infer base=infer/base.csv \\
        --infer undefended=infer/undefended.csv --reconstruct undefended=reconstruct/undefended.csv \\
        --membership undefended=membership/undefended.csv \\
        --model undefended=resources/pii_leakage/models/undefended --out-attacks attacks.csv --out-defenses defenses.csv
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from experiments.pii_leakage.manifest import BASE
from experiments.stats import wilson

OUTPUTS = ["attacks", "defenses"]


def row(model: str, attack: str, metric: str, k: int, n: int, *, pool: str = "", size: int | None = None,
        chance: float | None = None) -> dict:
    lo, hi = wilson(k, n)
    return {"model": model, "attack": attack, "metric": metric, "pool": pool, "size": size, "k": int(k), "n": int(n),
            "value": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "chance": chance}


def truthy(series: pd.Series) -> pd.Series:
    """A boolean column as read from CSV (True / False, or their strings)."""
    return series.astype(str).str.lower().eq("true")


def extraction_rows(scores: pd.DataFrame) -> list[dict]:
    out = []
    for r in scores.itertuples():
        out += [row(r.defense, "extraction", "precision", r.n_hit, r.n_leaked),
                row(r.defense, "extraction", "recall_unique", r.n_hit, r.n_real_unique),
                row(r.defense, "extraction", "recall_mentions", r.n_hit, r.n_real_mentions)]
    return out


def reconstruction_rows(model: str, rec: pd.DataFrame) -> list[dict]:
    n = len(rec)
    return [row(model, "reconstruction", "tab", truthy(rec["tab_correct"]).sum(), n),
            row(model, "reconstruction", "ours", truthy(rec["correct"]).sum(), n),
            row(model, "reconstruction", "coverage", truthy(rec["covered"]).sum(), n)]


def inference_rows(model: str, inf: pd.DataFrame, base: pd.DataFrame | None) -> list[dict]:
    """Accuracy per pool x size; with the base model's rows, also without the queries on which the base model
    predicts the same candidate as this model (the original code's "baseline leakage" skip)."""
    out = []
    key = ["pool", "size", "query"]
    joined = None
    if base is not None and model != BASE:
        b = base.rename(columns={"predicted": "base_predicted"})[key + ["base_predicted"]]
        joined = inf.merge(b, on=key, how="left", validate="one_to_one")
        if joined["base_predicted"].isna().any():
            raise ValueError(f"{model}: inference queries without a base-model row (different queries or seeds?)")
    for (pool, size), g in inf.groupby(["pool", "size"], sort=True):
        ok = truthy(g["correct"])
        out.append(row(model, "inference", "accuracy", ok.sum(), len(g), pool=pool, size=int(size),
                       chance=1 / int(size)))
        if joined is not None:
            j = joined[(joined["pool"] == pool) & (joined["size"] == size)]
            kept = j[j["predicted"] != j["base_predicted"]]
            out.append(row(model, "inference", "accuracy_skip_base", truthy(kept["correct"]).sum(), len(kept),
                           pool=pool, size=int(size), chance=1 / int(size)))
    return out


def membership_rows(model: str, mia: pd.DataFrame) -> list[dict]:
    from experiments.pii_leakage.membership import auc_ci, aucs

    m = truthy(mia["member"]).to_numpy()
    out = []
    for metric, a in aucs(mia.assign(member=m)).items():
        lo, hi = auc_ci(a, int(m.sum()), int((~m).sum()))
        out.append({"model": model, "attack": "membership", "metric": metric, "pool": "", "size": None,
                    "k": int(m.sum()), "n": len(m), "value": a, "ci_low": lo, "ci_high": hi, "chance": 0.5})
    return out


def defense_row(defense: str, model_dir: str) -> dict:
    meta = json.loads((Path(model_dir) / "training.json").read_text())
    cfg = meta.get("train_config", {})
    return {"defense": defense, "dp": bool(meta.get("dp")), "n_records": meta.get("n_records"),
            "record_tokens": meta.get("record_tokens"), "steps": meta.get("steps"),
            "sample_rate": meta.get("sample_rate"), "epochs": cfg.get("epochs"), "batch_size": cfg.get("batch_size"),
            "lr": cfg.get("lr"), "target_epsilon": meta.get("target_epsilon"), "delta": meta.get("delta"),
            "noise_multiplier": meta.get("noise_multiplier"), "epsilon_rdp": meta.get("epsilon_rdp"),
            "epsilon_prv": meta.get("epsilon_prv"), "seconds": meta.get("seconds")}


def main(argv: list[str] | None = None) -> None:
    from experiments.cli import add_output_args, name_pairs, output_paths
    from experiments.files import atomic_write_csv

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", required=True, help="experiments.pii_leakage.extraction's scores")
    ap.add_argument("--infer", action="append", required=True, help="MODEL=infer rows (one per model)")
    ap.add_argument("--reconstruct", action="append", default=[], help="MODEL=reconstruct rows")
    ap.add_argument("--model", action="append", required=True, help="DEFENSE=target model dir (training.json)")
    ap.add_argument("--membership", action="append", default=[], help="DEFENSE=membership rows")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    read = lambda p: pd.read_csv(p, keep_default_na=False)  # noqa: E731 - a name "Nan" stays a name
    infer = {m: read(p) for m, p in name_pairs(args.infer, "--infer").items()}
    rows = extraction_rows(pd.read_csv(args.scores))
    for m, p in name_pairs(args.reconstruct, "--reconstruct").items():
        rows += reconstruction_rows(m, read(p))
    for m, inf in infer.items():
        rows += inference_rows(m, inf, infer.get(BASE))
    for m, p in name_pairs(args.membership, "--membership").items():
        rows += membership_rows(m, read(p))
    attacks = pd.DataFrame(rows)
    atomic_write_csv(attacks, paths["attacks"], allow_nan=["value", "ci_low", "ci_high", "chance", "size"])
    defenses = pd.DataFrame([defense_row(d, p) for d, p in name_pairs(args.model, "--model").items()])
    atomic_write_csv(defenses, paths["defenses"], allow_nan=[c for c in defenses.columns if c != "defense"])
    print(attacks[["model", "attack", "metric", "pool", "size", "k", "n", "value"]].to_string(index=False))


if __name__ == "__main__":
    main()
