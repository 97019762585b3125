"""Scoring text under a causal LM: continuation log-probabilities, per-block losses (CIs: experiments.stats).

    scores = continuation_logprobs(model, tok, ["The capital of France is"], [" Paris"])
    scores[0].logprob, scores[0].n_tokens
    losses = block_losses(model, blocks)          # (n,) mean next-token NLL in nats
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
