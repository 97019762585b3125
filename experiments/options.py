"""Option dataclasses built from config mappings: an unknown key fails with the known ones listed."""
from __future__ import annotations

from dataclasses import fields


def check_known(cls, d: dict, what: str) -> None:
    """Raise ValueError naming the keys of `d` that are not fields of dataclass `cls`."""
    known = sorted(f.name for f in fields(cls))
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"unknown {what} option(s): {sorted(unknown)}; known: {known}")
