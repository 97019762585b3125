"""The paper's five MCQ datasets as items in the one-line format (notes §1.3, §5.2); not wired into the DAG yet.

Every builder returns the item table of `items.py` (split, item, kind, topic, question, options (JSON), n_options,
gold, prompt) plus its own columns, so predictions, the lens and the edits run on it unchanged.

- **IOI** (generated, offline): sentences in the style of Wang et al.'s IOI templates, both name orders (ABBA: the
  indirect object named first; BABA: the subject first), cut before the indirect object and asked as an MCQ with
  the subject (the distractor) in A and the indirect object in B, as in the repository's `IOI.json` (every label
  B). `swapped=True` builds the copy with the indirect object in A (gold = A). Extra columns: `ioi_text` (the
  sentence without the question mark), `io`, `s`, `order`: what the non-MCQ IOI logit difference (IO minus S at
  the next token) needs.
- **Greater-than** (generated, offline; the paper's option construction is unknown [U], so this one is ours):
  "The {noun} lasted from the year {c}{yy} to the year {c}?" asked with 4 two-digit endings, exactly one of them
  greater than yy (the gold), three smaller. yy in 02..97 as in Hanna et al.'s setup.
- **LD / ARC / CSQA** (hub rows, paper scale): converters from the rows of `lukaemon/bbh`
  `logical_deduction_three_objects` (input with "Options: (A) ..", target "(A)"), `allenai/ai2_arc` (question,
  choices {label, text}, answerKey; 4-choice items only) and `tau/commonsense_qa` (5 choices). `load_rows` reads
  them from the HF cache (experiments.data.hub; fails early, naming the dataset and the download command).

`balance_gold` re-orders each item's options so the gold position cycles through A, B, ... within each option
count (the distractors keep their relative order; the source position is kept in `gold_source`): the gold = A
share is then mean(1/k) up to a partial last cycle, which the label-free edit assumes. `split_locate_eval`
shuffles, cuts the locate and eval splits and balances each split on its own.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.anchored_bias.items import LETTERS, render

IOI_TEMPLATES = (  # [IO] and [S] as in Wang et al.'s templates, our wording; [S] is the repeated name
    "Then, {first} and {second} went to the {place}. {s} gave a {obj} to",
    "Then, {first} and {second} had a lot of fun at the {place}. {s} gave a {obj} to",
    "Then, {first} and {second} were working at the {place}. {s} decided to give a {obj} to",
    "After {first} and {second} went to the {place}, {s} gave a {obj} to",
    "When {first} and {second} got a {obj} at the {place}, {s} decided to give it to",
    "While {first} and {second} were working at the {place}, {s} gave a {obj} to",
    "Friends {first} and {second} found a {obj} at the {place}. {s} gave it to",
    "The {place} was busy when {first} and {second} arrived. {s} handed a {obj} to",
)
IOI_NAMES = ("Mary", "John", "Stephen", "Samantha", "Michael", "Sarah", "David", "Emily", "James", "Laura", "Robert",
             "Anna", "Thomas", "Rachel", "Daniel", "Julia", "Paul", "Emma", "Mark", "Lisa")
IOI_PLACES = ("station", "store", "garden", "school", "hospital", "restaurant", "office", "park", "house", "market")
IOI_OBJECTS = ("necklace", "book", "ring", "bone", "drink", "basketball", "computer", "kiss", "snack", "bag")
GREATER_NOUNS = ("war", "dynasty", "drought", "pilgrimage", "expedition", "occupation", "siege", "treaty",
                 "voyage", "reign")


def _item_rows(rows: list[dict], split: str) -> pd.DataFrame:
    out = []
    for i, r in enumerate(rows):
        opts = list(r["options"])
        out.append({"split": split, "item": f"{split}{i:05d}", **r, "options": json.dumps(opts),
                    "n_options": len(opts), "gold": LETTERS[r["gold_pos"]], "prompt": render(r["question"], opts)})
    return pd.DataFrame(out).drop(columns="gold_pos")


def ioi_items(n: int, seed: int, *, swapped: bool = False, names=IOI_NAMES, places=IOI_PLACES,
              objects=IOI_OBJECTS, templates=IOI_TEMPLATES, split: str = "ioi") -> pd.DataFrame:
    """n IOI MCQs; ABBA and BABA alternate; A = the subject (distractor), B = the indirect object (swapped:
    the other way round)."""
    if len(names) < 2:
        raise ValueError("IOI needs at least two names")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b = rng.choice(len(names), size=2, replace=False)
        io, s = names[a], names[b]
        order = "ABBA" if i % 2 == 0 else "BABA"
        first, second = (io, s) if order == "ABBA" else (s, io)
        t = templates[int(rng.integers(len(templates)))]
        text = t.format(first=first, second=second, s=s, place=places[int(rng.integers(len(places)))],
                        obj=objects[int(rng.integers(len(objects)))])
        options, gold = ([io, s], 0) if swapped else ([s, io], 1)
        rows.append({"kind": "ioi", "topic": "ioi", "question": text + "?", "options": options, "gold_pos": gold,
                     "ioi_text": text, "io": io, "s": s, "order": order})
    return _item_rows(rows, split)


def greater_items(n: int, seed: int, *, nouns=GREATER_NOUNS, centuries=(11, 12, 13, 14, 15, 16, 17, 18),
                  n_options: int = 4, split: str = "greater") -> pd.DataFrame:
    """n Greater-than MCQs: one ending > yy (gold, at a random position: balance_gold re-orders), the others < yy."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        yy = int(rng.integers(max(2, n_options), 98))  # room for n_options - 1 smaller endings and one larger
        c = int(centuries[int(rng.integers(len(centuries)))])
        smaller = rng.choice(yy, size=n_options - 1, replace=False)
        larger = int(rng.integers(yy + 1, 100))
        opts = [f"{int(v):02d}" for v in smaller]
        pos = int(rng.integers(n_options))
        opts.insert(pos, f"{larger:02d}")
        noun = nouns[int(rng.integers(len(nouns)))]
        rows.append({"kind": "greater", "topic": "greater", "question":
                     f"The {noun} lasted from the year {c}{yy:02d} to the year {c}?", "options": opts,
                     "gold_pos": pos, "start_yy": yy})
    return _item_rows(rows, split)


_LD_OPTION = re.compile(r"^\(([A-Z])\)\s*(.+?)\s*$")


def ld_items(rows: list[dict], split: str = "ld") -> pd.DataFrame:
    """BIG-bench logical deduction (BBH layout): `input` = paragraph + "Options:" + "(A) ..." lines, `target` "(B)"."""
    out = []
    for r in rows:
        text, _, opts_text = r["input"].partition("Options:")
        labels, opts = [], []
        for line in opts_text.strip().splitlines():
            m = _LD_OPTION.match(line.strip())
            if m:
                labels.append(m.group(1))
                opts.append(m.group(2))
        target = r["target"].strip().strip("()")
        if not opts or target not in labels:
            raise ValueError(f"logical deduction row without parsable options or target: {r['input'][:80]!r}")
        out.append({"kind": "ld", "topic": "ld", "question": " ".join(text.split()), "options": opts,
                    "gold_pos": labels.index(target)})
    return _item_rows(out, split)


def choice_items(rows: list[dict], kind: str, n_choices: int, split: str | None = None) -> pd.DataFrame:
    """ARC / CommonsenseQA rows (question, choices {label, text}, answerKey); items with exactly n_choices kept."""
    out = []
    for r in rows:
        labels, texts = list(r["choices"]["label"]), list(r["choices"]["text"])
        if len(texts) != n_choices or r["answerKey"] not in labels:
            continue
        out.append({"kind": kind, "topic": kind, "question": " ".join(str(r["question"]).split()),
                    "options": [" ".join(t.split()) for t in texts], "gold_pos": labels.index(r["answerKey"]),
                    "source_id": r.get("id", "")})
    if not out:
        raise ValueError(f"{kind}: no row with exactly {n_choices} choices and a valid answerKey")
    return _item_rows(out, split or kind)


@dataclass(frozen=True)
class HubSource:
    dataset: str
    config: str | None
    split: str
    convert: str  # ld | arc | csqa


HUB_SOURCES = {
    "ld": HubSource("lukaemon/bbh", "logical_deduction_three_objects", "test", "ld"),
    "arc": HubSource("allenai/ai2_arc", "ARC-Challenge", "test", "arc"),
    "csqa": HubSource("tau/commonsense_qa", None, "validation", "csqa"),
}


def hub_items(name: str, *, revision: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """One of HUB_SOURCES from the local HF cache (experiments.data.hub: fails early when it is missing)."""
    from experiments.data.hub import load_hub_rows

    src = HUB_SOURCES[name]
    rows = load_hub_rows(src.dataset, src.split, revision=revision, config_name=src.config, limit=limit)
    if src.convert == "ld":
        return ld_items(rows)
    return choice_items(rows, src.convert, 4 if src.convert == "arc" else 5)


def balance_gold(df: pd.DataFrame) -> pd.DataFrame:
    """Move each item's gold to position (i mod k) for the i-th item with k options (distractors keep their
    order); recompute gold and prompt; the source position goes to `gold_source`."""
    out = df.copy()
    count: dict[int, int] = {}
    opts_col, gold_col, src_col, prompt_col = [], [], [], []
    for r in out.itertuples():
        opts = json.loads(r.options)
        k = len(opts)
        src = LETTERS.index(r.gold)
        pos = count.get(k, 0) % k
        count[k] = count.get(k, 0) + 1
        gold_opt = opts.pop(src)
        opts.insert(pos, gold_opt)
        opts_col.append(json.dumps(opts))
        gold_col.append(LETTERS[pos])
        src_col.append(LETTERS[src])
        prompt_col.append(render(r.question, opts))
    out["options"], out["gold"], out["gold_source"], out["prompt"] = opts_col, gold_col, src_col, prompt_col
    return out


def split_locate_eval(df: pd.DataFrame, n_locate: int, n_eval: int, seed: int, *,
                      balance: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Shuffle, cut locate (first n_locate) and eval (next n_eval), each balanced on its own (balance_gold)."""
    if n_locate + n_eval > len(df):
        raise ValueError(f"{n_locate} locate + {n_eval} eval items asked, the dataset has {len(df)}")
    order = np.random.default_rng(seed).permutation(len(df))
    parts = []
    for name, idx in (("locate", order[:n_locate]), ("eval", order[n_locate:n_locate + n_eval])):
        part = df.iloc[idx].reset_index(drop=True).assign(split=name)
        part["item"] = [f"{name}{i:05d}" for i in range(len(part))]
        parts.append(balance_gold(part) if balance else part)
    return parts[0], parts[1]
