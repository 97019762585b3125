"""Automatic substitutes for the paper's GPT-4 grades on StoryWorld text (notes A7).

Pure functions of the texts (numpy only, plus the exact StoryWorld recognizer):
  grammar      grammaticality(): fraction of sentences the generating grammar derives;
               first_sentence_completion(): does the prompt's split sentence get completed
               grammatically (the rubric's "pay special attention" point);
  consistency  consistency_rate(): planted-fact references that agree with the facts;
  creativity   NOT measurable; diversity only: distinct_n(), and novelty() of n-grams
               against the training set (a copying / memorisation detector).
Word-level tokens for the diversity metrics: lower-cased words (letters, apostrophes)
and every other non-space character as its own token.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Iterable, Sequence

import numpy as np

from experiments.tinystories.grammar import check_consistency, is_grammatical, split_sentences

_WORD_RE = re.compile(r"[a-z']+|[^\sa-z']")


def grammaticality(texts: Iterable[str], ignore_unfinished_tail: bool = False) -> float:
    """Fraction of sentences, pooled over all texts, accepted by the StoryWorld grammar.

    With ignore_unfinished_tail, a text's last sentence is skipped when it has no final
    punctuation (it was cut by a generation-length limit); otherwise it counts as an error.
    NaN when there are no sentences.
    """
    n = ok = 0
    for text in texts:
        sentences = split_sentences(text)
        if ignore_unfinished_tail and sentences and sentences[-1].rstrip('"')[-1:] not in (".", "!", "?"):
            sentences = sentences[:-1]
        n += len(sentences)
        ok += sum(is_grammatical(s) for s in sentences)
    return ok / n if n else float("nan")


def prompt_tail(prompt: str) -> str:
    """The prompt's unfinished last sentence ("" if the prompt ends at a sentence end)."""
    sentences = split_sentences(prompt)
    if not sentences or prompt.endswith("\n"):
        return ""
    last = sentences[-1]
    finished = len(split_sentences(last + " X")) > 1  # a following capital word would start a new sentence
    return "" if finished else last


def first_sentence_completion(prompt: str, continuation: str) -> bool:
    """Whether the sentence split by the cut (prompt's partial last sentence + the
    continuation up to its first sentence end) is grammatical."""
    tail = prompt_tail(prompt)
    sentences = split_sentences(tail + continuation)
    return bool(sentences) and is_grammatical(sentences[0])


def consistency_rate(facts_list: Sequence[dict[str, Any]], texts: Sequence[str]) -> tuple[int, int]:
    """(n_checks, n_consistent) summed over texts; see grammar.check_consistency."""
    if len(facts_list) != len(texts):
        raise ValueError("facts_list and texts differ in length")
    n_checks = n_ok = 0
    for facts, text in zip(facts_list, texts):
        r = check_consistency(facts, text)
        n_checks += r.n_checks
        n_ok += r.n_consistent
    return n_checks, n_ok


# --------------------------------------------------------------------------- n-grams
def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


_TOKEN_HASH: dict[str, int] = {}
_MULT = np.uint64(0x9E3779B97F4A7C15)


def _token_hash(tok: str) -> int:
    h = _TOKEN_HASH.get(tok)
    if h is None:
        h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
        _TOKEN_HASH[tok] = h
    return h


def ngram_keys(texts: Iterable[str], n: int) -> np.ndarray:
    """64-bit keys of every word n-gram occurrence (n-grams never cross texts).

    Keys are a polynomial hash of stable per-token hashes (blake2b), so they are equal
    across processes; collisions are negligible at 2^64.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    hashes: list[int] = []
    doc: list[int] = []
    for d, text in enumerate(texts):
        toks = words(text)
        hashes.extend(_token_hash(t) for t in toks)
        doc.extend([d] * len(toks))
    if len(hashes) < n:
        return np.zeros(0, dtype=np.uint64)
    h = np.array(hashes, dtype=np.uint64)
    docs = np.array(doc, dtype=np.int64)
    m = len(h) - n + 1
    keys = h[:m].copy()
    for k in range(1, n):
        keys = keys * _MULT + h[k:k + m]
    return keys[docs[:m] == docs[n - 1:]]


def ngram_set(texts: Iterable[str], n: int) -> set[int]:
    """Set of n-gram keys (see ngram_keys) of a corpus, e.g. the training stories."""
    return set(np.unique(ngram_keys(texts, n)).tolist())


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique n-grams / total n-grams over the whole set (NaN if there are none)."""
    keys = ngram_keys(texts, n)
    return len(np.unique(keys)) / len(keys) if len(keys) else float("nan")


def novelty(texts: Iterable[str], train_ngrams: set[int], n: int = 8) -> float:
    """Fraction of generated n-gram occurrences NOT in the training set (0.0 = everything
    copied from train; NaN if the texts have no n-grams).  `train_ngrams` must come from
    ngram_set(train_texts, n) with the same n."""
    keys = ngram_keys(texts, n)
    if not len(keys):
        return float("nan")
    train = np.fromiter(train_ngrams, dtype=np.uint64, count=len(train_ngrams))
    return float(np.mean(~np.isin(keys, train)))
