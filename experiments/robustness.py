"""`make robustness`: the mini DAG rerun with other training seeds and other CPU float kernels, and a table of
every claim's verdict and value per run. No verdict may flip across the runs.

Runs (each a whole DAG up to results/claims.csv):
    seed0   the main working directory (its results/claims.csv; brought up to date first)
    seedN   a scratch directory robustness/seedN/ where every result that trains a model uses training seed N:
            the config is overlaid with each selected result's manifest `with_seed(section, N)`
    avx2    robustness/avx2/: seed 0 with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
            MKL_ENABLE_INSTRUCTIONS=AVX2 (other float kernels, as on another CPU)
    nosimd  robustness/nosimd/: seed 0 with ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41
            MKL_ENABLE_INSTRUCTIONS=AVX (no vectorised ATen kernels, no FMA in the matrix multiplies)
    kernels whichever of the two differs from this CPU's native kernels: avx2 where torch runs AVX512 kernels,
            nosimd where it runs AVX2 ones (forcing AVX2 on an AVX2-only CPU changes nothing)

Claims are matched across runs by (result, claim_id, model), with a model's training-seed suffix (`_s<N>`)
written as `_s*`. Writes results/robustness.csv (long: run, seed, kernels, result, claim_id, model, verdict,
our_value, ci_low, ci_high) and results/robustness.md (one row per claim: the verdict and value of each run, and
FLIP where the verdicts differ). Exits 1 when a verdict flips (or a run fails).

CLI: python -m experiments.robustness [--runs seed0 seed1 seed2 kernels] [--cores all] [--out results/robustness.csv]
        [--rerun-triggers mtime]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from experiments.files import atomic_write_csv, atomic_write_text
from experiments.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
KERNELS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "nosimd": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "AVX"},
}
SEED_SUFFIX = re.compile(r"_s\d+\b")


def native_capability() -> str:
    import torch

    return torch.backends.cpu.get_cpu_capability()  # e.g. "AVX512", "AVX2", "DEFAULT"


def resolve_run(name: str) -> str:
    """'kernels' -> 'avx2' on a CPU whose native torch kernels are AVX512, else 'nosimd'."""
    if name != "kernels":
        return name
    return "avx2" if native_capability().upper().startswith("AVX512") else "nosimd"


def parse_run(name: str) -> tuple[int, str]:
    """'seed2' -> (2, 'default'); 'avx2' -> (0, 'avx2'); 'nosimd' -> (0, 'nosimd')."""
    if name in KERNELS:
        return 0, name
    m = re.fullmatch(r"seed(\d+)", name)
    if not m:
        raise ValueError(f"unknown run {name!r}: use seedN, avx2, nosimd or kernels")
    return int(m.group(1)), "default"


def overlay(config: dict, seed: int) -> dict:
    """The config overlay that makes every selected result train with `seed` (from the manifests)."""
    out = {}
    for result in config["results"]:
        part = load_manifest(result).with_seed(config[result], seed)
        if part:
            out[result] = part
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """Snakemake's --configfile rule: mappings merged key by key, everything else (lists) replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def dag_command(cores: str, workdir: Path, config_files: list[Path] = (), rerun_triggers: list[str] = ()) -> list[str]:
    """The snakemake command of one run. The target comes first: `--configfile` takes every argument after it."""
    cmd = [sys.executable, "-m", "snakemake", "results/claims.csv", "-s", str(REPO / "Snakefile"), "--cores", cores,
           "--directory", str(workdir)]
    if rerun_triggers:
        cmd += ["--rerun-triggers", *rerun_triggers]
    return cmd + (["--configfile", *map(str, config_files)] if config_files else [])


def run_dag(name: str, cores: str, config_file: Path, rerun_triggers: list[str] = ()) -> Path:
    """Run the DAG for one run; returns the claims CSV path."""
    seed, kernels = parse_run(name)
    # the rules call `python -m experiments...`: the interpreter running this (the venv's) comes first on PATH
    env = {**os.environ, **KERNELS.get(kernels, {}),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    if name == "seed0":
        workdir = REPO
        cmd = dag_command(cores, workdir, rerun_triggers=rerun_triggers)
    else:
        workdir = REPO / "robustness" / name
        workdir.mkdir(parents=True, exist_ok=True)
        link = workdir / "config"
        if not link.exists():
            link.symlink_to(REPO / "config")
        base = yaml.safe_load(config_file.read_text())
        over = overlay(base, seed) if seed else {}
        over_path = workdir / "overlay.yaml"
        atomic_write_text(over_path, yaml.safe_dump(over, sort_keys=False))
        # the converted packaged models do not depend on the seed: reuse the main directory's
        models = REPO / "resources" / "models"
        if models.is_dir() and not (workdir / "resources" / "models").exists():
            (workdir / "resources").mkdir(exist_ok=True)
            shutil.copytree(models, workdir / "resources" / "models", copy_function=os.link)
        cmd = dag_command(cores, workdir, [config_file.resolve(), over_path], rerun_triggers)
    extra = " ".join(f"{k}={v}" for k, v in KERNELS.get(kernels, {}).items())
    print(f"[{name}] {extra + ' ' if extra else ''}{' '.join(cmd)}", flush=True)
    t0 = time.time()
    log = (REPO / "logs" / "robustness" / f"{name}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        status = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir).returncode
    print(f"[{name}] exit {status} after {time.time() - t0:.0f} s (log: {log})", flush=True)
    if status != 0:
        raise RuntimeError(f"run {name} failed (exit {status}); see {log}")
    return workdir / "results" / "claims.csv"


def table(claims: dict[str, Path]) -> pd.DataFrame:
    rows = []
    for name, path in claims.items():
        seed, kernels = parse_run(name)
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
        df = df.assign(run=name, seed=seed, kernels=kernels,
                       model=df["model"].astype(str).str.replace(SEED_SUFFIX, "_s*", regex=True))
        rows.append(df[["run", "seed", "kernels", "result", "claim_id", "model", "verdict", "our_value", "ci_low",
                        "ci_high"]])
    return pd.concat(rows, ignore_index=True)


def summary(long: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per claim with `verdict (value)` per run, and the claims whose verdicts differ."""
    runs = list(dict.fromkeys(long["run"]))
    long = long.assign(cell=[f"{v} ({_fmt(x)})" if _fmt(x) else v for v, x in zip(long["verdict"], long["our_value"])])
    wide = long.pivot_table(index=["result", "claim_id", "model"], columns="run", values="cell", aggfunc="first")
    verdicts = long.pivot_table(index=["result", "claim_id", "model"], columns="run", values="verdict",
                                aggfunc="first")
    wide = wide.reindex(columns=runs)
    flips = []
    stable = []
    for key, row in verdicts.iterrows():
        seen = set(row.dropna())
        missing = row.isna().any()
        stable.append("yes" if len(seen) == 1 and not missing else ("MISSING" if missing else "FLIP"))
        if stable[-1] != "yes":
            flips.append(f"{'/'.join(key)}: " + ", ".join(f"{r} {row[r]}" for r in runs if r in row))
    wide["stable"] = stable
    return wide.reset_index(), flips


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return ""
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def markdown(wide: pd.DataFrame, flips: list[str], seconds: dict[str, float]) -> str:
    cols = list(wide.columns)
    lines = ["# Robustness: verdicts per training seed and float kernels", "",
             "Runs: " + ", ".join(f"`{r}` ({seconds.get(r, 0):.0f} s)" for r in cols if r not in
                                  ("result", "claim_id", "model", "stable")), "",
             f"{len(wide) - len(flips)}/{len(wide)} claims give the same verdict in every run." +
             (" **Flips:** " + "; ".join(flips) if flips else ""), "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in wide.iterrows():
        lines.append("| " + " | ".join(str(r[c]).replace("|", "\\|") if pd.notna(r[c]) else "" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", default=["seed0", "seed1", "seed2", "kernels"])
    ap.add_argument("--cores", default="all")
    ap.add_argument("--configfile", default=str(REPO / "config" / "config.yaml"))
    ap.add_argument("--out", default=str(REPO / "results" / "robustness.csv"))
    ap.add_argument("--rerun-triggers", nargs="+", default=[],
                    help="passed to snakemake (e.g. mtime: keep earlier runs' trained models after a code change "
                         "that cannot affect them; the default reruns every job whose code changed)")
    args = ap.parse_args(argv)
    runs = list(dict.fromkeys(resolve_run(r) for r in args.runs))
    for name in runs:
        parse_run(name)
    print(f"native torch CPU kernels: {native_capability()}; runs: {', '.join(runs)}", flush=True)
    claims, seconds = {}, {}
    for name in runs:
        t0 = time.time()
        claims[name] = run_dag(name, args.cores, Path(args.configfile), args.rerun_triggers)
        seconds[name] = time.time() - t0
    long = table(claims)
    atomic_write_csv(long, args.out, allow_nan=["our_value", "ci_low", "ci_high"])
    wide, flips = summary(long)
    atomic_write_text(Path(args.out).with_suffix(".md"), markdown(wide, flips, seconds))
    print(f"robustness -> {args.out} and {Path(args.out).with_suffix('.md')}")
    print(f"{len(wide) - len(flips)}/{len(wide)} claims stable across {', '.join(runs)}")
    for f in flips:
        print("FLIP", f)
    return 1 if flips else 0


if __name__ == "__main__":
    sys.exit(main())
