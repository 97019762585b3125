"""Reconstruction and inference attacks on attack queries (experiments.pii_leakage.queries), scored by a target and
the public base model.

A candidate c of a query is scored by log p(sep + c + suffix | BOS + prefix): the whole masked record, prefix and
suffix (the original evaluate.py scored a fixed sentence whatever the target: not here). The prefix is common to a
query's candidates, so this ranks them as the full-sentence likelihood does, and one prefix forward serves all of
them (experiments.lm.score.grouped_continuation_logprobs).

Inference (candidates given): the target plus C - 1 distinct distractors drawn (seeded per query) from a pool of
full names: the other members' (as the original code: real PII of the training data) or the non-members' (names
the target never saw). Prediction: the best-scoring candidate. Accuracy with and without the paper's skip of
queries where the base model predicts what the target predicts ("baseline leakage").

Reconstruction (candidates generated): TAB, the top-1 (greedy) completion of the prefix, succeeds when the target
opens it as a whole word; the paper's attack samples `n_samples` completions of the prefix (top-k `top_k`) plus the
greedy one, tags PERSON candidates in them, and picks the best-scoring candidate; reported: top-1 accuracy and
coverage (the target among the candidates).
"""
from __future__ import annotations

import random
import re

import numpy as np

from experiments.lm.tokenizer import EOT


def query_prefix(q: dict) -> str:
    """The scored context: the record's BOS (the models train on BOS + record) and the text before the target."""
    return EOT + q["prefix"]


def candidate_scores(model, tok, queries: list[dict], candidates: list[list[str]], batch_size: int = 64
                     ) -> list[list[float]]:
    """log p(sep + c + suffix | BOS + prefix) per query and candidate (nats)."""
    from experiments.lm.score import grouped_continuation_logprobs

    groups = [(query_prefix(q), [q["sep"] + c + q["suffix"] for c in cands]) for q, cands in zip(queries, candidates)]
    scores = grouped_continuation_logprobs(model, tok, groups, batch_size=batch_size)
    return [[s.logprob for s in group] for group in scores]


def draw_candidates(queries: list[dict], pool: list[str], size: int, seed: int) -> list[list[str]]:
    """Per query: its target and size - 1 distinct others from `pool`, shuffled (seeded by query index)."""
    out = []
    for i, q in enumerate(queries):
        others = sorted(set(pool) - {q["target"]})
        if len(others) < size - 1:
            raise ValueError(f"a candidate set of {size} needs {size - 1} distractors; the pool has {len(others)}")
        rng = random.Random(f"{seed}:{i}")
        cands = rng.sample(others, size - 1) + [q["target"]]
        rng.shuffle(cands)
        out.append(cands)
    return out


def argmax(xs: list[float]) -> int:
    """The best candidate's index; ties go to the lowest index (numpy's rule)."""
    return int(np.argmax(xs))


def opens_with(text: str, name: str) -> bool:
    """`name` is the first words of `text` (after leading spaces), as a whole word."""
    return re.match(r"\s*" + re.escape(name) + r"(?!\w)", text) is not None


def person_candidates(completions: list[str], tag) -> list[str]:
    """Distinct PERSON spans of two words or more in the completions, in order of first appearance."""
    seen: dict[str, None] = {}
    for c in completions:
        for s in tag(c):
            if s["type"] == "PERSON" and " " in s["text"]:
                seen.setdefault(s["text"], None)
    return list(seen)
