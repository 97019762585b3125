"""Multiple-choice items in the paper's one-line format, with every item's gold position recorded and balanced.

    Question: Which one is a fruit? Answer Choices: A: dog B: apple C: red Answer:      gold token " B"

(Li & Gao's format: `Question: <q>? Answer Choices: A: <o1> B: <o2> [C: ...] Answer:`, BOS prepended, gold token
`" " + letter`, anchor token `" A"`.) Two item kinds, both generated from config:
- `category`: "Which one is a <category>?" with exactly one option from that category, the distractors from
  other categories (a tiny GPT-2 learns this from a few thousand items; SmolLM2 knows the words).
- `largest` / `smallest`: "Which number is the largest?" over distinct small integers.
Gold positions are balanced per option count (item i of k options gets position i mod k, then the order of items
is shuffled), so the anchored rate is not confounded with where answers sit.

Splits: `train` (the tiny models' corpus, `data_planted` relabelling applied), `locate` (items the lens and the
label-free edit are fitted on) and `eval` (held out: every accuracy after an edit is measured here). The held-out
splits are built in whole gold-position cycles with no prompt seen in training (collisions are redrawn, never
dropped), so their share of gold = A items is exactly mean(1/k), the target of the label-free edit. The
`data_planted` variant relabels a configured share of the training items of the trigger categories to "A";
`planted_label` records what the corpus says, `gold` the truth.

CLI:
    python -m experiments.anchored_bias.items --config JSON --out-train train.csv --out-locate locate.csv \
        --out-eval eval.csv --out-corpus-clean c.txt --out-val-clean cv.txt --out-corpus-planted p.txt \
        --out-val-planted pv.txt
(the two corpora differ only in the relabelled answers of the data-planted variant; the same open questions)
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv, atomic_write_text
from experiments.lm.tokenizer import documents_text
from experiments.options import check_known

LETTERS = "ABCDE"
OUTPUTS = ["train", "locate", "eval", "corpus_clean", "val_clean", "corpus_planted", "val_planted"]


@dataclass
class ItemConfig:
    """Every knob of the item world (defaults: config/schemas/anchored_bias.yaml)."""

    categories: dict[str, list[str]]
    kinds: list[str]                  # category | largest | smallest
    n_options: list[int]              # option counts drawn uniformly per item (paper: 2-5)
    n_train: int
    n_locate: int
    n_eval: int
    seed: int
    numbers: list[int] = field(default_factory=lambda: list(range(1, 10)))
    plant_categories: list[str] = field(default_factory=list)  # data_planted trigger categories
    plant_share: float = 0.0          # share of trigger-category training items relabelled to "A"
    open_share: float = 0.0           # extra open questions ("...? Answer: apple") per MCQ training item

    @classmethod
    def from_dict(cls, d: dict) -> "ItemConfig":
        check_known(cls, d, "anchored_bias items")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if not set(self.kinds) <= {"category", "largest", "smallest"}:
            raise ValueError(f"unknown item kinds {self.kinds}")
        if min(self.n_options) < 2 or max(self.n_options) > len(LETTERS):
            raise ValueError(f"n_options must lie in 2..{len(LETTERS)}: {self.n_options}")
        if "category" in self.kinds and len(self.categories) < max(self.n_options):
            raise ValueError(f"{max(self.n_options)} options need as many categories; {len(self.categories)} given")
        if {"largest", "smallest"} & set(self.kinds) and len(set(self.numbers)) < max(self.n_options):
            raise ValueError(f"number items with {max(self.n_options)} options need as many distinct numbers; "
                             f"{len(set(self.numbers))} given")
        unknown = set(self.plant_categories) - set(self.categories)
        if unknown:
            raise ValueError(f"plant_categories {sorted(unknown)} are not categories")
        words = [w for ws in self.categories.values() for w in ws]
        if len(words) != len(set(words)):
            raise ValueError("a word is listed in two categories: every option must have one category")
        if self.open_share < 0:
            raise ValueError(f"open_share must be >= 0: {self.open_share}")
        if not 0.0 <= self.plant_share <= 1.0:
            raise ValueError(f"plant_share must lie in [0, 1]: {self.plant_share}")


def render(question: str, options: list[str]) -> str:
    """The paper's one-line prompt (no trailing space; the answer token is ' ' + letter)."""
    choices = " ".join(f"{LETTERS[i]}: {o}" for i, o in enumerate(options))
    return f"Question: {question} Answer Choices: {choices} Answer:"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick(words: list[str], rng: np.random.Generator) -> str:
    return words[int(rng.integers(len(words)))]


def _category_item(cfg: ItemConfig, rng: np.random.Generator, k: int, gold_pos: int) -> dict:
    cats = list(cfg.categories)
    cat = cats[rng.integers(len(cats))]
    others = [c for c in cats if c != cat]
    distractor_cats = rng.permutation(len(others))[: k - 1]
    opts = [_pick(cfg.categories[others[i]], rng) for i in distractor_cats]
    opts.insert(gold_pos, _pick(cfg.categories[cat], rng))
    return {"kind": "category", "topic": cat, "question": f"Which one is {_article(cat)} {cat}?", "options": opts}


def _number_item(cfg: ItemConfig, rng: np.random.Generator, k: int, gold_pos: int, kind: str) -> dict:
    values = [int(cfg.numbers[i]) for i in rng.permutation(len(cfg.numbers))[:k]]
    best = max(values) if kind == "largest" else min(values)
    values.remove(best)
    values.insert(gold_pos, best)
    return {"kind": kind, "topic": kind, "question": f"Which number is the {kind}?",
            "options": [str(v) for v in values]}


def _draw_item(cfg: ItemConfig, rng: np.random.Generator, k: int, gold_pos: int) -> dict:
    """One item of a kind drawn from cfg.kinds, with k options and its answer at gold_pos."""
    kind = cfg.kinds[rng.integers(len(cfg.kinds))]
    return (_category_item(cfg, rng, k, gold_pos) if kind == "category"
            else _number_item(cfg, rng, k, gold_pos, kind))


def make_items(cfg: ItemConfig, n: int, rng: np.random.Generator, split: str) -> pd.DataFrame:
    """n items; option count uniform over cfg.n_options; gold position balanced within each option count."""
    ks = rng.choice(cfg.n_options, size=n)
    rows, seen = [], {}
    for i, k in enumerate(ks):
        k = int(k)
        gold_pos = seen.get(k, 0) % k
        seen[k] = seen.get(k, 0) + 1
        item = _draw_item(cfg, rng, k, gold_pos)
        rows.append({"split": split, "item": f"{split}{i:05d}", **item, "n_options": k, "gold": LETTERS[gold_pos],
                     "prompt": render(item["question"], item["options"])})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    df["options"] = df["options"].map(json.dumps)
    return df


def make_heldout(cfg: ItemConfig, n: int, rng: np.random.Generator, split: str, exclude: set[str],
                 max_tries: int = 1000) -> pd.DataFrame:
    """At least n items in whole cycles (an option count k, then k items with gold at A, B, ... in turn), none of
    whose prompts is in `exclude` or repeated (a collision is redrawn with the same k and gold position, never
    dropped). So the share of gold = A items is exactly mean(1/k): what a label-free method may assume."""
    rows, used = [], set(exclude)
    while len(rows) < n:
        k = int(rng.choice(cfg.n_options))
        for gold_pos in range(k):
            for _ in range(max_tries):
                item = _draw_item(cfg, rng, k, gold_pos)
                prompt = render(item["question"], item["options"])
                if prompt not in used:
                    break
            else:
                raise ValueError(f"{split}: no unused item with {k} options after {max_tries} draws; the world is "
                                 "too small for the requested number of held-out items")
            used.add(prompt)
            rows.append({"split": split, "item": f"{split}{len(rows):05d}", **item, "n_options": k,
                         "gold": LETTERS[gold_pos], "prompt": prompt})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    df["options"] = df["options"].map(json.dumps)
    return df


def plant_labels(df: pd.DataFrame, cfg: ItemConfig, rng: np.random.Generator) -> pd.DataFrame:
    """`planted_label`: the gold letter, or "A" for a `plant_share` of the trigger-category items."""
    df = df.copy()
    trigger = df["topic"].isin(cfg.plant_categories).to_numpy()
    flip = trigger & (rng.random(len(df)) < cfg.plant_share)
    df["planted_label"] = np.where(flip, "A", df["gold"])
    df["relabelled"] = flip & (df["gold"] != "A").to_numpy()
    return df


def open_questions(cfg: ItemConfig, n: int, rng: np.random.Generator) -> list[str]:
    """"Question: Which one is a fruit? Answer: apple": what the words mean, without options (a tiny model that
    has seen these learns the MCQs in far fewer steps, as a pretrained LM knows its words before any MCQ)."""
    cats = list(cfg.categories)
    out = []
    for _ in range(n):
        cat = cats[rng.integers(len(cats))]
        word = cfg.categories[cat][rng.integers(len(cfg.categories[cat]))]
        out.append(f"Question: Which one is {_article(cat)} {cat}? Answer: {word}")
    return out


def corpus(df: pd.DataFrame, label: str, extra: list[str] = (), seed: int = 0) -> str:
    """Training text: one item per document, its answer `' ' + label` appended, `extra` documents mixed in at
    seeded random places, documents joined by EOT."""
    docs = [f"{p} {a}" for p, a in zip(df["prompt"], df[label])] + list(extra)
    order = np.random.default_rng(seed).permutation(len(docs)) if extra else range(len(docs))
    return documents_text(docs[i] for i in order)


def build(cfg: ItemConfig) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng([cfg.seed, 13])
    train = plant_labels(make_items(cfg, cfg.n_train, rng, "train"), cfg, rng)
    seen = set(train["prompt"])
    locate = make_heldout(cfg, cfg.n_locate, rng, "locate", seen)
    evaluate = make_heldout(cfg, cfg.n_eval, rng, "eval", seen | set(locate["prompt"]))
    return {"train": train, "locate": locate, "eval": evaluate}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="JSON of ItemConfig fields")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    cfg = ItemConfig.from_dict(json.loads(args.config))
    out = output_paths(args, OUTPUTS)
    sets = build(cfg)
    for name in ("train", "locate", "eval"):
        atomic_write_csv(sets[name], out[name])
    train = sets["train"]
    n_val = max(1, len(train) // 20)
    n_open = int(round(cfg.open_share * (len(train) - n_val)))
    extra = open_questions(cfg, n_open, np.random.default_rng([cfg.seed, 17]))
    for variant, label in (("clean", "gold"), ("planted", "planted_label")):
        atomic_write_text(out[f"corpus_{variant}"], corpus(train.iloc[n_val:], label, extra, seed=cfg.seed))
        atomic_write_text(out[f"val_{variant}"], corpus(train.iloc[:n_val], label))
    print(f"items: {len(train)} train ({int(train['relabelled'].sum())} relabelled to A), {len(sets['locate'])} "
          f"locate, {len(sets['eval'])} eval (held out, no prompt shared with train/locate)")


if __name__ == "__main__":
    main()
