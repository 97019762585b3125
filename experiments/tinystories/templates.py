"""StoryWorld's sentence templates and their compilation into fixed token sequences.

Template language (shared with the recognizer in `grammar.py`, defined once here):
  * tokens separated by spaces; punctuation and quote marks are tokens of their own;
  * ``{R.attr}``: a role slot; R in M (main character), F (friend child), O (object),
    P (place), A (animal); attr in name/kid/subj/obj/poss, noun/colour/size, prep;
  * ``{feel}`` etc.: a free slot filled from a word list (see lexicon.FREE_CLASSES);
  * ``(x|y_z)``: alternatives, ``_`` joins several words; ``[x]`` optional;
  * the literal ``a`` is the indefinite article: rendered ``a``/``an`` from the next word;
  * a leading ``@friend`` marks a template that needs a friend (child or animal), e.g. "They";
  * an entry that is a tuple of strings is ONE template with several surface forms (a
    story never uses two forms of the same entry, e.g. the same utterance twice).
Conventions the recognizer and the consistency checker rely on:
  * gendered pronouns (she/he/her/him/his) ALWAYS denote the main character M; the
    friend F is only ever referred to by name (enforced when templates are compiled);
  * the object, place, animal, colour and size word lists are disjoint from every other
    word list, so each such word is a reference to a planted fact (`_check_lexicon`);
  * the sentence's first word and the first word inside a quote are capitalised.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass
from typing import Iterable

from experiments.tinystories.lexicon import (
    ANIMALS,
    BOY_NAMES,
    COLOURS,
    FREE_CLASSES,
    GIRL_NAMES,
    OBJECTS,
    PLACES,
    ROLE_ATTRS,
    SIZES,
)

_T = dict[str, tuple[str | tuple[str, ...], ...]]

TEMPLATES: _T = {
    "intro": (
        "Once upon a time , there was a [{cadj}] {M.kid} named {M.name} .",
        "Once there was a [{cadj}] {M.kid} named {M.name} .",
        "There once was a [{cadj}] {M.kid} named {M.name} .",
        "Once upon a time , a [{cadj}] {M.kid} named {M.name} lived in a (cozy|pretty|old) house .",
        "{M.name} was a [{cadj}] {M.kid} .",
    ),
    "has_object": (
        "{M.name} had a {O.size} {O.colour} {O.noun} .",
        "{M.subj} had a {O.size} {O.colour} {O.noun} .",
        "{M.subj} had a {O.size} {O.colour} {O.noun} that {M.subj} loved very much .",
        "{M.name} loved {M.poss} {O.size} {O.colour} {O.noun} .",
        "Every day , {M.name} played with {M.poss} {O.size} {O.colour} {O.noun} .",
        "{M.poss} favorite toy was a {O.size} {O.colour} {O.noun} .",
        "{M.poss} {parent} gave {M.obj} a {O.size} {O.colour} {O.noun} .",
    ),
    "likes_place": (
        "{M.subj} liked to play {P.prep} the {P.noun} .",
        "{M.subj} loved to go to the {P.noun} .",
        "{M.name} lived near the {P.noun} .",
        "Every day , {M.subj} went to the {P.noun} .",
        "{M.poss} favorite place was the {P.noun} .",
        "{M.subj} often played {P.prep} the {P.noun} with {M.poss} {parent} .",
    ),
    "friend_child": (
        "{M.name} had a friend named {F.name} .",
        "{M.poss} best friend was a [{cadj}] {F.kid} named {F.name} .",
        "{F.name} was {M.poss} best friend .",
        "{M.subj} often played with a {F.kid} named {F.name} .",
    ),
    "friend_animal": (
        "{M.subj} had a {aadj} {A.noun} .",
        "{M.name} had a pet {A.noun} .",
        "{M.poss} best friend was a {aadj} {A.noun} .",
        "A {aadj} {A.noun} lived near {M.poss} house .",
    ),
    "event_start": (
        "One day , {M.name} went to the {P.noun} with {M.poss} {O.noun} .",
        "One day , {M.subj} took {M.poss} {O.noun} to the {P.noun} .",
        "It was a {weather} day .",
        "One {weather} (day|morning) , {M.name} (went|ran|walked) to the {P.noun} .",
        "The sun was (warm|bright) and the sky was clear .",
        "{M.subj} woke up early and (ran|went) to the {P.noun} .",
        "One day , {M.name} and {F.name} went to the {P.noun} .",
        "{F.name} came to play with {M.obj} .",
        "One day , {M.name} and the {A.noun} went to the {P.noun} .",
    ),
    "event_mid": (
        "{M.subj} {ivp} {adv} .",
        "{M.name} played with the {O.noun} all day .",
        "{M.subj} held the {O.noun} up high .",
        "{M.subj} ate a {food} (under|near) a {thing} .",
        "{M.poss} {parent} (smiled|laughed|waved) at {M.obj} .",
        "{M.subj} wanted to show the {O.noun} to {M.poss} {parent} .",
        "{M.name} ran around the {P.noun} .",
        "Then , {M.subj} sat (under|near) a {thing} to rest .",
        "{M.subj} sang a song about the {O.noun} .",
        "{F.name} wanted to play with the {O.noun} too .",
        "{M.name} and {F.name} played together all day .",
        "{M.subj} shared the {O.noun} with {F.name} .",
        "{M.subj} gave the {O.noun} to {F.name} .",
        "@friend They (laughed|played|ran|danced) together .",
        "@friend They were very {feel} .",
        "The {A.noun} wanted to play with the {O.noun} .",
        "{M.name} chased the {A.noun} all around the {P.noun} .",
        "{M.subj} gave the {A.noun} a {food} .",
        "The {A.noun} was very {feel} .",
        "The {A.noun} and {M.name} played together .",
    ),
    "event_problem": (
        "Suddenly , the {O.noun} was gone !",
        "Then , {M.subj} could not find the {O.noun} .",
        "{M.subj} looked everywhere for the {O.noun} .",
        "A strong wind came and took the {O.noun} away .",
        "The {O.noun} fell into a (hole|puddle) .",
        "But then , it started to rain .",
        "{F.name} took the {O.noun} and ran away .",
        "{F.name} wanted the {O.noun} , but {M.name} said no .",
        "The {A.noun} (took|grabbed) the {O.noun} and ran away .",
        "The {A.noun} got lost {P.prep} the {P.noun} .",
    ),
    "event_react": (
        "{M.name} was very {badfeel} .",
        "{M.subj} was (very|so) {badfeel} .",
        "{M.subj} felt so {badfeel} that {M.subj} (cried|sat_down) .",
        "{M.subj} did not know what to do .",
        "{M.subj} asked {M.poss} {parent} for help .",
        "{M.poss} {parent} gave {M.obj} a (warm|long) hug .",
        "{F.name} was {badfeel} too .",
        "{F.name} said sorry to {M.obj} .",
        "The {A.noun} looked at {M.obj} .",
    ),
    "twist": (
        "But then , something (strange|funny|surprising|amazing) happened .",
        "The {O.noun} began to (glow|sing|fly|dance|talk) !",
        "It was a magic {O.noun} !",
        "To {M.poss} surprise , the {O.noun} could talk !",
        "The {A.noun} could talk !",
        "The {A.noun} was really a (prince|princess|fairy) !",
    ),
    "callback": (
        "{M.name} picked up {M.poss} {O.colour} {O.noun} .",
        "{M.subj} hugged {M.poss} {O.size} {O.colour} {O.noun} .",
        "{M.subj} found {M.poss} {O.colour} {O.noun} (under|behind|near) a {thing} .",
        "{M.name} took {M.poss} {O.colour} {O.noun} back to the {P.noun} .",
        "{M.subj} held {M.poss} {O.size} {O.noun} (tight|close) .",
        "{M.name} loved {M.poss} {O.colour} {O.noun} more than ever .",
        "The {O.size} {O.colour} {O.noun} was safe again .",
        "{M.subj} went back to the {P.noun} with {M.poss} {O.colour} {O.noun} .",
        "{M.name} put the {O.colour} {O.noun} next to {M.poss} bed .",
        "{M.subj} played {P.prep} the {P.noun} until the sun went down .",
        "{M.name} and {F.name} played with the {O.colour} {O.noun} .",
        "{F.name} gave the {O.colour} {O.noun} back to {M.name} .",
        "{F.name} helped {M.obj} find the {O.size} {O.noun} .",
        "The {A.noun} brought back the {O.colour} {O.noun} .",
        "The {A.noun} helped {M.obj} find the {O.colour} {O.noun} .",
    ),
    "good_ending": (
        "{M.name} was (very|so) happy .",
        "{M.subj} went home and took a nap .",
        "It was the best day ever .",
        "{M.subj} smiled and went home .",
        "That night , {M.name} dreamed about {M.poss} {O.noun} .",
        "{M.name} and {F.name} were best friends forever .",
        "{M.name} and {F.name} played every day after that .",
        "The {A.noun} and {M.name} became best friends .",
    ),
    "bad_ending": (
        "The {O.noun} broke and {M.name} cried .",
        "{M.name} never saw {M.poss} {O.colour} {O.noun} again .",
        "{M.subj} was sad for a long time .",
        "The {O.noun} was lost forever .",
        "In the end , {M.name} went home alone .",
        "{F.name} never played with {M.name} again .",
        "The {A.noun} ran away and never came back .",
    ),
    "moral": (
        "{M.name} learned that (sharing|helping|being_kind) is (good|important) .",
        "From that day on , {M.name} always shared {M.poss} toys .",
        "{M.subj} learned to be kind to others .",
        "{M.subj} learned that it is good to (share|help|be_careful) .",
        "(Sharing|Helping_others) makes everyone happy .",
        "Good friends always help each other .",
    ),
}

# Dialogue: utterances by speaker; composed into quoted sentences by _dialogue_templates.
UTTERANCES: dict[str, tuple[str, ...]] = {
    "M": (
        "I love my {O.colour} {O.noun} !",
        "Look at my {O.size} {O.noun} !",
        "Where is my {O.noun} ?",
        "I am so {feel} !",
        "This is the best day ever !",
        "I like the {P.noun} .",
        "The {P.noun} is so much fun !",
        "I want to go home .",
        "Do you like my {O.noun} ?",
        "Thank you , {F.name} !",
        "@friend You are my best friend .",
        "@friend Let's play again tomorrow .",
        "{F.name} , do you want to play ?",
        "@friend We can share my {O.noun} .",
        "Come here , little {A.noun} !",
        "You are a good {A.noun} .",
    ),
    "F": (
        "Can I play with your {O.noun} ?",
        "Thank you , {M.name} !",
        "I like your {O.colour} {O.noun} .",
        "You are my best friend .",
        "Let's play again tomorrow .",
        "Your {O.noun} is so pretty !",
    ),
}


def _dialogue_templates() -> tuple[tuple[str, ...], ...]:
    """Quote each utterance in the three TinyStories shapes:
    ``Lily said, "U"`` / ``"U," said Lily.`` / ``"U?" asked Lily.`` (one entry per utterance)."""
    out = []
    for speaker, utterances in UTTERANCES.items():
        subjects = [f"{{{speaker}.name}}"] + (["{M.subj}"] if speaker == "M" else [])
        for u in utterances:
            marker = "@friend " if u.startswith("@friend ") else ""
            u = u.removeprefix(marker)
            body, mark = u[:-2], u[-1]
            forms = [f'{marker}{subj} said , " {u} "' for subj in subjects]
            if mark == "?":
                forms.append(f'{marker}" {u} " asked {{{speaker}.name}} .')
            else:
                forms.append(f'{marker}" {body} {"," if mark == "." else mark} " said {{{speaker}.name}} .')
            out.append(tuple(forms))
    return tuple(out)


TEMPLATES["dialogue"] = _dialogue_templates()

# --------------------------------------------------------------------------- compilation
ENDS = frozenset(".!?")
_RESTATED = {"O.colour": "colour", "O.size": "size", "P.noun": "place"}
PUNCT = frozenset(".,!?")
QUOTE = '"'


@dataclass(frozen=True)
class Element:
    """One token position of a compiled template."""

    kind: str  # "lit" | "art" | "slot"
    value: str  # literal word (canonical, lowercase except "I") or slot name
    cap: bool  # rendered capitalised (sentence start / first word inside a quote)


@dataclass(frozen=True)
class Variant:
    """A template with alternatives/optionals expanded: a fixed sequence of token positions."""

    template_id: str
    category: str
    elements: tuple[Element, ...]
    roles: frozenset[str]
    seps: tuple[str, ...]  # separator rendered before each token ("" or " ")
    arts: tuple[int, ...] = ()  # positions of articles
    caps: tuple[int, ...] = ()  # positions rendered capitalised
    restates: tuple[str, ...] = ()  # planted attributes restated (colour, size, place)
    needs_friend: bool = False  # e.g. "They ..." (no F/A slot, but needs a friend)


def capitalize(word: str) -> str:
    return word[:1].upper() + word[1:]


def token_seps(tokens: Iterable[str]) -> tuple[str, ...]:
    """Separator before each token: a space before words and opening quotes, nothing before
    punctuation, closing quotes and the word right after an opening quote."""
    seps, in_quote, prev_open, first = [], False, False, True
    for t in tokens:
        if t == QUOTE:
            seps.append("" if (first or in_quote) else " ")
            prev_open, in_quote = not in_quote, not in_quote
        elif t in PUNCT:
            seps.append("")
            prev_open = False
        else:
            seps.append("" if (first or prev_open) else " ")
            prev_open = False
        first = False
    return tuple(seps)


def render_tokens(tokens: list[str] | tuple[str, ...]) -> str:
    """Join surface tokens into text with canonical spacing (inverse of grammar.tokenize)."""
    return "".join(s + t for s, t in zip(token_seps(tokens), tokens))


def expand(template: str) -> list[tuple[str, ...]]:
    """Expand ``(x|y_z)`` alternatives and ``[x]`` optionals into fixed token tuples."""
    choices = []
    for tok in template.split():
        if tok.startswith("(") and tok.endswith(")"):
            alts = tok[1:-1].split("|")
        elif tok.startswith("[") and tok.endswith("]"):
            alts = [tok[1:-1], ""]
        else:
            alts = [tok]
        choices.append([tuple(a.split("_")) if a else () for a in alts])
    return [tuple(itertools.chain.from_iterable(c)) for c in itertools.product(*choices)]


def _element(tok: str, cap: bool) -> Element:
    if tok.startswith("{"):
        slot = tok[1:-1]
        if "." in slot:
            role, attr = slot.split(".")
            if attr not in ROLE_ATTRS.get(role, ()):
                raise ValueError(f"slot {slot!r} not allowed (pronouns only denote M)")
        elif slot not in FREE_CLASSES:
            raise ValueError(f"unknown free slot {slot!r}")
        return Element("slot", slot, cap)
    if tok in ("a", "A"):
        return Element("art", "a", cap)
    return Element("lit", tok if tok == "I" else tok.lower(), cap)


def compile_variant(tokens: tuple[str, ...], template_id: str, category: str) -> Variant:
    """Compile one expanded token tuple; validates the shape every sentence must have."""
    elements, in_quote, cap_next = [], False, True
    for tok in tokens:
        elements.append(_element(tok, cap_next and tok != QUOTE))
        if tok == QUOTE:
            in_quote = not in_quote
            cap_next = in_quote
        else:
            cap_next = False
    last = tokens[-2] if tokens[-1] == QUOTE else tokens[-1]
    if last not in ENDS or in_quote:
        raise ValueError(f"template {template_id} must end with . ! or ? (and close its quotes)")
    for i, el in enumerate(elements):
        if el.kind == "art" and (i + 1 == len(elements) or tokens[i + 1] in PUNCT | {QUOTE}):
            raise ValueError(f"article not followed by a word in {template_id}")
    roles = frozenset(e.value.split(".")[0] for e in elements if e.kind == "slot" and "." in e.value)
    arts = tuple(i for i, e in enumerate(elements) if e.kind == "art")
    caps = tuple(i for i, e in enumerate(elements) if e.cap)
    restates = tuple(sorted({_RESTATED[e.value] for e in elements if e.value in _RESTATED}))
    return Variant(template_id, category, tuple(elements), roles, token_seps(tokens), arts, caps, restates)


def _compile_entry(entry: str | tuple[str, ...], tid: str, category: str) -> list[Variant]:
    variants = []
    for form in (entry,) if isinstance(entry, str) else entry:
        needs_friend = form.startswith("@friend ")
        for tokens in expand(form.removeprefix("@friend ")):
            v = compile_variant(tokens, f"{tid}.{len(variants)}", category)
            variants.append(dataclasses.replace(v, needs_friend=needs_friend))
    return variants


def _compile_all() -> dict[str, list[list[Variant]]]:
    """category -> templates -> expanded variants."""
    return {category: [_compile_entry(entry, f"{category}.{ti}", category) for ti, entry in enumerate(entries)]
            for category, entries in TEMPLATES.items()}


COMPILED: dict[str, list[list[Variant]]] = _compile_all()


def all_variants() -> list[Variant]:
    return [v for groups in COMPILED.values() for group in groups for v in group]


def template_words() -> set[str]:
    """Literal words used by the templates (canonical forms), articles included."""
    words = {"a", "an"}
    for v in all_variants():
        words.update(e.value for e in v.elements if e.kind == "lit" and e.value not in PUNCT | {QUOTE})
    return words


def _check_lexicon() -> None:
    """Fact-bearing word lists must be disjoint from every other word of the grammar."""
    fact_lists = [set(OBJECTS), set(COLOURS), set(SIZES), set(PLACES), set(ANIMALS)]
    others = template_words() | {w for ws in FREE_CLASSES.values() for w in ws}
    for i, fl in enumerate(fact_lists):
        clash = fl & others or any(fl & fl2 for fl2 in fact_lists[i + 1:])
        if clash:
            raise AssertionError(f"fact word list overlaps other words: {clash}")
    lowered = {n.lower() for n in GIRL_NAMES + BOY_NAMES}
    if lowered & (others | set().union(*fact_lists)) or len(lowered) != len(GIRL_NAMES + BOY_NAMES):
        raise AssertionError("a name collides with another word")


_check_lexicon()


def fill(variant: Variant, roles: dict[str, str], rng: random.Random,
         free: dict[str, tuple[str, ...]] = FREE_CLASSES) -> list[str]:
    """Fill a variant's slots: role slots from `roles`, free slots at random; surface tokens."""
    words = [(roles.get(el.value) or rng.choice(free[el.value])) if el.kind == "slot" else el.value
             for el in variant.elements]
    for i in variant.arts:
        words[i] = "an" if words[i + 1][0] in "aeiouAEIOU" else "a"
    for i in variant.caps:
        words[i] = capitalize(words[i])
    return words


def render_variant(variant: Variant, words: list[str]) -> str:
    return "".join(s + w for s, w in zip(variant.seps, words))
