"""Batched sampling with our own decoding loop (not HF `generate`).

    texts = sample(model, tokenizer, ["Once upon a time"], max_new_tokens=50, top_p=0.9, seed=1)

Prompts are sorted by length into left-padded batches; position_ids = cumsum(mask) - 1, so padding
does not shift positions (learned position embeddings and RoPE alike), and the KV cache is reused
between steps. A row stops at EOS; the batch stops when every row has.

Randomness: each prompt draws from its own stream of uniforms, seeded from (seed, prompt index),
and a token is sampled by inverting the CDF of the filtered distribution. So outputs do not depend
on batch_size or on which other prompts share a batch (up to float round-off in the logits).

Order of operations (as in HF): logits / temperature -> top-k -> top-p -> softmax.
`sampling_probs` gives the exact distribution tokens are drawn from.
"""
from __future__ import annotations

import inspect

import numpy as np
import torch
from tqdm.auto import tqdm


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set logits outside the kept set to -inf: top-k first, then top-p (nucleus), as HF does.

    top_k: keep the k largest (all tokens tied with the k-th largest are kept, as in HF).
    top_p: keep the smallest set of most likely tokens whose probability sums to >= top_p (at
    least one); among tied tokens the lower id counts as more likely.
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
    return logits


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """The float32 next-token distribution `sample` draws from, given raw logits (..., vocab)."""
    return filter_logits(logits.float() / temperature, top_k, top_p).softmax(-1)


def _draw(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Invert the CDF of each row of `probs` at u in [0, 1); never returns a zero-probability token."""
    cdf = probs.double().cumsum(-1)
    target = u.double().unsqueeze(-1) * cdf[..., -1:]
    idx = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return idx.clamp(max=probs.shape[-1] - 1)


def _row_uniforms(seed: int, index: int, n: int) -> torch.Tensor:
    """n uniforms in [0, 1) for prompt `index`; independent of batching."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint64)
    gen = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
    return torch.rand(n, generator=gen)


def _cache_kwarg(model) -> str:
    """transformers 5.x calls the KV cache `cache`; 4.x called it `past_key_values`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _last_logits_kwargs(model) -> dict:
    """Ask for the last position's logits only, where the model supports it (saves a (B, L, V) tensor)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


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


def _generate_batch(model, rows: list[list[int]], uniforms: torch.Tensor | None, *, max_new_tokens: int,
                    temperature: float, top_k: int | None, top_p: float | None, pad_id: int,
                    eos_id: int | None) -> list[list[int]]:
    """Decode one batch of prompt ids; `uniforms` (batch, max_new_tokens), None for greedy."""
    device = model.device
    ids, mask = _left_pad(rows, pad_id, device)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_kw = _cache_kwarg(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                **_last_logits_kwargs(model))
    cache = _output_cache(out)
    if uniforms is not None:
        uniforms = uniforms.to(device)
    finished = torch.zeros(len(rows), dtype=torch.bool, device=device)
    new = []
    for t in range(max_new_tokens):
        logits = out.logits[:, -1]
        if uniforms is None:
            tok = logits.argmax(-1)
        else:
            tok = _draw(sampling_probs(logits, temperature, top_k, top_p), uniforms[:, t])
        tok = tok.masked_fill(finished, pad_id)
        new.append(torch.where(finished, -1, tok))
        if eos_id is not None:
            finished |= tok == eos_id
        if t == max_new_tokens - 1 or bool(finished.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position_ids = position_ids[:, -1:] + 1
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=position_ids, use_cache=True,
                    **{cache_kw: cache})
        cache = _output_cache(out)
    if not new:
        return [[] for _ in rows]
    new = torch.stack(new, dim=1).tolist()
    return [[t for t in row if t >= 0] for row in new]


def _prompt_ids(tokenizer, prompts: list[str]) -> list[list[int]]:
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


@torch.inference_mode()
def sample_ids(model, tokenizer, prompts: list[str], *, max_new_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, greedy: bool = False, batch_size: int = 32,
               seed: int = 0, stop_at_eos: bool = True, progress: bool = True,
               desc: str = "sampling", first_index: int = 0) -> list[list[int]]:
    """New token ids per prompt, in prompt order. A row that hits EOS ends with the EOS id.

    temperature == 0 means greedy. The model is used as is: call model.eval() first.
    Prompt i draws from the random stream (seed, first_index + i): a long run split into chunks
    with consecutive first_index values gives the same samples as one call.
    """
    greedy = greedy or temperature == 0
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rows = _prompt_ids(tokenizer, prompts)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    longest = max((len(r) for r in rows), default=0) + max_new_tokens
    if max_pos is not None and longest > max_pos:
        raise ValueError(f"prompt + max_new_tokens = {longest} tokens exceeds the model's {max_pos} positions")
    pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
    eos_id = tokenizer.eos_token_id if stop_at_eos else None

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    results: list[list[int]] = [[] for _ in rows]
    for batch in tqdm(batches, desc=desc, disable=not progress):
        uniforms = None if greedy else torch.stack([_row_uniforms(seed, first_index + i, max_new_tokens)
                                                    for i in batch])
        new = _generate_batch(model, [rows[i] for i in batch], uniforms, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_k=top_k, top_p=top_p, pad_id=pad_id, eos_id=eos_id)
        for i, ids in zip(batch, new):
            results[i] = ids
    return results


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
    eos = tokenizer.eos_token_id
    texts, finished = [], []
    for prompt_ids, ids in zip(_prompt_ids(tokenizer, prompts), new):
        done = bool(stop_at_eos and ids and ids[-1] == eos)
        texts.append(_decode_continuation(tokenizer, prompt_ids, ids[:-1] if done else ids))
        finished.append(done)
    return (texts, finished) if return_finished else texts
