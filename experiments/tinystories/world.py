"""StoryWorld: a seeded probabilistic grammar of TinyStories-like children's stories.

Replaces the GPT-3.5/4 generated TinyStories corpus offline (notes A7).  Every story
is drawn from a small set of sentence *templates* whose slots are filled from fixed
word lists, so the ground truth is planted and a model's output can be scored exactly
(`grammar.py` compiles the very same templates into a recognizer).

Story shape (mirrors TinyStories):
  paragraph 1  setup: main character M (name + gender), M's object O (size, colour,
               noun), place P, optionally a friend F (a child) or an animal A;
  paragraph 2  3-6 event sentences (start, middle, problem, reaction) [+ twist];
  paragraph 3  callbacks restating planted facts ("Lily picked up her red ball."),
               then the ending chosen by sampled features: dialogue, bad or good
               ending, moral.

Template language (shared with the recognizer, defined once in this module):
  * tokens separated by spaces; punctuation and quote marks are tokens of their own;
  * ``{R.attr}``: a role slot; R in M (main character), F (friend child), O (object),
    P (place), A (animal); attr in name/kid/subj/obj/poss, noun/colour/size, prep;
  * ``{feel}`` etc.: a free slot filled from a word list (see FREE_CLASSES);
  * ``(x|y_z)``: alternatives, ``_`` joins several words; ``[x]`` optional;
  * the literal ``a`` is the indefinite article: rendered ``a``/``an`` from the next word;
  * a leading ``@friend`` marks a template that needs a friend (child or animal), e.g. "They";
  * an entry that is a tuple of strings is ONE template with several surface forms (a
    story never uses two forms of the same entry, e.g. the same utterance twice).
Conventions the recognizer and the consistency checker rely on:
  * gendered pronouns (she/he/her/him/his) ALWAYS denote the main character M; the
    friend F is only ever referred to by name (enforced when templates are compiled);
  * the object, place, animal, colour and size word lists are disjoint from every other
    word list, so each such word is a reference to a planted fact;
  * the sentence's first word and the first word inside a quote are capitalised.
"""
from __future__ import annotations

import dataclasses
import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Iterable

# --------------------------------------------------------------------------- lexicon
GIRL_NAMES = (
    "Lily", "Sue", "Anna", "Mia", "Lucy", "Emma", "Sara", "Amy", "Ella", "Kate",
    "Zoe", "Jane", "Molly", "Ruby", "Ivy", "Nora", "Grace", "Alice", "Ellie", "Sophie",
    "Hannah", "Julia", "Clara", "Maya", "Lena", "Rosie", "Tina", "Bella", "Nina", "Olivia",
)
BOY_NAMES = (
    "Tom", "Ben", "Tim", "Max", "Sam", "Jack", "Leo", "Jake", "Bob", "Joe",
    "Dan", "Ted", "Finn", "Owen", "Luke", "Ryan", "Adam", "Eli", "Noah", "Mark",
    "Paul", "Jim", "Ned", "Pete", "Mike", "Nick", "Carl", "Hugo", "Oscar", "Ethan",
)
GENDERS = ("female", "male")
KID_NOUN = {"female": "girl", "male": "boy"}
PRONOUN = {  # attr -> gender -> word
    "subj": {"female": "she", "male": "he"},
    "obj": {"female": "her", "male": "him"},
    "poss": {"female": "her", "male": "his"},
}
OBJECTS = (
    "ball", "doll", "kite", "hat", "car", "boat", "drum", "book", "bike", "balloon",
    "truck", "robot", "umbrella", "airplane",
)
COLOURS = ("red", "blue", "green", "yellow", "pink", "purple", "orange", "white", "black", "brown")
SIZES = ("big", "small", "tiny", "huge")
PLACES = {  # place -> its preposition ("in the park", "at the beach", "on the farm")
    "park": "in", "garden": "in", "forest": "in", "yard": "in", "woods": "in",
    "meadow": "in", "beach": "at", "lake": "at", "zoo": "at", "farm": "on",
}
ANIMALS = (
    "dog", "cat", "bird", "bunny", "frog", "duck", "puppy", "kitten", "owl", "elephant",
    "turtle", "squirrel", "mouse", "fox", "bear", "pig",
)
FREE_CLASSES: dict[str, tuple[str, ...]] = {
    "feel": ("happy", "sad", "scared", "excited", "angry", "tired", "surprised", "proud",
             "upset", "sleepy", "worried", "glad", "hungry", "calm"),
    "badfeel": ("sad", "scared", "angry", "upset", "worried"),
    "cadj": ("little", "kind", "curious", "brave", "shy", "sweet", "smart", "friendly",
             "funny", "quiet", "young", "eager", "clever", "gentle", "happy"),
    "aadj": ("little", "cute", "fluffy", "friendly", "funny", "soft", "old", "playful"),
    "thing": ("tree", "rock", "bush", "bench", "log", "chair", "table", "fence", "hill",
              "flower", "leaf", "oak"),
    "food": ("cake", "apple", "cookie", "sandwich", "banana", "carrot", "pie", "egg",
             "muffin", "peach"),
    "adv": ("happily", "quickly", "slowly", "loudly", "gladly", "quietly"),
    "ivp": ("ran", "jumped", "laughed", "smiled", "danced", "sang", "skipped", "clapped",
            "hopped", "giggled", "played", "waved"),
    "weather": ("sunny", "nice", "windy", "cold", "warm", "rainy", "bright", "beautiful"),
    "parent": ("mom", "dad", "grandma", "grandpa"),
}

# Which word list a role slot draws from, and the agreement features of its words.
PERSON_ATTRS = ("name", "kid", "subj", "obj", "poss")
ROLE_ATTRS = {
    "M": PERSON_ATTRS, "F": ("name", "kid"), "O": ("noun", "colour", "size"),
    "P": ("noun", "prep"), "A": ("noun",),
}
# Slot name -> the fact kind it references (None: no planted fact behind it).
SLOT_KIND = {
    "M.name": "name", "F.name": "name", "M.subj": "pronoun", "M.obj": "pronoun",
    "M.poss": "pronoun", "O.colour": "colour", "O.size": "size", "O.noun": "object",
    "P.noun": "place", "A.noun": "animal",
}


def slot_lexicon(slot: str) -> dict[str, dict[str, str]]:
    """Words a slot accepts (full lexicon) -> their agreement features."""
    if "." not in slot:
        return {w: {} for w in FREE_CLASSES[slot]}
    role, attr = slot.split(".")
    if attr == "name":
        return {**{n: {"g": "female"} for n in GIRL_NAMES}, **{n: {"g": "male"} for n in BOY_NAMES}}
    if attr == "kid":
        return {w: {"g": g} for g, w in KID_NOUN.items()}
    if attr in PRONOUN:
        return {w: {"g": g} for g, w in PRONOUN[attr].items()}
    if role == "O":
        return {w: {} for w in {"noun": OBJECTS, "colour": COLOURS, "size": SIZES}[attr]}
    if role == "P":
        if attr == "noun":
            return {p: {"prep": prep} for p, prep in PLACES.items()}
        return {prep: {"prep": prep} for prep in set(PLACES.values())}
    if role == "A":
        return {w: {} for w in ANIMALS}
    raise KeyError(slot)


# --------------------------------------------------------------------------- templates
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


# --------------------------------------------------------------------------- config + stories
@dataclass
class WorldConfig:
    """Knobs of the story distribution.  `n_*` pick how many words of each list are used
    (a prefix of the list; names are split half girls, half boys)."""

    n_names: int = 40
    n_objects: int = len(OBJECTS)
    n_colours: int = len(COLOURS)
    n_sizes: int = len(SIZES)
    n_places: int = len(PLACES)
    n_animals: int = len(ANIMALS)
    p_friend_child: float = 0.4
    p_friend_animal: float = 0.3
    p_dialogue: float = 0.5
    p_bad_ending: float = 0.25
    p_moral: float = 0.3
    p_twist: float = 0.2
    min_events: int = 3
    max_events: int = 6
    min_callbacks: int = 1
    max_callbacks: int = 2
    max_dialogue: int = 2
    paragraph_sep: str = "\n"
    templates_per_category: int = 0  # use only the first k templates of each category (0: all)
    free_words_per_class: int = 0  # use only the first k words of each free word class (0: all)

    def __post_init__(self) -> None:
        limits = {"n_names": 2 * min(len(GIRL_NAMES), len(BOY_NAMES)), "n_objects": len(OBJECTS),
                  "n_colours": len(COLOURS), "n_sizes": len(SIZES), "n_places": len(PLACES),
                  "n_animals": len(ANIMALS)}
        for key, hi in limits.items():
            lo = 4 if key == "n_names" else 3 if key in ("n_colours", "n_sizes") else 1
            if not lo <= getattr(self, key) <= hi:
                raise ValueError(f"{key}={getattr(self, key)} outside [{lo}, {hi}]")
        for key in ("p_friend_child", "p_friend_animal", "p_dialogue", "p_bad_ending", "p_moral", "p_twist"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"{key} must be a probability")
        if self.p_friend_child + self.p_friend_animal > 1.0:
            raise ValueError("p_friend_child + p_friend_animal must be <= 1")
        if not 3 <= self.min_events <= self.max_events:
            raise ValueError("need 3 <= min_events <= max_events (start, problem, reaction)")
        if self.templates_per_category < 0 or self.free_words_per_class < 0:
            raise ValueError("templates_per_category and free_words_per_class must be >= 0 (0: all)")
        if not 1 <= self.min_callbacks <= self.max_callbacks <= 3:
            raise ValueError("need 1 <= min_callbacks <= max_callbacks <= 3")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "WorldConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        for key in d or {}:
            if key not in names:
                raise ValueError(f"unknown WorldConfig key: {key!r}")
        return cls(**(d or {}))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Story:
    """One generated story with its planted ground truth.

    facts = {"main": {"name", "gender"}, "friend": None | {"kind": "child", "name", "gender"}
             | {"kind": "animal", "species"}, "object": {"noun", "colour", "size"},
             "place", "features": [...], "n_events"}.
    callbacks: sentences after the setup that restate a planted attribute (object colour or
    size, or the place): [{"index", "sentence", "restates": [kinds]}].
    """

    story_id: str
    text: str
    sentences: list[str]
    facts: dict[str, Any]
    callbacks: list[dict[str, Any]]
    template_ids: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # char offset of each sentence in text
    n_setup: int = 0  # sentences in the setup paragraph

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FEATURES = ("dialogue", "bad_ending", "moral", "twist")


class StoryWorld:
    """Sampler of stories from the template grammar (deterministic given the seed)."""

    def __init__(self, cfg: WorldConfig | None = None):
        self.cfg = cfg or WorldConfig()
        c = self.cfg
        half = c.n_names // 2
        self.names = {"female": GIRL_NAMES[:half], "male": BOY_NAMES[: c.n_names - half]}
        self.objects, self.colours = OBJECTS[: c.n_objects], COLOURS[: c.n_colours]
        self.sizes, self.places = SIZES[: c.n_sizes], tuple(PLACES)[: c.n_places]
        self.animals = ANIMALS[: c.n_animals]
        k = c.templates_per_category
        self._pools = {fk: {cat: groups[:k] if k else groups for cat, groups in self._pools_for(fk).items()}
                       for fk in (None, "child", "animal")}
        m = c.free_words_per_class
        self.free = {cls: words[:m] if m else words for cls, words in FREE_CLASSES.items()}

    @staticmethod
    def _pools_for(friend_kind: str | None) -> dict[str, list[list[Variant]]]:
        """Templates usable when the story has this kind of friend (F needs a child, A an animal)."""
        have = {"M", "O", "P"} | ({"F"} if friend_kind == "child" else {"A"} if friend_kind == "animal" else set())
        return {cat: [g for g in groups if g[0].roles <= have and (friend_kind or not g[0].needs_friend)]
                for cat, groups in COMPILED.items()}

    def vocabulary(self) -> set[str]:
        """Every word this configuration can emit (canonical case; punctuation excluded)."""
        words = template_words()
        words |= {w for ws in self.free.values() for w in ws}
        words |= set(self.names["female"]) | set(self.names["male"])
        words |= set(KID_NOUN.values()) | {w for d in PRONOUN.values() for w in d.values()}
        words |= set(self.objects) | set(self.colours) | set(self.sizes) | set(self.animals)
        words |= set(self.places) | {PLACES[p] for p in self.places}
        return words

    def generate(self, n: int, seed: int) -> list[Story]:
        rng = random.Random(seed)
        return [self._story(rng, f"sw{seed}-{i:06d}") for i in range(n)]

    # ---- one story
    def _facts(self, rng: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
        c = self.cfg
        gender = rng.choice(GENDERS)
        name = rng.choice(self.names[gender])
        roles = {"M.name": name, "M.kid": KID_NOUN[gender],
                 **{f"M.{a}": PRONOUN[a][gender] for a in PRONOUN}}
        u, friend = rng.random(), None
        if u < c.p_friend_child:
            fg = rng.choice(GENDERS)
            fname = rng.choice([n for n in self.names[fg] if n != name])
            friend = {"kind": "child", "name": fname, "gender": fg}
            roles.update({"F.name": fname, "F.kid": KID_NOUN[fg]})
        elif u < c.p_friend_child + c.p_friend_animal:
            friend = {"kind": "animal", "species": rng.choice(self.animals)}
            roles["A.noun"] = friend["species"]
        obj = {"noun": rng.choice(self.objects), "colour": rng.choice(self.colours),
               "size": rng.choice(self.sizes)}
        place = rng.choice(self.places)
        roles.update({"O.noun": obj["noun"], "O.colour": obj["colour"], "O.size": obj["size"],
                      "P.noun": place, "P.prep": PLACES[place]})
        probs = (c.p_dialogue, c.p_bad_ending, c.p_moral, c.p_twist)
        features = [f for f, p in zip(FEATURES, probs) if rng.random() < p]
        facts = {"main": {"name": name, "gender": gender}, "friend": friend, "object": obj,
                 "place": place, "features": features}
        return facts, roles

    def _plan(self, rng: random.Random, facts: dict[str, Any]) -> list[list[tuple[str, int]]]:
        """Paragraphs as lists of (category, count)."""
        c, feats = self.cfg, facts["features"]
        fk = facts["friend"]["kind"] if facts["friend"] else None
        n_events = rng.randint(c.min_events, c.max_events)
        facts["n_events"] = n_events
        setup = [("intro", 1), ("has_object", 1), ("likes_place", 1)]
        if fk:
            setup.append(("friend_" + fk, 1))
        events = [("event_start", 1), ("event_mid", n_events - 3), ("event_problem", 1), ("event_react", 1)]
        if "twist" in feats:
            events.append(("twist", 1))
        ending = [("callback", rng.randint(c.min_callbacks, c.max_callbacks))]
        if "dialogue" in feats:
            ending.append(("dialogue", rng.randint(1, c.max_dialogue)))
        ending.append(("bad_ending" if "bad_ending" in feats else "good_ending", 1))
        if "moral" in feats:
            ending.append(("moral", 1))
        return [setup, events, ending]

    def _story(self, rng: random.Random, story_id: str) -> Story:
        facts, roles = self._facts(rng)
        pools = self._pools[facts["friend"]["kind"] if facts["friend"] else None]
        paragraphs, tids, callbacks, sentences = [], [], [], []
        for para in self._plan(rng, facts):
            texts = []
            for category, k in para:
                pool = pools[category]
                for group in rng.sample(pool, min(k, len(pool))):
                    v = rng.choice(group)
                    s = render_variant(v, fill(v, roles, rng, self.free))
                    if v.restates and paragraphs:
                        callbacks.append({"index": len(sentences), "sentence": s, "restates": list(v.restates)})
                    texts.append(s)
                    sentences.append(s)
                    tids.append(v.template_id)
            paragraphs.append(texts)
        offsets, pos = [], 0
        for texts in paragraphs:
            for s in texts:
                offsets.append(pos)
                pos += len(s) + 1
            pos += len(self.cfg.paragraph_sep) - 1
        text = self.cfg.paragraph_sep.join(" ".join(t) for t in paragraphs)
        return Story(story_id, text, sentences, facts, callbacks, tids, offsets, len(paragraphs[0]))


# --------------------------------------------------------------------------- evaluation sets
def make_prompts(stories: list[Story], cut_rng_seed: int, min_words_kept: int = 2) -> list[dict[str, Any]]:
    """Evaluation prompts cut MID-SENTENCE, like the paper's story beginnings.

    Keeps the setup, at least one full event sentence, then the first `k` words
    (``min_words_kept <= k < len(words)``) of a later sentence.  Returns dicts with
    story_id, prompt (no trailing space), reference (the true rest of the story, starting
    with a space, so ``prompt + reference == text``) and facts.
    """
    rng = random.Random(cut_rng_seed)
    out = []
    for st in stories:
        cands = [j for j in range(st.n_setup + 1, len(st.sentences))
                 if len(st.sentences[j].split()) > min_words_kept + 1]
        if not cands:
            continue
        j = rng.choice(cands)
        chunks = st.sentences[j].split(" ")
        # never cut right after end punctuation ('"Hi!" | said Tom.' would look finished)
        ks = [k for k in range(min_words_kept, len(chunks)) if chunks[k - 1].rstrip(QUOTE)[-1] not in ENDS]
        if not ks:
            continue
        k = rng.choice(ks)
        cut = st.offsets[j] + len(" ".join(chunks[:k]))
        out.append({"story_id": st.story_id, "prompt": st.text[:cut], "reference": st.text[cut:],
                    "facts": st.facts})
    return out


CLOZE_SLOTS = {"M.name": "name", "F.name": "name", "M.subj": "pronoun", "M.obj": "pronoun",
               "M.poss": "pronoun", "O.colour": "colour", "O.size": "size", "O.noun": "object",
               "P.noun": "place", "A.noun": "animal"}


def _alternatives(slot: str, word: str, facts: dict[str, Any], sw: StoryWorld) -> list[str]:
    """Candidate distractor words for a fact slot: same class, words the configuration
    `sw` uses (so the model has seen them in training), not the planted word."""
    kind = CLOZE_SLOTS[slot]
    if kind == "pronoun":
        attr = slot.split(".")[1]
        return [w for w in PRONOUN[attr].values() if w != word]
    if kind == "name":
        gender = "female" if word in GIRL_NAMES else "male"
        cast = {facts["main"]["name"]} | ({facts["friend"]["name"]} if facts["friend"] and
                                          facts["friend"]["kind"] == "child" else set())
        return [n for n in sw.names[gender] if n not in cast]
    pool = {"colour": sw.colours, "size": sw.sizes, "object": sw.objects, "place": sw.places,
            "animal": sw.animals}[kind]
    return [w for w in pool if w != word]


def make_cloze_items(stories: list[Story], seed: int, n_options: int = 3,
                     cfg: WorldConfig | None = None) -> list[dict[str, Any]]:
    """Consistency probes with an exact answer, one per (story, fact kind) where possible.

    The prefix is the story text up to a later restatement of a planted fact (only
    sentences after the setup paragraph are probed, so the fact is stated in the prefix).
    Options replace the fact word with distractors of the same class (pronouns: the other
    gender's form; names: unused names of the same gender).  Colour/size options run up
    to the object noun (" red ball"); other kinds are one word.  Every option starts with
    a space, all options have the same number of words, and every option completes the
    sentence grammatically (checked with the recognizer), so neither length nor grammar
    gives the answer away.  Distractors come from the word lists `cfg` (the configuration
    the stories were generated with; default WorldConfig()) uses.
    Keys: story_id, kind, prefix, options, answer, sentence_index.
    """
    from experiments.tinystories.grammar import parse_sentence  # local: grammar imports world

    rng = random.Random(seed)
    sw = StoryWorld(cfg)
    items = []
    for st in stories:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for j in range(st.n_setup, len(st.sentences)):
            for item in _cloze_candidates(st, j, parse_sentence, n_options, rng, sw):
                by_kind.setdefault(item["kind"], []).append(item)
        for kind in sorted(by_kind):
            items.append(rng.choice(by_kind[kind]))
    return items


def _cloze_candidates(st: Story, j: int, parse_sentence, n_options: int, rng: random.Random, sw: StoryWorld):
    sentence = st.sentences[j]
    parse = parse_sentence(sentence)
    if parse is None:
        return
    toks = list(parse.tokens)
    starts_paragraph = j > 0 and st.text[st.offsets[j] - 1] != " "
    for slot in parse.slots:
        if slot.name not in CLOZE_SLOTS:
            continue
        i = slot.index
        if (i == 0 and starts_paragraph) or (i > 0 and token_seps(toks)[i] != " "):
            continue  # option must start with a space
        end = i + 1
        if slot.name in ("O.colour", "O.size"):
            end = next(s.index for s in parse.slots if s.name == "O.noun" and s.index > i) + 1
        alts = _alternatives(slot.name, slot.word, st.facts, sw)
        options = _cloze_options(toks, i, end, slot, alts, parse_sentence, n_options, rng)
        if options is None:
            continue
        head = st.text[: st.offsets[j]].rstrip(" ") if i == 0 else st.text[: st.offsets[j]] + render_tokens(toks[:i])
        correct = options[0]
        rng.shuffle(options)
        yield {"story_id": st.story_id, "kind": CLOZE_SLOTS[slot.name], "prefix": head,
               "options": options, "answer": options.index(correct), "sentence_index": j}


def _cloze_options(toks, i, end, slot, alts, parse_sentence, n_options, rng):
    """Correct option first, then distractors that keep the sentence grammatical."""
    def phrase(tokens):
        full = render_tokens(tokens)
        return " " + full[len(render_tokens(tokens[:i])):len(render_tokens(tokens[:end]))].lstrip(" ")

    surface_cap = toks[i][:1].isupper() and slot.word[:1].islower()
    rng.shuffle(alts)
    options = [phrase(toks)]
    for w in alts:
        cand = toks.copy()
        cand[i] = capitalize(w) if surface_cap else w
        if parse_sentence(render_tokens(cand)) is not None:
            options.append(phrase(cand))
        if len(options) == (2 if CLOZE_SLOTS[slot.name] == "pronoun" else n_options):
            break
    return options if len(options) >= 2 else None
