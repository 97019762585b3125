"""Which external artifacts a config needs, whether each is in the local HF cache (no network), how big each
is, and how much GPU memory each GPU rule is expected to need.

Lists every hub model (tokenizers, released checkpoints, judges, base models) and hub dataset the selected
results need (each result's manifest says which: `Manifest.artifacts`, in experiments/<result>/external.py),
checks each one with the same checks the rules run before any compute, and prints one line per artifact with
its expected size (parameter count -> bytes in fp32 / bf16). Then, when `compute.gpu` is true, one line per GPU
rule (`Manifest.gpu_jobs`): the estimated peak GPU memory of its largest job, compared with
`compute.gpu_mem_mb` (WARNING where the estimate exceeds it, "tight" above 85% of it).
Exits 1 with the full list of what is missing and how to get it; memory warnings do not change the status.

Parameter counts and the memory model: experiments.lm.memory (cached config.json, else its KNOWN_ARCHS table;
models the pipeline builds are counted from the config's shapes).

The config is read as the workflow reads it: config/config.yaml updated by the given file (as `snakemake
--configfile FILE` does over the Snakefile's `configfile:`), each result's section validated by
config/schemas/<result>.yaml with its defaults filled.

CLI: python -m experiments.check_paper --config config/paper.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from experiments import manifest as manifests
from experiments.data.hub import cached_dataset_snapshot, check_dataset_available
from experiments.errors import MissingArtifactError
from experiments.lm.load import check_available
from experiments.lm.memory import GB, MB, fmt_bytes, model_size_text
from experiments.manifest import GpuJob

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / "config" / "config.yaml"

# Hub datasets: approximate download size, for planning disk (the cache holds the files plus Arrow copies).
# Skylion007/openwebtext: its dataset card ("Size of downloaded dataset files: 13.51 GB; generated: 41.70 GB").
KNOWN_DATASET_SIZES: dict[str, str] = {
    "Skylion007/openwebtext": "~13.5 GB download, ~41.7 GB as Arrow (dataset card)",
}


def load_config(path: str | Path) -> dict:
    """The config the workflow sees for `--configfile path`: config/config.yaml updated key by key by `path`
    (lists replaced), the shared keys validated by config/schema.yaml and each result's section by its schema,
    defaults filled."""
    from snakemake.utils import update_config, validate

    cfg = yaml.safe_load(BASE_CONFIG.read_text())
    if Path(path).resolve() != BASE_CONFIG.resolve():
        update_config(cfg, yaml.safe_load(Path(path).read_text()) or {})
    validate(cfg, str(REPO / "config" / "schema.yaml"), set_default=True)
    for result in manifests.available_results():
        if result in cfg:
            validate(cfg[result], str(REPO / "config" / "schemas" / f"{result}.yaml"), set_default=True)
    return cfg


def selected(cfg: dict) -> list[tuple[manifests.Manifest, dict]]:
    """(manifest, section) of every result the config selects (`results`), in that order."""
    missing = [r for r in cfg["results"] if r not in cfg]
    if missing:
        raise ValueError(f"config: results lists {missing} but there is no section for them")
    return [(manifests.load_manifest(r), cfg[r]) for r in cfg["results"]]


def dataset_size_text(name: str) -> str:
    dataset, _, rev = name.partition("@")
    snapshot = cached_dataset_snapshot(dataset, rev or None)
    if snapshot is not None:
        size = sum(p.stat().st_size for p in snapshot.rglob("*") if p.is_file())  # follows blob symlinks
        return f"{fmt_bytes(size)} cached"
    return KNOWN_DATASET_SIZES.get(dataset, "size unknown until downloaded")


# --------------------------------------------------------------------------- memory estimates


def gpu_jobs(cfg: dict) -> list[GpuJob]:
    """Every job of a GPU rule the config schedules (each selected result's `Manifest.gpu_jobs`), with its estimate."""
    return [job for m, section in selected(cfg) for job in m.gpu_jobs(section, cfg)]


TIGHT = 0.85  # "tight": the estimate leaves less than 15% of compute.gpu_mem_mb for allocator overhead


def memory_report(cfg: dict) -> list[str]:
    """One line per GPU rule (its largest job): WARNING where the estimate exceeds compute.gpu_mem_mb,
    "tight" where it uses more than 85% of it, else ok."""
    compute = cfg["compute"]
    if not compute["gpu"]:
        return ["GPU memory: compute.gpu is false, no rule asks for a GPU"]
    limit = compute["gpu_mem_mb"] * MB
    jobs = gpu_jobs(cfg)
    lines = [f"GPU memory per GPU rule (estimated peak of its largest job; compute.gpu_mem_mb = "
             f"{limit / MB:,.0f} MB = {limit / GB:.1f} GB):"]
    for rule in dict.fromkeys(j.rule for j in jobs):
        mine = [j for j in jobs if j.rule == rule]
        unknown = [j.target for j in mine if j.estimate is None]
        known = [j for j in mine if j.estimate is not None]
        if known:
            worst = max(known, key=lambda j: j.estimate.total)
            over = [j.target for j in known if j.estimate.total > limit]
            tight = worst.estimate.total > TIGHT * limit
            flag = "WARNING" if over else ("tight  " if tight else "ok     ")
            lines.append(f"{flag} {rule:17s} {worst.target} ({worst.what}): {fmt_bytes(worst.estimate.total)} "
                         f"[{worst.estimate.describe()}]")
            if over:
                lines.append(f"        {len(over)}/{len(mine)} {rule} job(s) over {limit / GB:.1f} GB: "
                             f"{', '.join(over)}")
        if unknown:
            lines.append(f"?       {rule:17s} no estimate (architecture unknown): {', '.join(unknown)}")
    return lines


# --------------------------------------------------------------------------- artifacts


def artifacts(cfg: dict) -> list[tuple[str, str, str]]:
    """(kind, name, used by) for every external model and dataset the selected results need
    (each result's `Manifest.artifacts`), in the order of `results`."""
    return [(a.kind, a.name, a.used_by) for m, section in selected(cfg) for a in m.artifacts(section, cfg)]


def check(kind: str, name: str) -> str | None:
    try:
        if kind == "model":
            check_available(name)
        else:
            dataset, _, rev = name.partition("@")
            check_dataset_available(dataset, rev or None)
    except MissingArtifactError as err:
        return str(err)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    missing = []
    for kind, name, used_by in artifacts(cfg):
        problem = check(kind, name)
        size = model_size_text(name) if kind == "model" else dataset_size_text(name)
        print(f"{'ok     ' if problem is None else 'MISSING'} {kind:7s} {name}  ({used_by})  {size}")
        if problem:
            missing.append(problem)
    print()
    print("\n".join(memory_report(cfg)))
    if missing:
        print(f"\n{len(missing)} artifact(s) missing:\n" + "\n".join(f"- {m}" for m in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
