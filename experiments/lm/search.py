"""Contrastive search (Su et al. 2022, SimCTG) and beam search (as HF `generate`) on our decoding engine.

    new = contrastive_search(model, prompts_ids, k=4, alpha=0.6, max_new_tokens=64, pad_id=0, eos_id=0)
    best = beam_search(model, prompts_ids, num_beams=4, max_new_tokens=64, pad_id=0, eos_id=0)

Both take token ids (see `experiments.lm.sample.prompt_ids`) and return the new ids per prompt, in prompt
order; a row that ended at EOS ends with eos_id (as `sample_ids`). Prompts are sorted by length into
left-padded batches (position_ids = cumsum(mask) - 1, as in `lm.sample`) and decoded with a KV cache;
finished rows leave the batch.

Contrastive search, as SimCTG's `ContrastiveDecodingOneStepFast` / `ranking_fast` define it:
  1. candidates V(k): the k tokens with the highest raw logits (ties: the lower id first); p = softmax(raw logits)
     in float32 (no temperature, no logits processors);
  2. ONE batched forward of the B*k candidates on the k-times-expanded cache, with output_hidden_states; h_v is
     the candidate's `hidden_states[-1]`, the last layer after the final norm (what the LM head reads);
  3. score(v) = (1 - alpha) * p(v) - alpha * max_j cos(h_v, h_j), the max over every earlier position j of the
     row (prompt and generated tokens; left-padding positions excluded);
  4. the argmax (ties: the lowest candidate rank) is emitted; its cache row, hidden state and next-token logits
     (from the same candidate forward) are kept, so each step costs one forward of k tokens per row.
alpha = 0 or k = 1 is greedy decoding. A row stops at EOS (SimCTG always decodes `decoding_len` tokens and cuts
at the first EOS afterwards: the same tokens). `contrastive_search_reference` is the naive version (one full
forward from scratch per candidate, one row at a time) the tests compare with.

Beam search reproduces HF `generate(num_beams=N, do_sample=False, length_penalty=..., early_stopping=...)`
(transformers 5, `GenerationMixin._beam_search`) operation for operation, per prompt: 2N candidates per step
from the N running beams' summed float32 log-softmax; finished hypotheses only from the first N of them, scored
sum_logprob / generated_len ** length_penalty (the EOS counts in the length); the N best finished are kept;
a prompt stops when (early_stopping=True) N hypotheses are finished, or (False / "never") when the best running
beam cannot beat the worst finished one (HF's heuristic: False divides the running score by the current length,
"never" by max_new_tokens when length_penalty > 0), or at max_new_tokens. The result per prompt is the best
finished hypothesis. `beam_search_reference` enumerates every continuation with full forwards (the exact
argmax that beam search with enough beams must find).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from experiments.lm.sample import (
    _cache_kwarg,
    _last_logits_kwargs,
    _left_pad,
    _output_cache,
    _select_cache,
)

__all__ = ["beam_search", "beam_search_reference", "contrastive_search", "contrastive_search_reference",
           "top_candidates"]

NEG = -1.0e9  # HF's "minus infinity" for beam scores (kept identical so that ties and sums round as HF's do)


def _check(model, prompts_ids: list[list[int]], max_new_tokens: int, batch_size: int) -> None:
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    max_pos = getattr(model.config, "max_position_embeddings", None)
    for p in prompts_ids:
        if not p:
            raise ValueError("a prompt must have at least one token")
        if max_pos is not None and len(p) + max_new_tokens > max_pos:
            raise ValueError(f"prompt + max_new_tokens = {len(p) + max_new_tokens} tokens exceeds the model's "
                             f"{max_pos} positions")


def _batches(prompts_ids: list[list[int]], batch_size: int) -> list[list[int]]:
    """Prompt indices in batches of <= batch_size, sorted by length (then content) so padding stays small."""
    order = sorted(range(len(prompts_ids)), key=lambda i: (len(prompts_ids[i]), list(prompts_ids[i]), i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _prefill(model, prompts: list[list[int]], pad_id: int, *, hidden: bool):
    """Left-padded prompt forward: (last logits float32, cache, mask, last position ids, last-layer states or None)."""
    ids, mask = _left_pad(prompts, pad_id, model.device)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                output_hidden_states=hidden, **_last_logits_kwargs(model, ids.shape[1]))
    states = out.hidden_states[-1] if hidden else None
    return out.logits[:, -1].float(), _output_cache(out), mask, position_ids[:, -1:], states


# ---- contrastive search ----------------------------------------------------------------------------------


def top_candidates(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Ids of the k highest logits per row, highest first; tied logits in increasing id order (deterministic).

    Equal to torch.sort(logits, descending=True, stable=True).indices[..., :k]; uses topk unless a row has a
    tie among its k+1 largest values (rare: then the full stable sort).
    """
    k = min(k, logits.shape[-1])
    values, idx = torch.topk(logits, min(k + 1, logits.shape[-1]), dim=-1)
    if bool((values[..., 1:] == values[..., :-1]).any()):
        return torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]
    return idx[..., :k]


def _contrastive_batch(model, prompts: list[list[int]], *, k: int, alpha: float, max_new_tokens: int, pad_id: int,
                       eos_id: int | None) -> list[list[int]]:
    device = model.device
    logits, cache, mask, position_ids, states = _prefill(model, prompts, pad_id, hidden=True)
    n, width = mask.shape
    # unit-norm last-layer states of every position so far (float32), and which positions are real tokens
    context = torch.zeros((n, width + max_new_tokens, states.shape[-1]), dtype=torch.float32, device=device)
    context[:, :width] = F.normalize(states.float(), dim=-1)
    valid = torch.zeros((n, width + max_new_tokens), dtype=torch.bool, device=device)
    valid[:, :width] = mask.bool()
    alive = torch.arange(n, device=device)  # batch position -> row
    new = torch.full((n, max_new_tokens), -1, dtype=torch.long)
    cache_kw = _cache_kwarg(model)
    for t in range(max_new_tokens):
        b = len(alive)
        cand = top_candidates(logits, k)  # (b, kk)
        kk = cand.shape[-1]
        probs = logits.softmax(-1).gather(-1, cand)
        cache = _select_cache(cache, torch.arange(b, device=device).repeat_interleave(kk))
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position_ids = position_ids + 1
        out = model(input_ids=cand.reshape(-1, 1), attention_mask=mask.repeat_interleave(kk, 0),
                    position_ids=position_ids.repeat_interleave(kk, 0), use_cache=True, output_hidden_states=True,
                    **{cache_kw: cache})
        cache = _output_cache(out)
        h = F.normalize(out.hidden_states[-1][:, -1].float(), dim=-1).view(b, kk, -1)
        s = width + t
        cos = torch.bmm(h, context[:, :s].transpose(1, 2)).masked_fill(~valid[:, None, :s], float("-inf"))
        score = (1.0 - alpha) * probs - alpha * cos.max(-1).values
        pick = score.argmax(-1)  # the first maximum: the lowest candidate rank
        rows = torch.arange(b, device=device)
        tok = cand[rows, pick]
        new[alive.cpu(), t] = tok.cpu()
        context[:, s] = h[rows, pick]
        valid[:, s] = True
        chosen = rows * kk + pick
        done = torch.zeros_like(tok, dtype=torch.bool) if eos_id is None else tok == eos_id
        if t == max_new_tokens - 1 or bool(done.all()):
            break
        if bool(done.any()):  # finished rows leave the batch
            keep = (~done).nonzero().squeeze(-1)
            chosen, alive = chosen[keep], alive[keep]
            mask, position_ids, context, valid = mask[keep], position_ids[keep], context[keep], valid[keep]
        cache = _select_cache(cache, chosen)
        logits = out.logits[chosen, -1].float()
    return [[t for t in row if t >= 0] for row in new.tolist()]


@torch.inference_mode()
def contrastive_search(model, prompts_ids: list[list[int]], *, k: int, alpha: float, max_new_tokens: int,
                       pad_id: int, eos_id: int | None, batch_size: int = 32) -> list[list[int]]:
    """Contrastive search (module docstring): new ids per prompt, in prompt order; eos_id None: never stop early.

    batch_size counts prompts; each step forwards batch_size * k candidate tokens. The model is used as is
    (call model.eval() first).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    _check(model, prompts_ids, max_new_tokens, batch_size)
    results: list[list[int]] = [[] for _ in prompts_ids]
    if max_new_tokens == 0:
        return results
    for batch in _batches(prompts_ids, batch_size):
        new = _contrastive_batch(model, [list(prompts_ids[i]) for i in batch], k=k, alpha=alpha,
                                 max_new_tokens=max_new_tokens, pad_id=pad_id, eos_id=eos_id)
        for i, ids in zip(batch, new):
            results[i] = ids
    return results


@torch.inference_mode()
def contrastive_search_reference(model, prompts_ids: list[list[int]], *, k: int, alpha: float, max_new_tokens: int,
                                 eos_id: int | None) -> list[list[int]]:
    """The naive version: one prompt at a time, no cache, no padding; every candidate of every step gets a full
    forward of prompt + generated + candidate, whose hidden states give both the candidate's state and all
    earlier ones. The chosen candidate's forward gives the next step's logits."""
    results = []
    last = _last_logits_kwargs(model)  # logits of the last position only (the reference needs no others)
    for prompt in prompts_ids:
        ids = list(prompt)
        logits = model(input_ids=torch.tensor([ids], device=model.device), **last).logits[0, -1].float()
        new: list[int] = []
        for _ in range(max_new_tokens):
            cand = torch.sort(logits, descending=True, stable=True).indices[:k].tolist()
            probs = logits.softmax(-1)
            best = None
            for v in cand:
                out = model(input_ids=torch.tensor([ids + [v]], device=model.device), output_hidden_states=True,
                            **last)
                h = F.normalize(out.hidden_states[-1][0].float(), dim=-1)
                penalty = (h[:-1] @ h[-1]).max()
                score = float((1.0 - alpha) * probs[v] - alpha * penalty)
                if best is None or score > best[0]:
                    best = (score, v, out.logits[0, -1].float())
            _, v, logits = best
            ids.append(v)
            new.append(v)
            if v == eos_id:
                break
        results.append(new)
    return results


# ---- beam search -----------------------------------------------------------------------------------------


def _beam_batch(model, prompts: list[list[int]], *, num_beams: int, max_new_tokens: int, pad_id: int,
                eos_id: int | None, length_penalty: float, early_stopping: bool | str
                ) -> list[tuple[list[int], float]]:
    """(best finished hypothesis's new ids, its length-normalised score) per prompt; HF's arithmetic throughout."""
    device = model.device
    nb, steps = num_beams, max_new_tokens
    logits, cache, mask, position_ids, _ = _prefill(model, prompts, pad_id, hidden=False)
    p = len(prompts)
    expand = torch.arange(p, device=device).repeat_interleave(nb)
    cache = _select_cache(cache, expand)
    logits, mask, position_ids = logits[expand], mask[expand], position_ids[expand]
    vocab = logits.shape[-1]
    run_tok = torch.full((p, nb, steps), -1, dtype=torch.long, device=device)
    run_score = torch.zeros((p, nb), dtype=torch.float32, device=device)
    run_score[:, 1:] = NEG  # only beam 0 is live at the start (the others are its copies)
    fin_tok = run_tok.clone()
    fin_score = torch.full((p, nb), NEG, dtype=torch.float32, device=device)
    fin_len = torch.zeros((p, nb), dtype=torch.long, device=device)
    fin_done = torch.zeros((p, nb), dtype=torch.bool, device=device)
    unsat = torch.ones((p, 1), dtype=torch.bool, device=device)  # HF: is_early_stop_heuristic_unsatisfied
    top_beams = torch.arange(2 * nb, device=device) < nb
    alive = torch.arange(p, device=device)  # batch position -> prompt
    out_tok = torch.full((p, steps), -1, dtype=torch.long)
    out_len = torch.zeros(p, dtype=torch.long)
    out_score = torch.zeros(p, dtype=torch.float32)
    cache_kw = _cache_kwarg(model)
    for t in range(steps):
        b = len(alive)
        acc = (logits.log_softmax(-1).view(b, nb, vocab) + run_score[:, :, None]).reshape(b, nb * vocab)
        top_lp, top_idx = torch.topk(acc, 2 * nb)
        src = top_idx // vocab
        tok = top_idx % vocab
        cand_tok = run_tok.gather(1, src[:, :, None].expand(-1, -1, steps)).clone()
        cand_tok[:, :, t] = tok
        hits = torch.full_like(tok, t == steps - 1, dtype=torch.bool)
        if eos_id is not None:
            hits |= tok == eos_id
        # running beams for the next step: the best N candidates that did not finish
        run_lp = top_lp + hits.to(torch.float32) * NEG
        nxt = torch.topk(run_lp, nb)[1]
        run_tok = cand_tok.gather(1, nxt[:, :, None].expand(-1, -1, steps))
        run_score = run_lp.gather(1, nxt)
        run_src = src.gather(1, nxt)
        # finished hypotheses: among the first N candidates only (a live prompt is never blocked otherwise)
        did = hits & top_beams[None, :]
        cand_score = top_lp / ((t + 1) ** length_penalty)
        cand_score = cand_score + (~did) * NEG
        merged = torch.cat([fin_score, cand_score], dim=1)
        keep = torch.topk(merged, nb)[1]
        fin_tok = torch.cat([fin_tok, cand_tok], dim=1).gather(1, keep[:, :, None].expand(-1, -1, steps))
        fin_score = merged.gather(1, keep)
        fin_len = torch.cat([fin_len, torch.full_like(tok, t + 1)], dim=1).gather(1, keep)
        fin_done = torch.cat([fin_done, did], dim=1).gather(1, keep)
        # HF's stopping heuristic
        hyp_len = steps if early_stopping == "never" and length_penalty > 0.0 else t + 1
        best_running = run_score[:, :1] / (hyp_len ** length_penalty)
        worst_finished = torch.where(fin_done, torch.min(fin_score, dim=1, keepdim=True)[0], NEG)
        unsat = unsat & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
        done = ~unsat[:, 0]
        if early_stopping is True:
            done |= fin_done.all(-1)
        if t == steps - 1:
            done[:] = True
        if bool(done.any()):
            idx = done.nonzero().squeeze(-1)
            rows = alive[idx].cpu()
            out_tok[rows] = fin_tok[idx, 0].cpu()
            out_len[rows] = fin_len[idx, 0].cpu()
            out_score[rows] = fin_score[idx, 0].cpu()
        if bool(done.all()):
            break
        flat = torch.arange(b, device=device)[:, None] * nb + run_src  # cache rows of the next beams
        if bool(done.any()):  # finished prompts leave the batch
            keep_p = (~done).nonzero().squeeze(-1)
            alive, flat, unsat = alive[keep_p], flat[keep_p], unsat[keep_p]
            run_tok, run_score, fin_tok, fin_score = run_tok[keep_p], run_score[keep_p], fin_tok[keep_p], \
                fin_score[keep_p]
            fin_len, fin_done = fin_len[keep_p], fin_done[keep_p]
            rows_kept = (keep_p[:, None] * nb + torch.arange(nb, device=device)).reshape(-1)
            mask, position_ids = mask[rows_kept], position_ids[rows_kept]
        cache = _select_cache(cache, flat.reshape(-1))
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position_ids = position_ids + 1
        out = model(input_ids=run_tok[:, :, t].reshape(-1, 1), attention_mask=mask, position_ids=position_ids,
                    use_cache=True, **{cache_kw: cache})
        logits, cache = out.logits[:, -1].float(), _output_cache(out)
    return [(row[:n], float(s)) for row, n, s in zip(out_tok.tolist(), out_len.tolist(), out_score.tolist())]


@torch.inference_mode()
def beam_search(model, prompts_ids: list[list[int]], *, num_beams: int, max_new_tokens: int, pad_id: int,
                eos_id: int | None, length_penalty: float = 1.0, early_stopping: bool | str = False,
                batch_size: int = 8, return_scores: bool = False) -> list[list[int]] | tuple[list[list[int]],
                                                                                           list[float]]:
    """Beam search as HF generate does it (module docstring): the best hypothesis's new ids per prompt.

    early_stopping: True, False (HF's default) or "never", with HF's meaning. batch_size counts prompts (each
    step forwards batch_size * num_beams rows). return_scores: also each hypothesis's score (sum of log-probs /
    length ** length_penalty; HF's `sequences_scores`).
    """
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if early_stopping not in (True, False, "never"):
        raise ValueError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    _check(model, prompts_ids, max_new_tokens, batch_size)
    results: list[tuple[list[int], float]] = [([], 0.0) for _ in prompts_ids]
    if max_new_tokens > 0:
        for batch in _batches(prompts_ids, batch_size):
            found = _beam_batch(model, [list(prompts_ids[i]) for i in batch], num_beams=num_beams,
                                max_new_tokens=max_new_tokens, pad_id=pad_id, eos_id=eos_id,
                                length_penalty=length_penalty, early_stopping=early_stopping)
            for i, r in zip(batch, found):
                results[i] = r
    ids = [r[0] for r in results]
    return (ids, [r[1] for r in results]) if return_scores else ids


@torch.inference_mode()
def beam_search_reference(model, prompt: list[int], *, max_new_tokens: int, eos_id: int | None,
                          length_penalty: float = 1.0) -> tuple[list[int], float]:
    """Exhaustive search with full forwards (no cache): the continuation (ending at the first EOS, or after
    max_new_tokens) with the highest sum log p / length ** length_penalty, and that score. Cost: one forward per
    unfinished prefix, vocab ** (max_new_tokens - 1) of them at the last depth; for tiny vocabularies only."""
    best: tuple[list[int], float] | None = None
    frontier: list[tuple[list[int], float]] = [([], 0.0)]
    for t in range(max_new_tokens):
        nxt = []
        for new, score in frontier:
            logp = model(input_ids=torch.tensor([list(prompt) + new], device=model.device)
                         ).logits[0, -1].float().log_softmax(-1).tolist()
            for v, lp in enumerate(logp):
                seq, s = new + [v], score + lp
                if v == eos_id or t == max_new_tokens - 1:
                    final = s / (len(seq) ** length_penalty)
                    if best is None or final > best[1]:
                        best = (seq, final)
                else:
                    nxt.append((seq, s))
        frontier = nxt
    return best if best is not None else ([], 0.0)
