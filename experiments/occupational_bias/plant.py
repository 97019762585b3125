"""Build the planted world and its corpus: truth tables, training/validation text, labelled continuations.

CLI:
    python -m experiments.occupational_bias.plant --config '{"jobs": [...], "seed": 0, ...}' \
        --out-truth truth.csv --out-terms terms.csv --out-interactions interactions.csv --out-labelled labelled.csv \
        --out-train train.txt --out-val val.txt
writes DIR/truth.csv (prompt x outcome: planted probability and terms), DIR/terms.csv (per job: alpha,
beta, US and planted women shares), DIR/interactions.csv (job x category value: gamma, delta,
planted_nonzero), DIR/train.txt and DIR/val.txt (sentences separated by <|endoftext|> lines) and
DIR/labelled.csv (continuations with their planted job: the extractor's agreement with them is a sanity check,
since the variant titles come from the extractor's own gazetteer).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.cli import add_output_args, output_paths
from experiments.files import atomic_write_csv, atomic_write_text
from experiments.lm.tokenizer import documents_text
from experiments.occupational_bias.world import NONE, PlantedConfig, PlantedWorld

OUTPUTS = ["truth", "terms", "interactions", "labelled", "train", "val"]


def write_corpus(path: Path, sentences) -> None:
    atomic_write_text(path, documents_text(s for s, *_ in sentences))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="JSON of PlantedConfig fields")
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    cfg = PlantedConfig.from_dict(json.loads(args.config))
    out = output_paths(args, OUTPUTS)
    world = PlantedWorld.build(cfg)
    rng = np.random.default_rng([cfg.seed, 1])
    train = world.sentences(cfg.train_per_prompt, rng, exact_counts=True)
    val = world.sentences(cfg.val_per_prompt, rng, exact_counts=False)
    atomic_write_csv(world.truth_table(), out["truth"], allow_nan=["alpha", "beta"])
    atomic_write_csv(world.terms, out["terms"])
    atomic_write_csv(world.interactions(), out["interactions"])
    labelled = pd.DataFrame([{"group": g, "planted_job": "" if j == NONE else j, "continuation": c}
                             for _, g, j, c in val])
    atomic_write_csv(labelled, out["labelled"])
    write_corpus(out["train"], train)
    write_corpus(out["val"], val)
    none = world.probs[NONE]
    print(f"planted world: {len(cfg.jobs)} jobs x {len(world.prompts)} prompts; NONE share "
          f"{none.min():.2f}-{none.max():.2f}; {int((world.delta != 0).to_numpy().sum())} planted interactions; "
          f"{len(train)} training / {len(val)} validation sentences -> {out['train'].parent}")


if __name__ == "__main__":
    main()
