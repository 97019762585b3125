"""Scoring text under a causal LM: continuation log-probabilities, per-block losses (CIs: experiments.stats).

    scores = continuation_logprobs(model, tok, ["The capital of France is"], [" Paris"])
    scores[0].logprob, scores[0].n_tokens
    losses = block_losses(model, blocks)          # (n,) mean next-token NLL in nats
    picks = multiple_choice(model, tok, ["Lily picked up her"], [[" red ball", " blue ball"]])
    picks[0].chosen, picks[0].logprobs, picks[0].n_tokens, picks[0].per_token
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


class ContinuationScore(NamedTuple):
    logprob: float  # sum over continuation tokens of log p(token | everything before it), nats
    n_tokens: int


def _right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def _encode_pairs(tokenizer, prefixes: list[str], continuations: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prefix ids, continuation ids), tokenised separately so the boundary is exact.

    The prefix gets the tokenizer's default special tokens (e.g. Llama's BOS); an empty prefix
    becomes [bos or eos], the GPT-2 convention for unconditional text. The continuation gets none.
    """
    if not prefixes:
        return []
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pre = tokenizer(list(prefixes))["input_ids"]
    cont = tokenizer(list(continuations), add_special_tokens=False)["input_ids"]
    pairs = []
    for p, c in zip(pre, cont):
        if not p:
            if start is None:
                raise ValueError("empty prefix and the tokenizer has neither a bos nor an eos token")
            p = [start]
        pairs.append((list(p), list(c)))
    return pairs


@torch.inference_mode()
def continuation_logprobs(model, tokenizer, prefixes: list[str], continuations: list[str], batch_size: int = 32,
                          progress: bool = False) -> list[ContinuationScore]:
    """log p(continuation | prefix) summed over continuation tokens, with the token count, per pair."""
    if len(prefixes) != len(continuations):
        raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
    pairs = _encode_pairs(tokenizer, prefixes, continuations)
    pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    results = [ContinuationScore(0.0, 0)] * len(pairs)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for batch in tqdm(batches, desc="scoring", disable=not progress):
        batch = [i for i in batch if pairs[i][1]]  # empty continuations score 0
        if not batch:
            continue
        ids, mask = _right_pad([pairs[i][0] + pairs[i][1] for i in batch], pad_id)
        # target[b, t] marks that token t + 1 of row b is a continuation token
        target = torch.zeros_like(mask[:, 1:], dtype=torch.bool)
        for b, i in enumerate(batch):
            n_pre, n_cont = len(pairs[i][0]), len(pairs[i][1])
            target[b, n_pre - 1:n_pre - 1 + n_cont] = True
        ids, mask, target = ids.to(model.device), mask.to(model.device), target.to(model.device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        logp = logits[target].float().log_softmax(-1).gather(-1, ids[:, 1:][target][:, None]).squeeze(-1)
        rows = torch.arange(len(batch), device=ids.device)[:, None].expand_as(target)[target]
        sums = torch.zeros(len(batch), dtype=torch.float64, device=ids.device).index_add_(0, rows, logp.double())
        for b, i in enumerate(batch):
            results[i] = ContinuationScore(float(sums[b]), len(pairs[i][1]))
    return results


NORMALIZATIONS = ("sum", "per_token")  # the score an option is chosen by: summed log-prob, or it / n_tokens


class Choice(NamedTuple):
    """One multiple-choice item scored: per option the summed log-prob (nats), its token count and the
    length-normalised score (log-prob per token); `chosen` is the argmax under `normalization`."""

    logprobs: tuple[float, ...]
    n_tokens: tuple[int, ...]
    per_token: tuple[float, ...]
    chosen: int
    normalization: str


def choose(logprobs, n_tokens, normalization: str) -> int:
    """Index of the best option under a named normalisation (first one on ties)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization {normalization!r} not in {NORMALIZATIONS}")
    if normalization == "sum":
        scores = list(logprobs)
    else:
        if any(n <= 0 for n in n_tokens):
            raise ValueError("per_token normalisation needs options of at least one token")
        scores = [lp / n for lp, n in zip(logprobs, n_tokens)]
    return int(np.argmax(scores))


def multiple_choice(model, tokenizer, prefixes: list[str], options: list[list[str]], normalization: str = "sum",
                    batch_size: int = 32, progress: bool = False) -> list[Choice]:
    """Score each prefix's candidate continuations (options[i] for prefixes[i]) and pick one.

    Under "sum" a longer option pays for every extra token, so compare summed log-probs only across
    options of the same token count (e.g. drop the others first); "per_token" divides by the count.
    Every option is scored with the same prefix tokens (continuation_logprobs' exact boundary).
    """
    if len(prefixes) != len(options):
        raise ValueError(f"{len(prefixes)} prefixes but {len(options)} option lists")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization {normalization!r} not in {NORMALIZATIONS}")
    if any(len(opts) == 0 for opts in options):
        raise ValueError("every prefix needs at least one option")
    flat_prefix = [p for p, opts in zip(prefixes, options) for _ in opts]
    flat_opts = [o for opts in options for o in opts]
    scores = continuation_logprobs(model, tokenizer, flat_prefix, flat_opts, batch_size=batch_size,
                                   progress=progress)
    out, k = [], 0
    for opts in options:
        part = scores[k:k + len(opts)]
        k += len(opts)
        lp = tuple(s.logprob for s in part)
        nt = tuple(s.n_tokens for s in part)
        per = tuple(s.logprob / s.n_tokens if s.n_tokens else float("nan") for s in part)
        out.append(Choice(lp, nt, per, choose(lp, nt, normalization), normalization))
    return out


@torch.inference_mode()
def block_losses(model, blocks: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Mean next-token cross-entropy (nats) of each row of `blocks` (n, T), shape (n,)."""
    losses = []
    for start in range(0, len(blocks), batch_size):
        x = blocks[start:start + batch_size].to(model.device)
        logits = model(input_ids=x).logits[:, :-1].float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none")
        losses.append(nll.view(len(x), -1).mean(1).cpu())
    return torch.cat(losses).double().numpy() if losses else np.zeros(0)
