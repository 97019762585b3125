"""StoryWorld generator, exact recognizer, consistency checker, metrics and judge."""
from __future__ import annotations

import random
import re

import pytest

from experiments.tinystories import grammar, lexicon, metrics, templates, world
from experiments.tinystories.eval_sets import make_cloze_items, make_prompts
from experiments.tinystories.grammar import check_consistency, is_grammatical, parse_sentence, split_sentences
from experiments.tinystories.judge import RUBRIC_TURN_1, RUBRIC_TURN_2, ExactStoryWorldJudge, Judge, parse_grades
from experiments.tinystories.lexicon import PRONOUN
from experiments.tinystories.world import StoryWorld, WorldConfig


@pytest.fixture(scope="module")
def stories() -> list[world.Story]:
    return StoryWorld(WorldConfig()).generate(2000, seed=11)


@pytest.fixture(scope="module")
def sentences(stories) -> list[str]:
    return [s for st in stories[:400] for s in st.sentences]


# --------------------------------------------------------------------------- generator
def test_generation_deterministic_and_seed_dependent():
    w = StoryWorld()
    a, b, c = w.generate(30, seed=3), w.generate(30, seed=3), w.generate(30, seed=4)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.facts for s in a] == [s.facts for s in b]
    assert [s.text for s in a] != [s.text for s in c]


def test_story_shape(stories):
    n_words = [len(st.text.split()) for st in stories]
    assert 55 <= sum(n_words) / len(n_words) <= 120
    for st in stories[:300]:
        assert split_sentences(st.text) == st.sentences
        assert st.text.startswith(st.sentences[0]) and "  " not in st.text
        assert all(st.text[o:o + len(s)] == s for o, s in zip(st.offsets, st.sentences))
        assert 3 <= st.facts["n_events"] <= 6
        assert st.callbacks and all(st.sentences[c["index"]] == c["sentence"] for c in st.callbacks)
        f = st.facts
        assert f["object"]["colour"] in st.text and f["main"]["name"] in st.sentences[0] + st.sentences[1]
        assert "dialogue" not in f["features"] or '"' in st.text


def test_vocabulary_size():
    vocab = StoryWorld().vocabulary()
    assert 250 <= len(vocab) <= 500
    small = StoryWorld(WorldConfig(n_names=10, n_colours=4)).vocabulary()
    assert len(small) < len(vocab) and "Lily" in small and "brown" not in small
    text = " ".join(st.text for st in StoryWorld().generate(200, seed=1))
    assert set(re.findall(r"[A-Za-z']+", text)) - {w.capitalize() for w in vocab} <= vocab


def test_config_from_dict():
    cfg = WorldConfig.from_dict({"n_names": 10, "p_dialogue": 1.0})
    assert cfg.n_names == 10 and cfg.p_dialogue == 1.0
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="p_dialog"):
        WorldConfig.from_dict({"p_dialog": 0.5})
    with pytest.raises(ValueError):
        WorldConfig(min_events=5, max_events=4)
    always = StoryWorld(WorldConfig(p_dialogue=1.0, p_twist=0.0)).generate(20, seed=0)
    assert all('"' in st.text and "twist" not in st.facts["features"] for st in always)


# --------------------------------------------------------------------------- recognizer
def test_parser_accepts_every_generated_sentence(stories):
    bad = [s for st in stories for s in st.sentences if not is_grammatical(s)]
    assert bad == []


def test_parse_reports_template_and_slots():
    p = parse_sentence("Lily picked up her red ball.")
    assert p is not None and p.category == "callback"
    assert p.words("colour") == ["red"] and p.words("name") == ["Lily"] and p.words("pronoun") == ["her"]
    assert is_grammatical('Tom said, "I love my orange kite!"')
    assert is_grammatical('"Can I play with your ball?" asked Tom.')
    assert is_grammatical("An old owl lived near his house.")
    for s in ("Lily picked up his red ball.", "Once there was a little boy named Lily.",
              "She liked to play at the park.", "She was very happy .", "she was very happy.",
              "Lily was very happy", "Lily picked up her red ball. She was happy."):
        assert not is_grammatical(s), s


def _word_positions(toks):
    return [i for i, t in enumerate(toks) if t[0].isalpha()]


def _swap_article(s, rng):
    toks = grammar.tokenize(s)
    pos = [i for i, t in enumerate(toks) if t.lower() in ("a", "an")]
    if not pos:
        return None
    i = rng.choice(pos)
    flip = {"a": "an", "an": "a", "A": "An", "An": "A"}
    toks[i] = flip[toks[i]]
    return templates.render_tokens(toks)


def _swap_words(s, rng):
    toks = grammar.tokenize(s)
    pos = _word_positions(toks)
    i, j = rng.sample(pos, 2)
    if toks[i] == toks[j]:
        return None
    toks[i], toks[j] = toks[j], toks[i]
    return templates.render_tokens(toks)


def _drop_final_punct(s, rng):
    k = max(s.rfind(c) for c in ".!?")
    return s[:k] + s[k + 1:]


def _unknown_word(s, rng):
    toks = grammar.tokenize(s)
    toks[rng.choice(_word_positions(toks))] = rng.choice(["blorf", "Zib", "quux"])
    return templates.render_tokens(toks)


_AGREE = {"was": "were", "were": "was", "is": "are", "are": "is", "am": "is", "makes": "make",
          "help": "helps"}


def _wrong_agreement(s, rng):
    toks = grammar.tokenize(s)
    pos = [i for i, t in enumerate(toks) if t in _AGREE]
    if not pos:
        return None
    i = rng.choice(pos)
    toks[i] = _AGREE[toks[i]]
    return templates.render_tokens(toks)


def _truncate(s, rng):
    toks = grammar.tokenize(s)
    return templates.render_tokens(toks[: rng.randint(1, len(toks) - 2)])


@pytest.mark.parametrize("corrupt,min_rate", [
    (_swap_article, 1.0), (_swap_words, 0.95), (_drop_final_punct, 1.0), (_unknown_word, 1.0),
    (_wrong_agreement, 1.0), (_truncate, 1.0),
])
def test_parser_rejects_corruptions(sentences, corrupt, min_rate):
    rng = random.Random(0)
    corrupted = [c for c in (corrupt(s, rng) for s in sentences) if c is not None]
    assert len(corrupted) >= 200
    rejected = sum(not is_grammatical(c) for c in corrupted) / len(corrupted)
    assert rejected >= min_rate, (corrupt.__name__, rejected)


def test_split_sentences_dialogue():
    text = 'Lily said, "Look! A dog!" "Can I play?" asked Tom. Tom ran.\nThe end was near'
    assert split_sentences(text) == ['Lily said, "Look! A dog!"', '"Can I play?" asked Tom.', "Tom ran.",
                                     "The end was near"]
    assert split_sentences("  She ran.   He sat. ") == ["She ran.", "He sat."]


# --------------------------------------------------------------------------- consistency
def _flip_pronouns(sentence: str) -> str | None:
    """Switch every main-character pronoun of a sentence to the other gender (None if the
    sentence has no pronoun or also names a role-M character, which would break agreement)."""
    p = parse_sentence(sentence)
    slots = [s for s in p.slots if s.name in ("M.subj", "M.obj", "M.poss")]
    if not slots or any(s.name in ("M.name", "M.kid") for s in p.slots):
        return None
    toks = list(p.tokens)
    for s in slots:
        attr = s.name.split(".")[1]
        other = next(w for w in PRONOUN[attr].values() if w != s.word)
        toks[s.index] = other.capitalize() if toks[s.index][0].isupper() else other
    return templates.render_tokens(toks)


def test_consistency_true_story_and_planted_contradictions(stories):
    n_pron = n_col = 0
    for st in stories[:300]:
        r = check_consistency(st.facts, st.text)
        assert r.n_checks > 0 and r.n_consistent == r.n_checks, [d for d in r.details if not d["ok"]]
        for j in range(st.n_setup, len(st.sentences)):
            flipped = _flip_pronouns(st.sentences[j])
            if flipped is not None and is_grammatical(flipped):
                text = st.text.replace(st.sentences[j], flipped, 1)
                r2 = check_consistency(st.facts, text)
                assert r2.n_consistent < r2.n_checks and r2.n_checks == r.n_checks
                n_pron += 1
                break
        colour = st.facts["object"]["colour"]
        other = "pink" if colour == "red" else "red"
        cb = st.callbacks[-1]
        changed = cb["sentence"].replace(colour, other)
        if "colour" in cb["restates"] and is_grammatical(changed):
            text = st.text.replace(cb["sentence"], changed, 1)
            r3 = check_consistency(st.facts, text)
            assert r3.n_checks == r.n_checks and r3.n_consistent < r3.n_checks
            n_col += 1
    assert n_pron >= 200 and n_col >= 100


def test_consistency_checks_each_kind():
    facts = {"main": {"name": "Lily", "gender": "female"}, "friend": {"kind": "child", "name": "Tom",
             "gender": "male"}, "object": {"noun": "ball", "colour": "red", "size": "big"}, "place": "park"}
    r = check_consistency(facts, "Lily picked up her red ball. Mia was very sad. He hugged his big red kite.")
    got = [(d["sentence"], d["kind"], d["word"], d["ok"]) for d in r.details]
    assert got == [(0, "name", "Lily", True), (0, "pronoun", "her", True), (0, "colour", "red", True),
                   (0, "object", "ball", True), (1, "name", "Mia", False), (2, "pronoun", "he", False),
                   (2, "pronoun", "his", False), (2, "size", "big", True), (2, "colour", "red", True),
                   (2, "object", "kite", False)]
    assert (r.n_checks, r.n_consistent) == (10, 6)
    # unparsable sentences contribute no checks
    assert check_consistency(facts, "Lily picked up her red ball").n_checks == 0
    # an animal in a story without one is inconsistent
    assert check_consistency(facts, "The dog was very sad.").n_consistent == 0


# --------------------------------------------------------------------------- prompts + cloze
def test_prompts_cut_mid_sentence(stories):
    prompts = make_prompts(stories, cut_rng_seed=5)
    assert len(prompts) == len(stories)
    assert make_prompts(stories[:20], 5) == prompts[:20]
    by_id = {st.story_id: st for st in stories}
    for p in prompts:
        st = by_id[p["story_id"]]
        assert p["prompt"] + p["reference"] == st.text and p["facts"] == st.facts
        assert p["prompt"] == p["prompt"].rstrip() and p["reference"].startswith(" ")
        assert metrics.prompt_tail(p["prompt"]) != ""  # ends mid-sentence
        assert len(p["prompt"]) > st.offsets[st.n_setup + 1]
        assert metrics.first_sentence_completion(p["prompt"], p["reference"])
        assert all(is_grammatical(s) for s in split_sentences(p["prompt"] + p["reference"]))
    assert not metrics.first_sentence_completion(prompts[0]["prompt"], " blorf.")


def test_cloze_items(stories):
    items = make_cloze_items(stories[:300], StoryWorld(WorldConfig()), seed=2)
    assert items == make_cloze_items(stories[:300], StoryWorld(WorldConfig()), seed=2)
    by_id = {st.story_id: st for st in stories}
    kinds = {it["kind"] for it in items}
    assert {"colour", "size", "pronoun", "name", "place", "object"} <= kinds
    answers = [it["answer"] for it in items]
    assert len(set(answers)) > 1
    for it in items:
        st, opts = by_id[it["story_id"]], it["options"]
        assert len(opts) >= 2 and len(set(opts)) == len(opts)
        assert all(o.startswith(" ") for o in opts)
        assert len({len(o.split()) for o in opts}) == 1
        correct = opts[it["answer"]]
        assert st.text.startswith(it["prefix"] + correct)
        assert it["sentence_index"] >= st.n_setup
        f, first = st.facts, correct.split()[0]
        expected = {
            "colour": f["object"]["colour"], "size": f["object"]["size"], "object": f["object"]["noun"],
            "place": f["place"],
            "pronoun": {w.capitalize() for a in PRONOUN for w in (PRONOUN[a][f["main"]["gender"]],)}
            | {PRONOUN[a][f["main"]["gender"]] for a in PRONOUN},
            "name": {f["main"]["name"], (f["friend"] or {}).get("name")},
            "animal": (f["friend"] or {}).get("species"),
        }[it["kind"]]
        assert first in expected if isinstance(expected, set) else first == expected
        # every option completes the sentence grammatically
        sent = st.sentences[it["sentence_index"]]
        head = it["prefix"][st.offsets[it["sentence_index"]]:].lstrip()
        tail = sent[len(head) + len(correct.lstrip()) + (1 if head else 0):]
        for o in opts:
            assert is_grammatical((head + o).lstrip() + tail), (head, o, tail)


@pytest.mark.parametrize("knobs", [dict(n_names=6, n_colours=4, n_objects=3, n_places=2),
                                   dict(n_names=12, n_colours=6, n_objects=8, n_places=6, n_sizes=3)])
def test_cloze_distractors_come_from_the_corpus_world(knobs):
    # every option (answer and distractors) is a word the corpus's own world uses, whatever it plants
    sw = StoryWorld(WorldConfig(**knobs))
    items = make_cloze_items(sw.generate(80, seed=1), sw, seed=0)
    used = {"colour": set(sw.colours), "object": set(sw.objects), "place": set(sw.places), "size": set(sw.sizes),
            "name": set(sw.names["female"]) | set(sw.names["male"])}
    seen = set()
    for it in items:
        if it["kind"] in used:
            assert {o.split()[0].lower() if it["kind"] != "name" else o.split()[0] for o in it["options"]} \
                <= {w.lower() if it["kind"] != "name" else w for w in used[it["kind"]]}, it
            seen.add(it["kind"])
    assert seen == set(used)
    # a distractor outside the corpus world (the 83ddd70 bug: the default WorldConfig's lists) never appears
    outside = set(lexicon.COLOURS) - set(sw.colours)
    assert outside and not any(o.split()[0] in outside for it in items if it["kind"] == "colour"
                               for o in it["options"])


# --------------------------------------------------------------------------- metrics
def test_distinct_and_novelty():
    assert metrics.distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert metrics.distinct_n(["A b.", "a B."], 1) == pytest.approx(3 / 6)
    assert metrics.distinct_n(["a b", "c d"], 2) == 1.0  # n-grams never cross texts
    train = ["Lily had a big red ball. She liked to play in the park."]
    grams = metrics.ngram_set(train, 8)
    assert len(grams) == 15 - 8 + 1  # 13 words + 2 periods
    assert metrics.novelty(["She liked to play in the park."], grams, n=8) == 0.0
    assert metrics.novelty(["Tom had a big red ball. He liked to play."], grams, n=8) == 1.0
    assert metrics.novelty(["x y"], grams, n=8) != metrics.novelty(["x y"], grams, n=8)  # NaN


def test_ngram_set_fast_on_corpus(stories):
    import time
    t = time.perf_counter()
    grams = metrics.ngram_set([st.text for st in stories], 8)
    assert time.perf_counter() - t < 5.0
    assert metrics.novelty([stories[0].text], grams) == 0.0


def test_grammaticality_and_consistency_rate(stories):
    assert metrics.grammaticality(["Lily was very happy. lily was happy.", "She ran quickly."]) == pytest.approx(2 / 3)
    assert metrics.grammaticality(["She ran quickly. She was ve"]) == 0.5
    assert metrics.grammaticality(["She ran quickly. She was ve"], ignore_unfinished_tail=True) == 1.0
    assert metrics.grammaticality([st.text for st in stories[:50]]) == 1.0
    n, ok = metrics.consistency_rate([st.facts for st in stories[:50]], [st.text for st in stories[:50]])
    assert n == ok > 0


# --------------------------------------------------------------------------- judge
def test_exact_judge(stories):
    judge = ExactStoryWorldJudge()
    assert isinstance(judge, Judge)
    p = make_prompts(stories[:1], 0)[0]
    g = judge.grade(p["prompt"], p["reference"], p["facts"])
    assert g["grammar"] == 1.0 and g["consistency"] == 1.0 and g["completes_sentence"]
    assert g["creativity"] is None and g["plot"] is None and g["age_group"] is None
    assert g["judge_id"] == judge.judge_id and isinstance(g["raw_text"], str)
    bad = judge.grade(p["prompt"], " blorf. He was very sad.", None)
    assert bad["grammar"] == 0.5 and bad["consistency"] is None and not bad["completes_sentence"]


def test_rubric_and_parse_grades():
    assert "{prompt}***{completion}" in RUBRIC_TURN_1 and "A: 3 or under" in RUBRIC_TURN_2
    reply = ("Grammar: 8/10, Creativity: 6.5/10, Consistency: 9 / 10, "
             "Plot: 7 out of 10.\nAge group: B (4-5)")
    assert parse_grades(reply) == {"grammar": 8.0, "creativity": 6.5, "consistency": 9.0, "plot": 7.0,
                                   "age_group": "B"}
    assert parse_grades("The grammar is fine.") == {"grammar": None, "creativity": None,
                                                    "consistency": None, "plot": None, "age_group": None}
    assert parse_grades("grammar: 11/10. The age of the student might be: C")["grammar"] is None
    assert parse_grades("The age of the student might be: C")["age_group"] == "C"
