"""Result manifests: what each result declares so that shared code never names a result.

Every result package `experiments/<result>/` has a `manifest.py` with `MANIFEST = Manifest(...)`: its title,
its figures (name -> plot function, input CSVs, caption), its claims step (inputs and extra arguments), the
external artifacts it needs per config (hub models and datasets), its GPU jobs with what the memory
estimate needs, its paper-scale smoke cases (a module) and its cross-field config checks. The Snakefile,
the report writer, `check_paper`, `smoke_paper` and the generic figure / claims rules loop over these.

Adding a result touches only its package (with this manifest), `workflow/rules/<result>.smk` and
`config/schemas/<result>.yaml`.

Manifests are imported when the Snakefile loads, so they import nothing heavy (no torch, pandas, matplotlib):
plot functions and smoke modules are named by dotted path and imported only when used.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PACKAGE_DIR = Path(__file__).resolve().parent

Section = dict  # the result's config section (validated, defaults filled)
Config = dict  # the whole config


@dataclass(frozen=True)
class Figure:
    """results/figures/<result>__<name>.png (+ .pdf), drawn by `plot(inputs, out_png)` from `inputs(section)`."""

    name: str
    plot: str  # "module:function"; the function takes (list of input paths, output png path)
    inputs: Callable[[Section], list[str]]
    caption: str  # reStructuredText-safe prose (no `|`): the HTML report's caption


@dataclass(frozen=True)
class Artifact:
    """An external model or dataset a config needs (checked in the local HF cache before any job)."""

    kind: str  # "model" (a model spec) | "dataset" (NAME[@revision])
    name: str
    used_by: str


@dataclass(frozen=True)
class GpuJob:
    """One job of a GPU rule, with what experiments.lm.memory needs to estimate its peak GPU memory."""

    rule: str
    target: str
    what: str  # e.g. "203.1M params, micro-batch 80 x 512"
    estimate: object | None  # experiments.lm.memory.Estimate, or None when the architecture is unknown


@dataclass(frozen=True)
class Manifest:
    result: str
    title: str
    paper: str  # citation
    figures: tuple[Figure, ...] = ()
    # claims step: named inputs (argument name -> path or list of paths) and extra CLI arguments
    claims_inputs: Callable[[Section], dict[str, str | list[str]]] = lambda section: {}
    claims_args: Callable[[Section, Config], str] = lambda section, config: ""
    artifacts: Callable[[Section, Config], list[Artifact]] = lambda section, config: []
    gpu_jobs: Callable[[Section, Config], list[GpuJob]] = lambda section, config: []
    smoke: str | None = None  # module with CASES (experiments.smoke_paper.Case list) for `make smoke-paper`
    check_config: Callable[[Section, Config], None] = lambda section, config: None
    # `make robustness`: the part of this result's section to overlay (merged key by key, lists replaced) so
    # that every model the result trains uses training seed `seed`; {} when the result trains nothing.
    with_seed: Callable[[Section, int], dict] = lambda section, seed: {}
    extra: dict = field(default_factory=dict)

    def figure(self, name: str) -> Figure:
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(f"{self.result} has no figure {name!r}; it has {[f.name for f in self.figures]}")

    def figure_paths(self) -> list[str]:
        return [f"results/figures/{self.result}__{f.name}.png" for f in self.figures]


def available_results() -> list[str]:
    """Every package under experiments/ with a manifest.py, in name order."""
    return sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)])
                  if m.ispkg and (PACKAGE_DIR / m.name / "manifest.py").is_file())


def load_manifest(result: str) -> Manifest:
    if result not in available_results():
        raise ValueError(f"unknown result {result!r}: no experiments/{result}/manifest.py "
                         f"(known: {available_results()})")
    manifest = importlib.import_module(f"experiments.{result}.manifest").MANIFEST
    if manifest.result != result:
        raise ValueError(f"experiments/{result}/manifest.py declares result {manifest.result!r}")
    return manifest


def resolve(dotted: str) -> Callable:
    """'package.module:function' -> the function."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)
