"""Batched sampling with our own decoding loop (not HF `generate`).

    texts = sample(model, tokenizer, ["Once upon a time"], max_new_tokens=50, top_p=0.9, seed=1)

    # lower level: one row per sample, each with its own prompt ids, random stream and new-token budget
    for idx, new in iter_sample_rows(model, [Row(ids, (seed, 0), 5), Row(ids, (seed, 1), 3)], pad_id=0, eos_id=0):
        ...

Rows are sorted by prompt (length first) into left-padded batches; position_ids = cumsum(mask) - 1, so
padding does not shift positions (learned position embeddings and RoPE alike), and the KV cache is
reused between steps. Rows of a batch with the same prompt share it: the distinct prompts run forward
once and their KV cache (and last logits) are gathered out to the rows. A row stops at EOS or at its own
budget and leaves the batch (its cache rows are dropped); the batch stops when every row has.

Randomness: each row draws from its own stream of uniforms, seeded from (seed, index) (`sample`: prompt i
gets (seed, first_index + i)), and a token is sampled by inverting the CDF of the filtered distribution.
A row with budget b uses the stream's b uniforms exactly as a call with max_new_tokens=b would. So outputs
do not depend on batch_size, on which other rows share a batch or a prefix, or on their budgets (up to
float round-off in the logits).

Order of operations (as in HF): logits / temperature -> top-k -> top-p -> softmax.
`sampling_probs` gives the exact distribution tokens are drawn from.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None,
                  typical_p: float | None = None) -> torch.Tensor:
    """Set logits outside the kept set to -inf: top-k first, then top-p (nucleus), then typical, as HF does.

    top_k: keep the k largest (all tokens tied with the k-th largest are kept, as in HF).
    top_p: keep the smallest set of most likely tokens whose probability sums to >= top_p (at
    least one); among tied tokens the lower id counts as more likely.
    typical_p: locally typical sampling (Meister et al. 2022; HF's TypicalLogitsWarper): order the tokens by
    |-log p - H| (H the entropy of the distribution so far filtered), keep the smallest such prefix whose
    probability sums to >= typical_p (at least one token; ties: the lower id first).
    """
    if top_k is not None and top_k > 0 and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = sorted_logits.float().softmax(-1)
        mass_before = probs.cumsum(-1) - probs  # probability of strictly more likely tokens
        drop_sorted = mass_before >= top_p
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if typical_p is not None and typical_p < 1.0:
        logp = logits.float().log_softmax(-1)
        entropy = -(logp.exp() * logp).nan_to_num().sum(-1, keepdim=True)
        shifted = (-logp - entropy).abs()  # +inf for tokens already dropped
        _, order = torch.sort(shifted, dim=-1, stable=True)
        mass_before = logp.exp().gather(-1, order).cumsum(-1) - logp.exp().gather(-1, order)
        drop_sorted = mass_before >= typical_p
        drop_sorted[..., 0] = False
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, typical_p: float | None = None) -> torch.Tensor:
    """The float32 next-token distribution `sample` draws from, given raw logits (..., vocab)."""
    return filter_logits(logits.float() / temperature, top_k, top_p, typical_p).softmax(-1)


def _draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Invert the CDF of each row of `probs` at u in [0, 1); never returns a zero-probability token."""
    cdf = probs.double().cumsum(-1)
    target = u.double().unsqueeze(-1) * cdf[..., -1:]
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


def _sample_tokens(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_k: int | None,
                   top_p: float | None, typical_p: float | None = None) -> torch.Tensor:
    """_draw(sampling_probs(logits, ...), u), bit for bit, with the CDF built over the kept tokens only.

    With top-k alone, the kept set is known from the top-k; the CDF over the kept tokens in id order is
    the full CDF at those ids (the tokens left out have probability exactly 0, and a cumsum adds them
    exactly), so the same token comes out, without a float64 copy and cumsum over the whole vocabulary.
    """
    vocab = logits.shape[-1]
    if top_p is not None and top_p < 1.0 or typical_p is not None and typical_p < 1.0 or top_k is None or \
            not 0 < top_k < vocab - 1:
        return _draw(sampling_probs(logits, temperature, top_k, top_p, typical_p), u)
    scaled = logits.float() / temperature
    values, idx = torch.topk(scaled, top_k + 1, dim=-1)  # the (k+1)-th tells whether any row has a tie
    kth = values[..., top_k - 1:top_k]
    probs = scaled.masked_fill(scaled < kth, float("-inf")).softmax(-1)  # = sampling_probs(logits, temp, top_k)
    if bool((values[..., top_k:] >= kth).any()):  # ties with the k-th: a superset of the kept (extras: p = 0)
        idx = torch.topk(scaled, int((scaled >= kth).sum(-1).max()), dim=-1).indices
    else:
        idx = idx[..., :top_k]
    idx = idx.sort(-1).values
    return idx.gather(-1, _draw(probs.gather(-1, idx), u).unsqueeze(-1)).squeeze(-1)


def _row_uniforms(seed: int, index: int, n: int) -> torch.Tensor:
    """n uniforms in [0, 1) for prompt `index`; independent of batching."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint64)
    gen = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    return torch.rand(n, generator=gen)


def _cache_kwarg(model) -> str:
    """transformers 5.x calls the KV cache `cache`; 4.x called it `past_key_values`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _last_logits_kwargs(model, seq_len: int = 1) -> dict:
    """Ask for the last position's logits only, where the model supports it (saves a (B, L, V) tensor).

    For a forward of seq_len > 1 positions the position goes as an index tensor, not as transformers'
    `logits_to_keep=1`: that int makes the model slice the hidden states to a non-contiguous (B, 1, d) view, which
    torch's CPU linear then multiplies by the unembedding as a batched matmul over a B-times-expanded weight
    (SmolLM2, 64 x 60 tokens: 0.72 of a 1.2 s forward from its last block). The index copies the rows, so the
    unembedding is one (B, d) x (d, V) product; the logits agree to float rounding (SmolLM2 <= 5e-5; tiny GPT-2s
    bitwise in the cases tried)."""
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return {}
    if seq_len <= 1:
        return {"logits_to_keep": 1}
    return {"logits_to_keep": torch.tensor([seq_len - 1], device=model.device)}


def _output_cache(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


def _left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids.to(device), mask.to(device)


@dataclass(frozen=True)
class Row:
    """One sample to draw: prompt token ids, its random stream (seed, index) (None: greedy) and its budget."""
    prompt: tuple[int, ...]
    stream: tuple[int, int] | None
    budget: int


def _select_cache(cache, index: torch.Tensor):
    """The cache with batch rows `index` (gathered: an index may repeat, which expands a shared prefix)."""
    if hasattr(cache, "batch_select_indices"):  # transformers Cache (DynamicCache: GPT-2, GPT-Neo, Llama, ...)
        cache.batch_select_indices(index)
        return cache
    return tuple(tuple(t.index_select(0, index) for t in layer) for layer in cache)  # legacy tuples


def _pack(rows: list[Row], batch_size: int) -> list[list[int]]:
    """Row indices in batches of <= batch_size: sorted by prompt length, then prompt, so equal prompts are adjacent."""
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i].prompt), rows[i].prompt, rows[i].budget, i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _generate_batch(model, rows: list[Row], *, temperature: float, top_k: int | None, top_p: float | None,
                    pad_id: int, eos_id: int | None, share_prefix: bool, typical_p: float | None = None
                    ) -> list[list[int]]:
    """Decode one batch of rows (all greedy or all sampled); the new ids per row (ending at EOS if hit)."""
    device = model.device
    n = len(rows)
    if share_prefix:
        distinct: dict[tuple[int, ...], int] = {}
        expand = torch.tensor([distinct.setdefault(r.prompt, len(distinct)) for r in rows], device=device)
        prompts = list(distinct)
    else:
        expand, prompts = None, [r.prompt for r in rows]
    ids, mask = _left_pad(prompts, pad_id, device)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                **_last_logits_kwargs(model, ids.shape[1]))
    logits, cache = out.logits[:, -1], _output_cache(out)
    if expand is not None and not torch.equal(expand, torch.arange(n, device=device)):  # prompt -> its rows
        cache = _select_cache(cache, expand)
        logits, mask, position_ids = logits[expand], mask[expand], position_ids[expand]
    position_ids = position_ids[:, -1:]

    budgets = torch.tensor([r.budget for r in rows], device=device)
    width = int(budgets.max())
    greedy = rows[0].stream is None
    uniforms = None if greedy else torch.stack([
        torch.nn.functional.pad(_row_uniforms(*r.stream, r.budget), (0, width - r.budget)) for r in rows]).to(device)
    alive = torch.arange(n, device=device)  # batch position -> row
    new = torch.full((n, width), -1, dtype=torch.long)
    cache_kw = _cache_kwarg(model)
    for t in range(width):
        if uniforms is None:
            tok = logits.argmax(-1)
        else:
            tok = _sample_tokens(logits, uniforms[:, t], temperature, top_k, top_p, typical_p)
        new[alive.cpu(), t] = tok.cpu()
        done = budgets <= t + 1
        if eos_id is not None:
            done |= tok == eos_id
        if bool(done.all()):
            break
        if bool(done.any()):  # finished rows leave the batch
            keep = (~done).nonzero().squeeze(-1)
            cache = _select_cache(cache, keep)
            tok, mask, position_ids, budgets, alive = tok[keep], mask[keep], position_ids[keep], budgets[keep], \
                alive[keep]
            if uniforms is not None:
                uniforms = uniforms[keep]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position_ids = position_ids + 1
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=position_ids, use_cache=True,
                    **{cache_kw: cache})
        logits, cache = out.logits[:, -1], _output_cache(out)
    return [[t for t in row if t >= 0] for row in new.tolist()]


def _check_rows(model, rows: list[Row]) -> None:
    max_pos = getattr(model.config, "max_position_embeddings", None)
    for r in rows:
        if r.budget < 1:
            raise ValueError(f"a row's budget must be >= 1, got {r.budget}")
        if not r.prompt:
            raise ValueError("a row's prompt must have at least one token")
        if max_pos is not None and len(r.prompt) + r.budget > max_pos:
            raise ValueError(f"prompt + max_new_tokens = {len(r.prompt) + r.budget} tokens exceeds the model's "
                             f"{max_pos} positions")


@torch.inference_mode()
def iter_sample_rows(model, rows: list[Row], *, pad_id: int, eos_id: int | None, temperature: float = 1.0,
                     top_k: int | None = None, top_p: float | None = None, batch_size: int = 32,
                     share_prefix: bool = True, typical_p: float | None = None
                     ) -> Iterator[tuple[list[int], list[list[int]]]]:
    """Sample `rows` in batches; yields (row indices, their new ids) per batch as it finishes.

    A row's new ids end with eos_id when it hit EOS (eos_id None: never stop early), else there are
    row.budget of them. Greedy rows (stream None) and sampled rows go in separate batches.
    share_prefix=False runs every row's prompt forward itself (the reference for the shared path).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rows = [r if isinstance(r.prompt, tuple) else Row(tuple(r.prompt), r.stream, r.budget) for r in rows]
    _check_rows(model, rows)
    if temperature == 0:
        rows = [Row(r.prompt, None, r.budget) for r in rows]
    for greedy in (True, False):
        part = [i for i, r in enumerate(rows) if (r.stream is None) == greedy]
        for batch in _pack([rows[i] for i in part], batch_size):
            batch = [part[j] for j in batch]
            new = _generate_batch(model, [rows[i] for i in batch], temperature=temperature or 1.0, top_k=top_k,
                                  top_p=top_p, pad_id=pad_id, eos_id=eos_id, share_prefix=share_prefix,
                                  typical_p=typical_p)
            yield batch, new


def sample_rows(model, rows: list[Row], *, progress: bool = False, desc: str = "sampling",
                **kwargs) -> list[list[int]]:
    """New ids per row, in row order (see `iter_sample_rows` for the arguments)."""
    results: list[list[int]] = [[] for _ in rows]
    with tqdm(total=len(rows), desc=desc, disable=not progress, unit="row") as bar:
        for batch, new in iter_sample_rows(model, rows, **kwargs):
            for i, ids in zip(batch, new):
                results[i] = ids
            bar.update(len(batch))
    return results


def prompt_ids(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt (tokenizer's default special tokens); an empty prompt becomes [bos or eos]."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    rows = []
    for ids in tokenizer(list(prompts))["input_ids"] if prompts else []:
        if not ids:
            if start is None:
                raise ValueError("empty prompt and the tokenizer has neither a bos nor an eos token")
            ids = [start]
        rows.append(list(ids))
    return rows


_prompt_ids = prompt_ids  # the old private name


def pad_id_of(tokenizer) -> int:
    return next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)


def sample_ids(model, tokenizer, prompts: list[str], *, max_new_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, greedy: bool = False, batch_size: int = 32,
               seed: int = 0, stop_at_eos: bool = True, progress: bool = True,
               desc: str = "sampling", first_index: int = 0, share_prefix: bool = True) -> list[list[int]]:
    """New token ids per prompt, in prompt order. A row that hits EOS ends with the EOS id.

    temperature == 0 means greedy. The model is used as is: call model.eval() first.
    Prompt i draws from the random stream (seed, first_index + i): a long run split into chunks
    with consecutive first_index values gives the same samples as one call.
    """
    greedy = greedy or temperature == 0
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not prompts:
        return []
    ids = prompt_ids(tokenizer, prompts)
    rows = [Row(tuple(p), None if greedy else (seed, first_index + i), max_new_tokens) for i, p in enumerate(ids)]
    if max_new_tokens < 1:
        max_pos = getattr(model.config, "max_position_embeddings", None)
        if max_pos is not None and max(len(p) for p in ids) > max_pos:
            raise ValueError(f"a prompt exceeds the model's {max_pos} positions")
        return [[] for _ in rows]
    return sample_rows(model, rows, progress=progress, desc=desc, pad_id=pad_id_of(tokenizer),
                       eos_id=tokenizer.eos_token_id if stop_at_eos else None,
                       temperature=1.0 if greedy else temperature, top_k=top_k, top_p=top_p, batch_size=batch_size,
                       share_prefix=share_prefix)


def decode_new(tokenizer, prompt_ids: list[int], new_ids: list[int], stop_at_eos: bool = True) -> tuple[str, bool]:
    """(continuation text without the final EOS, whether the row ended at EOS)."""
    done = bool(stop_at_eos and new_ids and new_ids[-1] == tokenizer.eos_token_id)
    return _decode_continuation(tokenizer, list(prompt_ids), new_ids[:-1] if done else new_ids), done


def _decode_continuation(tokenizer, prompt_ids: list[int], new_ids: list[int]) -> str:
    """Decode new_ids in the context of the prompt (keeps e.g. SentencePiece's leading space)."""
    prefix = tokenizer.decode(prompt_ids)
    full = tokenizer.decode(prompt_ids + new_ids)
    return full[len(prefix):] if full.startswith(prefix) else tokenizer.decode(new_ids)


def sample(model, tokenizer, prompts: list[str], *, max_new_tokens: int, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, greedy: bool = False, batch_size: int = 32,
           seed: int = 0, stop_at_eos: bool = True, progress: bool = True, desc: str = "sampling",
           return_finished: bool = False, first_index: int = 0) -> list[str] | tuple[list[str], list[bool]]:
    """Decoded continuations (without the prompt, without the final EOS), in prompt order.

    With return_finished, also a flag per prompt: True when the row ended at EOS, False when it was
    cut by max_new_tokens (so a caller can avoid grading a sentence the length limit cut off).
    """
    new = sample_ids(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_k=top_k, top_p=top_p, greedy=greedy, batch_size=batch_size, seed=seed,
                     stop_at_eos=stop_at_eos, progress=progress, desc=desc, first_index=first_index)
    decoded = [decode_new(tokenizer, p, ids, stop_at_eos) for p, ids in zip(prompt_ids(tokenizer, prompts), new)]
    texts, finished = [t for t, _ in decoded], [d for _, d in decoded]
    return (texts, finished) if return_finished else texts
