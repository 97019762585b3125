"""Scrubbing (the paper's defense): every span a tagger found, of every type, becomes the mask token before
fine-tuning. What survives is measured against the planted truth: the spans the tagger missed are the only PII a
scrubbed model can have seen.
"""
from __future__ import annotations

MASK = "<MASK>"


def scrub(text: str, spans: list[dict], mask: str = MASK) -> str:
    """`text` with each (non-overlapping) span replaced by `mask`."""
    out, cursor = [], 0
    for s in sorted(spans, key=lambda s: s["start"]):
        if s["start"] < cursor:
            raise ValueError(f"overlapping spans at {s['start']}")
        out += [text[cursor:s["start"]], mask]
        cursor = s["end"]
    out.append(text[cursor:])
    return "".join(out)


def missed(truth: list[dict], tagged: list[dict]) -> list[dict]:
    """Planted spans that no tagged span overlaps (they stay in the scrubbed text verbatim)."""
    return [t for t in truth if not any(t["start"] < s["end"] and s["start"] < t["end"] for s in tagged)]
