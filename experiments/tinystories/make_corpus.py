"""Build the TinyStories corpus: training and validation stories, held-out prompts and cloze probes.

storyworld (mini): stories from the seeded StoryWorld grammar. Train, validation and evaluation stories
    come from three disjoint seeds; prompts are evaluation-story beginnings cut mid-sentence (as the
    paper's GPT-Eval prompts are), each with its planted facts and the true rest of the story; cloze
    probes ask for a planted fact among alternatives of the same word class drawn from this world's
    word lists (so every option occurs in training); truth.csv lists every planted fact.
hub (paper): roneneldan/TinyStories train/validation text from the local HF cache, and the paper's
    evaluation prompts file from the same dataset repo; no planted facts (cloze.jsonl and truth.csv empty).

Documents in train.txt / val.txt are separated by lines holding only <|endoftext|>.

CLI: python -m experiments.tinystories.make_corpus --source storyworld --seed 0 --n-train 20000 --n-val 1000 \
        --n-prompts 100 --n-cloze 400 --world '{}' --out-train T.txt --out-val V.txt \
        --out-prompts P.jsonl --out-cloze C.jsonl --out-truth truth.csv
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv, atomic_write_text
from experiments.lm.tokenizer import documents_text
from experiments.tinystories.eval_sets import make_cloze_items, make_prompts
from experiments.tinystories.world import StoryWorld, WorldConfig

OUTPUTS = ["train", "val", "prompts", "cloze", "truth"]


def write_documents(docs, path: Path) -> int:
    docs = [d.strip() for d in docs if d and d.strip()]
    atomic_write_text(path, documents_text(docs))
    return len(docs)


def jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def flatten_facts(story_id: str, facts: dict) -> dict:
    out = {"story_id": story_id}
    for key, value in facts.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            out[key] = ";".join(map(str, value))
        else:
            out[key] = value
    return out


def storyworld_corpus(args, out: dict[str, Path]) -> None:
    world = StoryWorld(WorldConfig.from_dict(json.loads(args.world)))
    train = world.generate(args.n_train, seed=args.seed * 3 + 0)
    val = world.generate(args.n_val, seed=args.seed * 3 + 1)
    # evaluation stories: enough for the prompts and the cloze probes
    held = world.generate(max(args.n_prompts, args.n_cloze, 1), seed=args.seed * 3 + 2)
    for st in held:  # tag ids so they cannot be confused with training stories
        st.story_id = f"eval-{st.story_id}"
    train_texts = {st.text for st in train}
    leaked = sum(st.text in train_texts for st in held)
    write_documents([st.text for st in train], out["train"])
    write_documents([st.text for st in val], out["val"])
    prompts = make_prompts(held, cut_rng_seed=args.seed)[: args.n_prompts]
    for p in prompts:
        assert p["prompt"] + p["reference"] == next(s.text for s in held if s.story_id == p["story_id"])
    atomic_write_text(out["prompts"], jsonl(prompts))
    cloze = make_cloze_items(held, world, seed=args.seed)[: args.n_cloze]
    atomic_write_text(out["cloze"], jsonl(cloze))
    truth = pd.DataFrame([flatten_facts(st.story_id, st.facts) for st in held])
    atomic_write_csv(truth, out["truth"], allow_nan=list(truth.columns))  # optional facts are empty
    n_chars = sum(len(st.text) for st in train)
    print(f"storyworld: {len(train)} train ({n_chars / 1e6:.2f} MB), {len(val)} val, {len(prompts)} prompts, "
          f"{len(cloze)} cloze items, vocabulary {len(world.vocabulary())} words; "
          f"{leaked} evaluation stories also occur verbatim in train")


def hub_corpus(args, out: dict[str, Path]) -> None:
    import yaml

    from experiments.data.hub import cached_dataset_snapshot, check_dataset_available, load_hub_text

    revision = None if args.hub_revision == "none" else args.hub_revision
    check_dataset_available(args.hub_dataset, revision)
    train = load_hub_text(args.hub_dataset, "train", revision=revision, limit=args.n_train)
    val = load_hub_text(args.hub_dataset, "validation", revision=revision, limit=args.n_val)
    n_train = write_documents(train, out["train"])
    n_val = write_documents(val, out["val"])
    prompts_file = json.loads(args.prompts_file)
    prompts = []
    if prompts_file:
        path = cached_dataset_snapshot(args.hub_dataset, revision) / prompts_file
        if not path.exists():
            sys.exit(f"missing {path}: the paper's evaluation prompts file of {args.hub_dataset}; "
                     f"download the dataset repo with `hf download {args.hub_dataset} --repo-type dataset`")
        loaded = yaml.safe_load(path.read_text())
        items = loaded if isinstance(loaded, list) else next(v for v in loaded.values() if isinstance(v, list))
        prompts = [{"story_id": f"paper-{i}", "prompt": str(p).rstrip(), "reference": None, "facts": None}
                   for i, p in enumerate(items)][: args.n_prompts]
    else:  # no prompts file: beginnings of validation stories, cut mid-sentence at a fixed word count
        for i, text in enumerate(val[: args.n_prompts]):
            words = text.split(" ")
            prompts.append({"story_id": f"val-{i}", "prompt": " ".join(words[: max(5, len(words) // 3)]),
                            "reference": " " + " ".join(words[max(5, len(words) // 3):]), "facts": None})
    atomic_write_text(out["prompts"], jsonl(prompts))
    atomic_write_text(out["cloze"], "")
    atomic_write_csv(pd.DataFrame(columns=["story_id"]), out["truth"])
    print(f"hub {args.hub_dataset}: {n_train} train, {n_val} val stories, {len(prompts)} prompts")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=["storyworld", "hub"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=lambda s: None if s == "None" else int(s), required=True)
    ap.add_argument("--n-val", type=lambda s: None if s == "None" else int(s), required=True)
    ap.add_argument("--n-prompts", type=int, required=True)
    ap.add_argument("--n-cloze", type=int, default=0)
    ap.add_argument("--world", default="{}", help="JSON overrides of StoryWorld's WorldConfig")
    ap.add_argument("--hub-dataset", default="roneneldan/TinyStories")
    ap.add_argument("--hub-revision", default="none")
    ap.add_argument("--prompts-file", default="null", help="JSON string or null")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    out = output_paths(args, OUTPUTS)
    if args.source == "storyworld":
        if args.n_train is None or args.n_val is None:
            sys.exit("storyworld needs explicit tinystories.data.n_train_stories and n_val_stories")
        storyworld_corpus(args, out)
    else:
        hub_corpus(args, out)


if __name__ == "__main__":
    main()
