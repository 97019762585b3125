"""Exact recognizer and consistency checker for StoryWorld text.

The recognizer is compiled from the generator's own templates (`templates.COMPILED`), so the
two cannot drift apart.  A sentence is *grammatical* iff it is, token for token, some
expanded template with

  * every slot filled by a word of that slot's word list (full lexicon, not only the
    words a given `WorldConfig` uses);
  * agreement inside the sentence: all slots of one role share gender (``a girl named
    Lily``, ``Lily ... her``) and the place preposition matches the place (``at the
    beach``); ``a``/``an`` chosen by the next word's first letter; verb agreement is
    literal in the templates (``They were``, ``I am``, ``Sharing makes``);
  * capitals exactly at the sentence start and at the first word inside a quote;
  * canonical spacing (``Lily said, "Hi!"``) and final punctuation.

No external parser: each template variant is a fixed-length token sequence, indexed by
(length, first token); matching is a linear scan with feature unification.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from experiments.tinystories.lexicon import SLOT_KIND, slot_lexicon
from experiments.tinystories.templates import QUOTE, Variant, all_variants, capitalize, render_tokens

_TOKEN_RE = re.compile(r"[A-Za-z']+|\S")


def tokenize(sentence: str) -> list[str]:
    """Words (letters and apostrophes) and single non-space characters."""
    return _TOKEN_RE.findall(sentence)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (whitespace normalised to single spaces).

    Newlines always end a sentence.  Otherwise a sentence ends after a word ending in
    ``.``, ``!`` or ``?`` (optionally followed by a closing quote) when no quote is open,
    except that a closing quote followed by a lower-case word continues the sentence
    (``"Can I play?" asked Tom.``).  An unclosed quote runs to the end of the line.
    """
    out: list[str] = []
    for line in text.split("\n"):
        chunks = line.split()
        cur: list[str] = []
        in_quote = False
        for i, chunk in enumerate(chunks):
            cur.append(chunk)
            if chunk.count(QUOTE) % 2:
                in_quote = not in_quote
            core = chunk.rstrip(QUOTE)
            if in_quote or not core or core[-1] not in ".!?":
                continue
            nxt = chunks[i + 1] if i + 1 < len(chunks) else ""
            if chunk.endswith(QUOTE) and nxt[:1].islower():
                continue
            out.append(" ".join(cur))
            cur = []
        if cur:
            out.append(" ".join(cur))
    return out


# --------------------------------------------------------------------------- compilation
@dataclass(frozen=True)
class Slot:
    """A filled slot: slot name (e.g. "M.poss", "O.colour", "feel"), canonical word, token index."""

    name: str
    word: str
    index: int

    @property
    def kind(self) -> str | None:
        """Planted-fact kind this slot references (name, pronoun, colour, size, object,
        place, animal) or None."""
        return SLOT_KIND.get(self.name)


@dataclass(frozen=True)
class Parse:
    """Which template variant matched and how its slots were filled."""

    template_id: str
    category: str
    tokens: tuple[str, ...]
    slots: tuple[Slot, ...]

    def words(self, kind: str) -> list[str]:
        return [s.word for s in self.slots if s.kind == kind]


@dataclass
class _Matcher:
    variant: Variant
    surfaces: list[dict[str, str]]  # per position: surface token -> canonical word
    feats: list[dict[str, dict[str, str]] | None]  # per slot position: word -> features
    roles: list[str | None]  # agreement variable (role) per position
    articles: list[int]
    slot_pos: list[int]


def _surface_map(words: dict[str, Any] | set[str], cap: bool) -> dict[str, str]:
    return {(capitalize(w) if cap else w): w for w in words}


def _compile(v: Variant) -> _Matcher:
    surfaces, feats, roles, arts, slots = [], [], [], [], []
    for i, el in enumerate(v.elements):
        if el.kind == "slot":
            lex = slot_lexicon(el.value)
            surfaces.append(_surface_map(lex, el.cap))
            role = el.value.split(".")[0] if "." in el.value else None
            feats.append(lex if role and any(lex.values()) else None)
            roles.append(role)
            slots.append(i)
        else:
            words = {"a", "an"} if el.kind == "art" else {el.value}
            surfaces.append(_surface_map(words, el.cap))
            feats.append(None)
            roles.append(None)
            if el.kind == "art":
                arts.append(i)
    return _Matcher(v, surfaces, feats, roles, arts, slots)


def _build_index() -> dict[tuple[int, str], list[_Matcher]]:
    index: dict[tuple[int, str], list[_Matcher]] = defaultdict(list)
    for v in all_variants():
        m = _compile(v)
        for surface in m.surfaces[0]:
            index[(len(v.elements), surface)].append(m)
    return dict(index)


_INDEX = _build_index()


def _match(m: _Matcher, toks: list[str]) -> list[str] | None:
    canon: list[str] = []
    binds: dict[str, dict[str, str]] = {}
    for tok, surf, feats, role in zip(toks, m.surfaces, m.feats, m.roles):
        w = surf.get(tok)
        if w is None:
            return None
        if feats is not None:
            b = binds.setdefault(role, {})
            for key, val in feats[w].items():
                if b.setdefault(key, val) != val:
                    return None
        canon.append(w)
    for i in m.articles:
        if canon[i] != ("an" if canon[i + 1][0] in "aeiouAEIOU" else "a"):
            return None
    return canon


def parse_sentence(sentence: str) -> Parse | None:
    """Parse one sentence (outer whitespace ignored); None if no template derives it."""
    s = sentence.strip()
    toks = tokenize(s)
    if not toks or render_tokens(toks) != s:
        return None
    for m in _INDEX.get((len(toks), toks[0]), ()):
        canon = _match(m, toks)
        if canon is not None:
            slots = tuple(Slot(m.variant.elements[i].value, canon[i], i) for i in m.slot_pos)
            return Parse(m.variant.template_id, m.variant.category, tuple(toks), slots)
    return None


def is_grammatical(sentence: str) -> bool:
    return parse_sentence(sentence) is not None


# --------------------------------------------------------------------------- consistency
@dataclass
class ConsistencyResult:
    n_checks: int
    n_consistent: int
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n_consistent / self.n_checks if self.n_checks else float("nan")


def _pronoun_gender(word: str) -> str:
    return "female" if word in ("she", "her") else "male"


def _expected(kind: str, word: str, facts: dict[str, Any]) -> tuple[Any, bool]:
    friend = facts.get("friend") or {}
    if kind == "name":
        cast = [facts["main"]["name"]] + ([friend["name"]] if friend.get("kind") == "child" else [])
        return cast, word in cast
    if kind == "pronoun":
        g = facts["main"]["gender"]
        return g, _pronoun_gender(word) == g
    if kind in ("colour", "size"):
        exp = facts["object"][kind]
    elif kind == "object":
        exp = facts["object"]["noun"]
    elif kind == "place":
        exp = facts["place"]
    else:  # animal
        exp = friend.get("species") if friend.get("kind") == "animal" else None
    return exp, word == exp


def check_consistency(facts: dict[str, Any], text: str) -> ConsistencyResult:
    """Check every reference to a planted fact in the parsed sentences of `text`.

    One check per fact-bearing slot filler of each sentence that parses (unparsable
    sentences contribute none; grammar is measured separately):
      * name      - a character name must be the main character's or the friend's;
      * pronoun   - she/he/her/him/his must have the main character's gender (StoryWorld
                    convention: gendered pronouns always denote the main character);
      * colour, size - a colour/size word (only ever attached to the story's object) must
                    be the planted one; object - an object noun must be the planted one;
      * place     - a place noun must be the planted place;
      * animal    - an animal noun must be the story's animal (none planted -> inconsistent).
    Gender of ``a girl/boy named X`` and prepositions are agreement, i.e. grammar.
    details: one dict per check {sentence, kind, word, expected, ok}.
    """
    res = ConsistencyResult(0, 0)
    for si, sentence in enumerate(split_sentences(text)):
        parse = parse_sentence(sentence)
        if parse is None:
            continue
        for slot in parse.slots:
            if slot.kind is None:
                continue
            expected, ok = _expected(slot.kind, slot.word, facts)
            res.n_checks += 1
            res.n_consistent += ok
            res.details.append({"sentence": si, "kind": slot.kind, "word": slot.word,
                                "expected": expected, "ok": ok})
    return res
