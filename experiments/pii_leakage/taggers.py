"""PII taggers: each returns spans {start, end, type, text} of a text; the tagger's name is in every result row.

    oracle     a record's planted spans (training data: exact truth)
    gazetteer  exact, case-sensitive matches of a list of known PII strings (generated text: the planted universe,
               the pipeline's stand-in for an NER that knows every planted identity; longest match first)
    regex      what a simple NER catches: two or three capitalised words for PERSON, and later mentions of such a
               name's surname alone (so "john smith" in lower case is missed: the world's informal mentions), plus
               patterns for EMAIL, PHONE, DATE and street ADDRESS (matched first, so an address is not a name)
A real NER (Flair at paper scale, spaCy/Presidio where one installs offline) is an optional extra, labelled.
"""
from __future__ import annotations

import re
from typing import Iterable

EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
PHONE_RE = re.compile(r"(?<!\d)(?:\+1[ -]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)")
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DATE_RE = re.compile(rf"\b\d{{1,2}} (?:{MONTHS}) \d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b")
ADDRESS_RE = re.compile(r"\b\d{1,6}(?: (?!Apt\b|Suite\b)[A-Z][a-z]+){2,4}(?: (?:Apt\.|Suite) \d+)?")
PERSON_RE = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?(?: [A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?){1,2}\b")
# capitalised words that open sentences and headers of the record styles; a PERSON match starting with one is
# trimmed to the words after it
STOPWORDS = frozenset("The A An On In Hi From Subject Meeting Dr Mr Mrs Ms Please Call Thanks Reminder Great "
                      "Parking Booked Letters Send I My We".split())


def _span(m: re.Match, kind: str, offset: int = 0) -> dict:
    return {"start": m.start() + offset, "end": m.end() + offset, "type": kind, "text": m.group(0)}


def overlaps(a: dict, b: dict) -> bool:
    """Whether two spans share a character."""
    return a["start"] < b["end"] and b["start"] < a["end"]


def regex_tag(text: str) -> list[dict]:
    """Non-overlapping spans: EMAIL, PHONE, DATE, ADDRESS first, then PERSON in what is left."""
    spans: list[dict] = []
    for kind, pattern in (("EMAIL", EMAIL_RE), ("PHONE", PHONE_RE), ("DATE", DATE_RE), ("ADDRESS", ADDRESS_RE)):
        for m in pattern.finditer(text):
            s = _span(m, kind)
            if not any(overlaps(s, t) for t in spans):
                spans.append(s)
    for m in PERSON_RE.finditer(text):
        words = m.group(0).split(" ")
        drop = 0
        while drop < len(words) and words[drop] in STOPWORDS:
            drop += 1
        if len(words) - drop < 2:
            continue
        start = m.start() + sum(len(w) + 1 for w in words[:drop])
        s = {"start": start, "end": m.end(), "type": "PERSON", "text": text[start:m.end()]}
        if not any(overlaps(s, t) for t in spans):
            spans.append(s)
    # a later reference by surname alone ("... Smith said"), as an NER tags it: the last word of a name found above
    surnames = {s["text"].split(" ")[-1] for s in spans if s["type"] == "PERSON"}
    if surnames:
        for s in Gazetteer(surnames)(text):
            if not any(overlaps(s, t) for t in spans):
                spans.append(s)
    return sorted(spans, key=lambda s: s["start"])


class Gazetteer:
    """Exact, case-sensitive occurrences of known strings of one type, on word boundaries, longest first."""

    def __init__(self, strings: Iterable[str], kind: str = "PERSON"):
        items = sorted({s for s in strings if s}, key=len, reverse=True)
        if not items:
            raise ValueError("empty gazetteer")
        self.kind = kind
        self._re = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, items)) + r")(?!\w)")

    def __call__(self, text: str) -> list[dict]:
        return [_span(m, self.kind) for m in self._re.finditer(text)]


def oracle_tag(record: dict) -> list[dict]:
    """A record's planted spans (from experiments.pii_leakage.world)."""
    return [{k: s[k] for k in ("start", "end", "type", "text")} for s in record["spans"]]

