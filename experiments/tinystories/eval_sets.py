"""Evaluation sets cut from held-out StoryWorld stories: prompts cut mid-sentence and cloze probes.

Both are written by make_corpus.py next to the training text; distractors of a cloze probe come from
the word lists of the world the corpus was generated with (so the model has seen every option).
"""
from __future__ import annotations

import random
from typing import Any

from experiments.tinystories.grammar import parse_sentence
from experiments.tinystories.lexicon import GIRL_NAMES, PRONOUN
from experiments.tinystories.templates import ENDS, QUOTE, capitalize, render_tokens, token_seps
from experiments.tinystories.world import Story, StoryWorld


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


def make_cloze_items(stories: list[Story], world: StoryWorld, seed: int, n_options: int = 3) -> list[dict[str, Any]]:
    """Consistency probes with an exact answer, one per (story, fact kind) where possible.

    The prefix is the story text up to a later restatement of a planted fact (only
    sentences after the setup paragraph are probed, so the fact is stated in the prefix).
    Options replace the fact word with distractors of the same class (pronouns: the other
    gender's form; names: unused names of the same gender).  Colour/size options run up
    to the object noun (" red ball"); other kinds are one word.  Every option starts with
    a space, all options have the same number of words, and every option completes the
    sentence grammatically (checked with the recognizer), so neither length nor grammar
    gives the answer away (options can still differ in *token* count: the scorer compares
    equal-length options, see evaluate.py).  Distractors come from the word lists of `world`,
    the StoryWorld that generated the stories (and the training corpus), so every option is a
    word the model saw in training; there is no default world, so the two cannot drift apart.
    Keys: story_id, kind, prefix, options, answer, sentence_index.
    """
    rng = random.Random(seed)
    items = []
    for st in stories:
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for j in range(st.n_setup, len(st.sentences)):
            for item in _cloze_candidates(st, j, parse_sentence, n_options, rng, world):
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
