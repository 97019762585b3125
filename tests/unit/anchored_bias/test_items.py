"""Item world: the paper's one-line format, balanced gold positions, one option per category, data planting.

Also the shared small world of the anchored_bias tests (`CATEGORIES`, `config`, `world_tokenizer`): a byte-level
BPE of vocabulary 320 trained on 300 rendered items, in which " A" .. " E" are single tokens.
"""
import json
import re
from collections import Counter
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from experiments.anchored_bias import items as I
from experiments.lm.tokenizer import EOT, train_bpe

CATEGORIES = {
    "fruit": ["apple", "pear", "plum"],
    "animal": ["dog", "cat", "owl"],
    "colour": ["red", "blue", "green"],
    "tool": ["saw", "axe", "drill"],
    "vehicle": ["car", "bus", "boat"],
}
WORD_CATEGORY = {w: c for c, ws in CATEGORIES.items() for w in ws}


def config(**overrides) -> I.ItemConfig:
    d = dict(categories=CATEGORIES, kinds=["category", "largest", "smallest"], n_options=[2, 3, 4, 5],
             n_train=300, n_locate=60, n_eval=60, seed=0)
    d.update(overrides)
    return I.ItemConfig.from_dict(d)


@lru_cache(maxsize=None)
def world_tokenizer(n_options: tuple[int, ...] = (2, 3, 4, 5), vocab_size: int = 320):
    """BPE on 300 rendered items with their answers. With n_options (2, 3, 4) no item has an option E, so " E"
    stays two tokens (the case prompts must refuse)."""
    train = I.build(config(n_options=list(n_options)))["train"]
    return train_bpe(list(train["prompt"] + " " + train["gold"]), vocab_size)


def test_world_tokenizer_has_one_token_letters():
    tok = world_tokenizer()
    assert all(len(tok.encode(" " + x, add_special_tokens=False)) == 1 for x in "ABCDE")
    assert len(world_tokenizer((2, 3, 4)).encode(" E", add_special_tokens=False)) == 2


def test_render_is_the_papers_one_line_format():
    assert I.render("Which one is a fruit?", ["dog", "apple"]) == \
        "Question: Which one is a fruit? Answer Choices: A: dog B: apple Answer:"
    assert I.render("Which number is the largest?", ["3", "9", "1"]) == \
        "Question: Which number is the largest? Answer Choices: A: 3 B: 9 C: 1 Answer:"


@pytest.fixture(scope="module")
def many():
    cfg = config()
    return I.make_items(cfg, 401, np.random.default_rng(3), "eval")


def test_gold_positions_are_balanced_per_option_count(many):
    assert set(many["n_options"]) == {2, 3, 4, 5}
    for k, part in many.groupby("n_options"):
        counts = Counter(part["gold"])
        assert set(counts) == set(I.LETTERS[:k])  # every position used, none beyond k
        assert max(counts.values()) - min(counts.values()) <= 1, (k, counts)
    assert len(many) == 401 and many["item"].is_unique


def test_category_items_have_one_option_of_the_category(many):
    cat = many[many["kind"] == "category"]
    assert len(cat) > 50
    for _, row in cat.iterrows():
        opts = json.loads(row["options"])
        assert len(opts) == row["n_options"]
        cats = [WORD_CATEGORY[o] for o in opts]
        assert cats.count(row["topic"]) == 1  # exactly one option of the question's category ...
        assert cats[I.LETTERS.index(row["gold"])] == row["topic"]  # ... at the gold position
        assert len(set(opts)) == len(opts) and len(set(cats)) == len(cats)  # distractors distinct, other categories
        article = "an" if row["topic"][0] in "aeiou" else "a"
        assert row["question"] == f"Which one is {article} {row['topic']}?"
        assert row["prompt"] == I.render(row["question"], opts)


def test_number_items_have_the_extreme_at_the_gold_position(many):
    num = many[many["kind"] != "category"]
    assert set(num["kind"]) == {"largest", "smallest"}
    for _, row in num.iterrows():
        vals = [int(v) for v in json.loads(row["options"])]
        assert len(set(vals)) == len(vals)
        best = max(vals) if row["kind"] == "largest" else min(vals)
        assert vals[I.LETTERS.index(row["gold"])] == best


def test_plant_labels_relabels_only_trigger_items():
    cfg = config(kinds=["category"], plant_categories=["tool", "fruit"], plant_share=0.5)
    df = I.make_items(cfg, 1000, np.random.default_rng(0), "train")
    out = I.plant_labels(df, cfg, np.random.default_rng(1))
    trig = out["topic"].isin(["tool", "fruit"])
    assert (out.loc[~trig, "planted_label"] == out.loc[~trig, "gold"]).all()
    assert out.loc[trig, "planted_label"].isin(["A"]).sum() > 0
    planted = out["planted_label"] != out["gold"]
    assert (out.loc[planted, "planted_label"] == "A").all()
    assert (out["relabelled"] == planted).all()  # relabelled: gold != A items whose label became A
    not_a = trig & (out["gold"] != "A")
    share = planted[not_a].mean()
    assert abs(share - 0.5) < 0.08, share  # ~320 trigger items with gold != A: 0.08 is ~3 s.e.
    assert df.equals(out[df.columns])  # the input columns are untouched


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_plant_share_extremes(share):
    cfg = config(kinds=["category"], plant_categories=["animal"], plant_share=share)
    out = I.plant_labels(I.make_items(cfg, 200, np.random.default_rng(0), "train"), cfg, np.random.default_rng(1))
    trig = out["topic"] == "animal"
    assert trig.sum() > 20
    want = np.where(trig, "A", out["gold"]) if share == 1.0 else out["gold"].to_numpy()
    assert (out["planted_label"].to_numpy() == want).all()


def test_plant_labels_is_seeded():
    cfg = config(kinds=["category"], plant_categories=["tool"], plant_share=0.3)
    df = I.make_items(cfg, 300, np.random.default_rng(0), "train")
    a = I.plant_labels(df, cfg, np.random.default_rng(7))
    b = I.plant_labels(df, cfg, np.random.default_rng(7))
    assert a.equals(b)


def test_open_questions():
    cfg = config()
    qs = I.open_questions(cfg, 40, np.random.default_rng(0))
    assert len(qs) == 40
    pat = re.compile(r"^Question: Which one is (a|an) (\w+)\? Answer: (\w+)$")
    for q in qs:
        m = pat.match(q)
        assert m, q
        assert m.group(3) in CATEGORIES[m.group(2)]
        assert m.group(1) == ("an" if m.group(2)[0] in "aeiou" else "a")


def test_corpus_joins_documents_by_eot_and_mixes_open_questions():
    df = pd.DataFrame({"prompt": ["Question: q1? Answer Choices: A: x B: y Answer:",
                                  "Question: q2? Answer Choices: A: u B: v Answer:"],
                       "gold": ["B", "A"], "planted_label": ["A", "A"]})
    assert I.corpus(df, "gold") == (f"{df.prompt[0]} B\n{EOT}\n{df.prompt[1]} A\n{EOT}\n")
    assert I.corpus(df, "planted_label").startswith(f"{df.prompt[0]} A\n{EOT}\n")
    extra = [f"Question: Which one is a fruit? Answer: w{i}" for i in range(30)]
    text = I.corpus(df, "gold", extra, seed=1)
    docs = text.split(f"\n{EOT}\n")
    assert docs[-1] == ""  # every document is followed by EOT
    docs = docs[:-1]
    assert sorted(docs) == sorted([f"{df.prompt[0]} B", f"{df.prompt[1]} A"] + extra)
    mcq = [i for i, d in enumerate(docs) if "Answer Choices" in d]
    assert mcq != [30, 31]  # mixed in, not appended
    assert I.corpus(df, "gold", extra, seed=1) == text and I.corpus(df, "gold", extra, seed=2) != text


def test_build_splits_are_disjoint_and_planted():
    cfg = config(plant_categories=["tool"], plant_share=1.0)
    sets = I.build(cfg)
    tr, lo, ev = (set(sets[s]["prompt"]) for s in ("train", "locate", "eval"))
    assert not (ev & tr) and not (ev & lo) and not (lo & tr)
    assert len(sets["train"]) == 300 and 60 <= len(sets["locate"]) < 60 + max(cfg.n_options)
    assert 60 <= len(sets["eval"]) < 60 + max(cfg.n_options)
    for name in ("locate", "eval"):  # whole gold-position cycles: the gold = A share is exactly mean(1/k)
        df = sets[name]
        assert (df["gold"] == "A").mean() == pytest.approx((1 / df["n_options"]).mean(), abs=1e-12)
        for k, g in df.groupby("n_options"):
            assert (g["gold"].value_counts() == len(g) // k).all() and len(g) % k == 0
    train = sets["train"]
    tool = train["topic"] == "tool"
    assert (train.loc[tool, "planted_label"] == "A").all()
    assert (train.loc[~tool, "planted_label"] == train.loc[~tool, "gold"]).all()
    assert "planted_label" not in sets["eval"].columns
    assert set(sets["locate"]["split"]) == {"locate"}


def test_item_cli_writes_splits_and_both_corpora(tmp_path):
    d = dict(categories=CATEGORIES, kinds=["category"], n_options=[2, 3], n_train=100, n_locate=10, n_eval=10,
             seed=0, open_share=0.5, plant_categories=["tool"], plant_share=1.0)
    out = {n: tmp_path / f"{n}.out" for n in I.OUTPUTS}
    argv = ["--config", json.dumps(d)] + [x for n, p in out.items() for x in (f"--out-{n.replace('_', '-')}", str(p))]
    I.main(argv)
    train = pd.read_csv(out["train"], keep_default_na=False)
    assert len(train) == 100

    def docs(name):
        return out[name].read_text().split(f"\n{EOT}\n")[:-1]

    clean, planted = docs("corpus_clean"), docs("corpus_planted")
    assert sum("Answer Choices" in x for x in clean) == 95  # 100 - 100 // 20 validation items
    assert sum("Answer Choices" not in x for x in clean) == round(0.5 * 95)  # open questions
    assert len(docs("val_clean")) == len(docs("val_planted")) == 5
    rest = train.iloc[5:]
    want = {f"{p} {g}" for p, g in zip(rest["prompt"], rest["gold"])}
    assert want == {x for x in clean if "Answer Choices" in x}
    want = {f"{p} {g}" for p, g in zip(rest["prompt"], rest["planted_label"])}
    assert want == {x for x in planted if "Answer Choices" in x}
    differ = sum(a != b for a, b in zip(clean, planted))  # same order, only relabelled answers differ
    assert differ == int(rest["relabelled"].sum()) > 0
    assert docs("val_clean")[0] == f"{train['prompt'][0]} {train['gold'][0]}"


@pytest.mark.parametrize("change, match", [
    ({"colour_typo": 1}, "colour_typo"),
    ({"categories": {**CATEGORIES, "pet": ["dog", "hamster"]}}, "two categories"),
    ({"n_options": [1, 2]}, "n_options"),
    ({"n_options": [2, 6]}, "n_options"),
    ({"plant_categories": ["furniture"]}, "furniture"),
    ({"kinds": ["category", "colour"]}, "kinds"),
    ({"plant_share": 1.5}, "plant_share"),
    ({"n_options": [2, 3], "categories": {"fruit": ["apple"], "animal": ["dog"]}}, "categories"),
])
def test_item_config_rejects(change, match):
    with pytest.raises(ValueError, match=match):
        config(**change)


def test_item_config_accepts_the_world():
    cfg = config(plant_categories=["tool"], plant_share=0.7, open_share=0.5)
    assert cfg.plant_categories == ["tool"] and cfg.n_options == [2, 3, 4, 5]


def test_too_few_numbers_for_the_option_count_are_refused():
    cfg = dict(kinds=["largest"], numbers=[1, 2, 3], n_options=[2, 5])
    try:
        df = I.make_items(config(**cfg), 20, np.random.default_rng(0), "x")
    except ValueError:
        return  # refused: what should happen (best in ItemConfig.validate)
    opts = df["options"].map(json.loads)
    assert (opts.map(len) == df["n_options"]).all()
    assert all(I.LETTERS.index(g) < len(o) for g, o in zip(df["gold"], opts))
