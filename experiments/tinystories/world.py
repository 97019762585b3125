"""StoryWorld: a seeded probabilistic grammar of TinyStories-like children's stories.

Replaces the GPT-3.5/4 generated TinyStories corpus offline (notes A7).  Every story
is drawn from a small set of sentence templates (`templates.py`) whose slots are filled
from fixed word lists (`lexicon.py`), so the ground truth is planted and a model's output
can be scored exactly (`grammar.py` compiles the very same templates into a recognizer).
Evaluation sets cut from held-out stories (prompts, cloze probes) are in `eval_sets.py`.

Story shape (mirrors TinyStories):
  paragraph 1  setup: main character M (name + gender), M's object O (size, colour,
               noun), place P, optionally a friend F (a child) or an animal A;
  paragraph 2  3-6 event sentences (start, middle, problem, reaction) [+ twist];
  paragraph 3  callbacks restating planted facts ("Lily picked up her red ball."),
               then the ending chosen by sampled features: dialogue, bad or good
               ending, moral.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from experiments.tinystories.lexicon import (
    ANIMALS,
    BOY_NAMES,
    COLOURS,
    FREE_CLASSES,
    GENDERS,
    GIRL_NAMES,
    KID_NOUN,
    OBJECTS,
    PLACES,
    PRONOUN,
    SIZES,
)
from experiments.tinystories.templates import COMPILED, Variant, fill, render_variant, template_words


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
