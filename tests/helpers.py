"""Shared test helpers: the mini config's sections as the workflow sees them (schema defaults filled)."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def _mini_config() -> dict:
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for result, section in cfg.items():
        schema = ROOT / "config" / "schemas" / f"{result}.yaml"
        if schema.is_file():
            validate(section, str(schema), set_default=True)
    return cfg


def mini_section(result: str) -> dict:
    """A deep copy of the validated `result:` section of config/config.yaml."""
    return copy.deepcopy(_mini_config()[result])
