"""Scoring text under a causal LM: continuation log-probabilities, per-block losses (CIs: experiments.stats).

    scores = continuation_logprobs(model, tok, ["The capital of France is"], [" Paris"])
    scores[0].logprob, scores[0].n_tokens
    losses = block_losses(model, blocks)          # (n,) mean next-token NLL in nats
    picks = multiple_choice(model, tok, ["Lily picked up her"], [[" red ball", " blue ball"]])
    picks[0].chosen, picks[0].logprobs, picks[0].n_tokens, picks[0].per_token
    scores = prefix_logprobs(model, tok, "My name is", [" Alice", " Bob Smith"])   # one prefix forward
    per_group = grouped_continuation_logprobs(model, tok, [("A", [" b", " c"]), ("D", [" e"])])

Shared prefix: continuations of one prefix are scored on the prefix's KV cache. The prefix runs forward
once (distinct prefixes left-padded into batches, position_ids = cumsum(mask) - 1 as in lm.sample); the
first continuation token's log-prob comes from the prefix's last logits, and the continuations, right-padded
without their last token, run forward in batches on the prefix cache gathered out to their rows (attention
mask over prefix + continuation, position_ids continuing from the prefix's length). Equal to one forward of
prefix + continuation per pair up to float round-off. `continuation_logprobs` and `multiple_choice` take this
path for pairs whose prefix ids repeat (and the model takes a KV cache); other pairs run prefix + continuation
concatenated, one forward per batch of pairs.
"""
from __future__ import annotations

import copy
import inspect
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from experiments.lm.sample import (
    _cache_kwarg,
    _last_logits_kwargs,
    _left_pad,
    _output_cache,
    _select_cache,
    pad_id_of,
    prompt_ids,
)


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


def _encode_prefixes(tokenizer, prefixes: list[str]) -> list[list[int]]:
    """Prefix ids with the tokenizer's default special tokens; an empty prefix becomes [bos or eos]."""
    return prompt_ids(tokenizer, prefixes)


def _encode_continuations(tokenizer, continuations: list[str]) -> list[list[int]]:
    """Continuation ids, without special tokens."""
    if not continuations:
        return []
    return [list(c) for c in tokenizer(list(continuations), add_special_tokens=False)["input_ids"]]


def _encode_pairs(tokenizer, prefixes: list[str], continuations: list[str]) -> list[tuple[list[int], list[int]]]:
    """(prefix ids, continuation ids), tokenised separately so the boundary is exact.

    The prefix gets the tokenizer's default special tokens (e.g. Llama's BOS); an empty prefix
    becomes [bos or eos], the GPT-2 convention for unconditional text. The continuation gets none.
    """
    if not prefixes:
        return []
    return list(zip(_encode_prefixes(tokenizer, prefixes), _encode_continuations(tokenizer, continuations)))


@torch.inference_mode()
def _full_forward_scores(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int,
                         progress: bool = False) -> list[ContinuationScore]:
    """One forward of prefix + continuation per pair (batches of pairs, right-padded): the reference path."""
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


def _takes_cache(model) -> bool:
    """Whether model.forward accepts a KV cache, use_cache and position_ids (HF causal LMs do)."""
    params = inspect.signature(model.forward).parameters
    return {"use_cache", "position_ids"} <= set(params) and ("cache" in params or "past_key_values" in params)


def _fork_cache(cache):
    """A copy of `cache` that _select_cache and a forward can change without touching `cache` (tensors shared)."""
    if isinstance(cache, tuple):  # legacy tuples: _select_cache makes new ones
        return cache
    if hasattr(cache, "layers"):  # transformers Cache: the layers rebind their tensors, they never write into them
        fork = copy.copy(cache)
        fork.layers = [copy.copy(layer) for layer in cache.layers]
        return fork
    return copy.deepcopy(cache)


@torch.inference_mode()
def _shared_prefix_token_logprobs(model, groups: list[tuple[list[int], list[list[int]]]], *, pad_id: int,
                                  batch_size: int, progress: bool = False) -> list[list[np.ndarray]]:
    """Per group (prefix ids, continuation ids), per continuation: log p of each token (float64 array).

    Distinct prefixes run forward once each (left-padded batches of <= batch_size, shortest first); each
    continuation's first token is scored from its prefix's last logits; continuations of two or more tokens
    run forward (without their last token, right-padded, <= batch_size rows, sorted by length) on the
    prefix cache gathered out to their rows.
    """
    out: list[list[np.ndarray]] = [[np.zeros(0)] * len(conts) for _, conts in groups]
    todo = sorted((g for g, (pre, conts) in enumerate(groups) if any(conts)), key=lambda g: len(groups[g][0]))
    if not todo:
        return out
    if any(not groups[g][0] for g in todo):
        raise ValueError("a prefix must have at least one token")
    device = model.device
    cache_kw = _cache_kwarg(model)
    total = sum(1 for g in todo for c in groups[g][1] if c)
    with tqdm(total=total, desc="scoring", disable=not progress, unit="continuation") as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            ids, mask = _left_pad([groups[g][0] for g in chunk], pad_id, device)
            position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
            res = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                        **_last_logits_kwargs(model, ids.shape[1]))
            first = res.logits[:, -1].float().log_softmax(-1)  # (prefixes, vocab): the first continuation token
            cache, n_pre = _output_cache(res), mask.sum(-1)
            rows = [(r, g, j) for r, g in enumerate(chunk) for j, c in enumerate(groups[g][1]) if c]
            heads = torch.tensor([[r, groups[g][1][j][0]] for r, g, j in rows], device=device)
            head_lp = first[heads[:, 0], heads[:, 1]].double().cpu().numpy()
            for (r, g, j), lp in zip(rows, head_lp):
                out[g][j] = np.array([lp])
            rest = sorted((x for x in rows if len(groups[x[1]][1][x[2]]) > 1),  # the first token is all they have
                          key=lambda x: len(groups[x[1]][1][x[2]]))
            bar.update(len(rows) - len(rest))
            for b0 in range(0, len(rest), batch_size):
                batch = rest[b0:b0 + batch_size]
                conts = [groups[g][1][j] for _, g, j in batch]
                inp, cmask = _right_pad([c[:-1] for c in conts], pad_id)
                tgt, _ = _right_pad([c[1:] for c in conts], pad_id)
                inp, cmask, tgt = inp.to(device), cmask.to(device), tgt.to(device)
                index = torch.tensor([r for r, _, _ in batch], device=device)
                kv = _select_cache(_fork_cache(cache), index)
                attn = torch.cat([mask[index], cmask], dim=1)
                pos = n_pre[index, None] + torch.arange(inp.shape[1], device=device)
                logits = model(input_ids=inp, attention_mask=attn, position_ids=pos, use_cache=True,
                               **{cache_kw: kv}).logits
                keep = cmask.bool()
                logp = logits[keep].float().log_softmax(-1).gather(-1, tgt[keep][:, None]).squeeze(-1)
                logp = logp.double().cpu().numpy()
                k = 0
                for (_, g, j), c in zip(batch, conts):
                    out[g][j] = np.concatenate([out[g][j], logp[k:k + len(c) - 1]])
                    k += len(c) - 1
                bar.update(len(batch))
    return out


def _scores(token_logprobs: list[np.ndarray]) -> list[ContinuationScore]:
    return [ContinuationScore(float(lp.sum()), len(lp)) for lp in token_logprobs]


@torch.inference_mode()
def grouped_continuation_logprobs(model, tokenizer, groups: list[tuple[str, list[str]]], batch_size: int = 32,
                                  progress: bool = False, return_token_logprobs: bool = False):
    """Score many continuations of each prefix on its KV cache: one prefix forward per distinct prefix.

    groups: (prefix, continuations) pairs. Returns, per group, a ContinuationScore per continuation
    (log p(continuation | prefix) summed over its tokens, nats; an empty continuation scores (0.0, 0));
    with return_token_logprobs, also per group the per-token log-probs of each continuation
    (float64 arrays, n_tokens long), as (scores, token_logprobs). Tokenisation as continuation_logprobs
    (`_encode_pairs`: exact boundary, empty prefix -> [bos or eos]). batch_size bounds the prefixes per
    prefix forward and the continuations per continuation forward.
    """
    prefixes = _encode_prefixes(tokenizer, [p for p, _ in groups])
    conts = _encode_continuations(tokenizer, [c for _, cs in groups for c in cs])
    enc, k = [], 0
    for pre, (_, cs) in zip(prefixes, groups):
        enc.append((pre, conts[k:k + len(cs)]))
        k += len(cs)
    token_lp = _shared_prefix_token_logprobs(model, enc, pad_id=pad_id_of(tokenizer), batch_size=batch_size,
                                             progress=progress)
    scores = [_scores(lps) for lps in token_lp]
    return (scores, token_lp) if return_token_logprobs else scores


def prefix_logprobs(model, tokenizer, prefix: str, continuations: list[str], batch_size: int = 32,
                    progress: bool = False, return_token_logprobs: bool = False):
    """log p(continuation | prefix) per continuation, all on one forward of the prefix (its KV cache).

    Returns a ContinuationScore per continuation; with return_token_logprobs, (scores, per-token
    log-probs per continuation). See grouped_continuation_logprobs.
    """
    out = grouped_continuation_logprobs(model, tokenizer, [(prefix, list(continuations))], batch_size=batch_size,
                                        progress=progress, return_token_logprobs=return_token_logprobs)
    return (out[0][0], out[1][0]) if return_token_logprobs else out[0]


def _score_pairs(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int,
                 progress: bool = False) -> list[ContinuationScore]:
    """Pairs whose prefix ids repeat go the shared-prefix path (when the model takes a KV cache), the rest
    one forward of prefix + continuation each."""
    results = [ContinuationScore(0.0, 0)] * len(pairs)
    by_prefix: dict[tuple[int, ...], list[int]] = {}
    for i, (pre, cont) in enumerate(pairs):
        if cont:
            by_prefix.setdefault(tuple(pre), []).append(i)
    shared = [idx for idx in by_prefix.values() if len(idx) > 1] if _takes_cache(model) else []
    if shared:
        token_lp = _shared_prefix_token_logprobs(model, [(pairs[idx[0]][0], [pairs[i][1] for i in idx])
                                                         for idx in shared],
                                                 pad_id=pad_id, batch_size=batch_size, progress=progress)
        for idx, lps in zip(shared, token_lp):
            for i, s in zip(idx, _scores(lps)):
                results[i] = s
    in_shared = {i for idx in shared for i in idx}
    single = [i for idx in by_prefix.values() for i in idx if i not in in_shared]
    for i, s in zip(single, _full_forward_scores(model, [pairs[i] for i in single], pad_id, batch_size, progress)):
        results[i] = s
    return results


@torch.inference_mode()
def token_pair_logprobs(model, pairs: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int = 32,
                        progress: bool = False) -> list[ContinuationScore]:
    """continuation_logprobs for pairs already tokenized: (prefix ids, continuation ids) per pair."""
    return _score_pairs(model, pairs, pad_id, batch_size, progress)


@torch.inference_mode()
def continuation_logprobs(model, tokenizer, prefixes: list[str], continuations: list[str], batch_size: int = 32,
                          progress: bool = False) -> list[ContinuationScore]:
    """log p(continuation | prefix) summed over continuation tokens, with the token count, per pair.

    Pairs with the same prefix ids share one prefix forward (grouped_continuation_logprobs' path).
    """
    if len(prefixes) != len(continuations):
        raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
    pairs = _encode_pairs(tokenizer, prefixes, continuations)
    return _score_pairs(model, pairs, pad_id_of(tokenizer), batch_size, progress)


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
