"""Token representations per layer, through the architecture adapter only, for the isotropy measure.

    seqs = encode(tokenizer, texts, max_tokens=128, bos=family_bos(get_adapter(model).family))
    for reps in representations(model, seqs, layers="all", batch_size=8):   # one dict per text, in order
        reps["final_norm"]          # (T, d) float32: the last layer after the final norm (HF hidden_states[-1])
        reps["resid_pre.0"]         # embeddings (+ learned positions); ... "resid_pre.{n_layers}" = final residual
    accs = self_similarity_by_layer(model, seqs, layers="all", batch_size=8)  # streams, keeps no (T, d) arrays
    accs["final_norm", False].pooled()

Tokens as the paper's code makes them (``parse_text``): ``convert_tokens_to_ids(tokenize(text))``, BOS prepended
where the family calls for it, *then* cut to max_tokens (a BOS counts towards the limit). BOS per family:
- gpt2, gpt_neo: "none" (the paper adds none; GPT-2's tokenizer adds none either).
- opt: "prepend" (the paper prepends tokenizer.bos_token_id, ``</s>`` = 2, and includes it in the pairs; OPT's
  own tokenizer also adds it when called with special tokens).
- llama: "none" by default. SmolLM2-135M-Instruct's tokenizer adds nothing (``tokenizer(text)`` = the tokens of
  the text; its bos_token ``<|im_start|>`` = 1 is a chat-turn marker, not a document BOS); Llama-2/3 tokenizers
  add their ``<s>`` / ``<|begin_of_text|>``. The paper has no Llama model: ``bos`` is a parameter ("none",
  "prepend", "tokenizer" = whatever ``tokenizer(text)`` adds, or an explicit id).

Batches are right-padded with an attention mask. A causal model's real tokens never attend to the padding that
follows them and the adapter's positions are cumsum(mask) - 1, so a padded batch gives each text the
representations it gets at batch size 1 (to float rounding; tested to 1e-5).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

# FINAL = "final_norm" (ln_final.hook_normalized) is defined in isotropy.py, importable without torch
from experiments.anisotropy.isotropy import FINAL, SelfSimilarity, cosine_sums
from experiments.lm.arch import get_adapter

FINAL_HOOK = "ln_final.hook_normalized"
BOS_POLICIES = ("none", "prepend", "tokenizer")
FAMILY_BOS = {"gpt2": "none", "gpt_neo": "none", "opt": "prepend", "llama": "none"}


def resid_label(layer: int) -> str:
    """Label of the residual stream entering block `layer` (layer = n_layers: the final residual, before the norm)."""
    return f"resid_pre.{layer}"


def family_bos(family: str) -> str:
    """The paper's BOS policy for an adapter family (llama: none, the SmolLM2 tokenizer's own behaviour)."""
    if family not in FAMILY_BOS:
        raise ValueError(f"no BOS policy for family {family!r}; known: {sorted(FAMILY_BOS)}")
    return FAMILY_BOS[family]


def encode(tokenizer, texts: Iterable[str], *, max_tokens: int, bos: str | int = "none") -> list[list[int]]:
    """Token ids per text: the text's tokens, a BOS first when `bos` says so, then cut to max_tokens."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if not (isinstance(bos, int) or bos in BOS_POLICIES):
        raise ValueError(f"bos must be one of {BOS_POLICIES} or a token id, got {bos!r}")
    if bos == "prepend" and tokenizer.bos_token_id is None:
        raise ValueError("bos='prepend' but the tokenizer has no bos_token_id")
    out = []
    for text in texts:
        if bos == "tokenizer":
            ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
        else:
            ids = list(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)))
            if bos == "prepend":
                ids = [tokenizer.bos_token_id] + ids
            elif isinstance(bos, int):
                ids = [bos] + ids
        out.append(ids[:max_tokens])
    return out


def layer_labels(n_layers: int, layers: str | Sequence[str] = "final") -> list[str]:
    """"final" -> [final_norm]; "all" -> resid_pre.0 .. resid_pre.{n_layers}, final_norm; or explicit labels."""
    every = [resid_label(l) for l in range(n_layers + 1)] + [FINAL]
    if layers == "final":
        return [FINAL]
    if layers == "all":
        return every
    labels = [layers] if isinstance(layers, str) else list(layers)
    unknown = [x for x in labels if x not in every]
    if unknown:
        raise ValueError(f"unknown layer labels {unknown}; known: {every}")
    return labels


def _hook_names(labels: list[str]) -> list[str]:
    names = []
    if any(x != FINAL for x in labels):
        names.append("resid_pre")
    if FINAL in labels:
        names.append(FINAL_HOOK)
    return names


def _batches(sequences: Sequence[Sequence[int]], batch_size: int, n_ctx: int | None) -> Iterator[list[int]]:
    """Indices of the batches, in order; checks the sequences."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i, s in enumerate(sequences):
        if len(s) == 0:
            raise ValueError(f"sequence {i} is empty (drop texts with no tokens before this step)")
        if n_ctx is not None and len(s) > n_ctx:
            raise ValueError(f"sequence {i} has {len(s)} tokens, more than the model's context {n_ctx}")
    for start in range(0, len(sequences), batch_size):
        yield list(range(start, min(start + batch_size, len(sequences))))


def _padded(seqs: list[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[b, : len(s)] = 1
    return ids.to(device), mask.to(device)


def _model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _forward(adapter, seqs, labels, pad_id, device) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(label -> (B, T, d) tensor, mask (B, T)) for one right-padded batch."""
    ids, mask = _padded(seqs, pad_id, device)
    with torch.no_grad():
        _, cache = adapter.run_with_cache(ids, mask, names=_hook_names(labels), last_only=True)  # logits unused
    out = {}
    for label in labels:
        out[label] = cache[FINAL_HOOK] if label == FINAL else cache["resid_pre"][int(label.split(".")[1])]
    return out, mask


def _n_ctx(adapter) -> int | None:
    try:
        return adapter.n_ctx
    except (AttributeError, NotImplementedError):
        return None


def representations(
    model,
    sequences: Sequence[Sequence[int]],
    *,
    layers: str | Sequence[str] = "final",
    batch_size: int = 1,
    pad_id: int = 0,
    device: Any = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Per sequence, in order: {layer label: (T, d) float32 array} (see layer_labels for `layers`)."""
    adapter = get_adapter(model)
    labels = layer_labels(adapter.n_layers, layers)
    device = device or _model_device(model)
    for idx in _batches(sequences, batch_size, _n_ctx(adapter)):
        seqs = [sequences[i] for i in idx]
        reps, _ = _forward(adapter, seqs, labels, pad_id, device)
        for b, s in enumerate(seqs):
            yield {label: reps[label][b, : len(s)].float().cpu().numpy() for label in labels}


def self_similarity_by_layer(
    model,
    sequences: Sequence[Sequence[int]],
    *,
    layers: str | Sequence[str] = "final",
    exclude_first: Sequence[bool] = (False,),
    batch_size: int = 1,
    pad_id: int = 0,
    device: Any = None,
    sort_by_length: bool = True,
) -> dict[tuple[str, bool], SelfSimilarity]:
    """{(layer label, exclude_first): SelfSimilarity} over `sequences`, streamed batch by batch.

    With sort_by_length, batches are formed from length-sorted sequences (less padding); the per-sequence sums
    are stored in the input order either way, so bootstrap resamples see the same units.
    """
    adapter = get_adapter(model)
    labels = layer_labels(adapter.n_layers, layers)
    device = device or _model_device(model)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i])) if sort_by_length else \
        list(range(len(sequences)))
    ordered = [sequences[i] for i in order]
    sums = {(lab, ex): np.zeros(len(sequences)) for lab in labels for ex in exclude_first}
    pairs = {key: np.zeros(len(sequences)) for key in sums}
    for idx in _batches(ordered, batch_size, _n_ctx(adapter)):
        reps, mask = _forward(adapter, [ordered[i] for i in idx], labels, pad_id, device)
        where = [order[i] for i in idx]
        for (label, ex) in sums:
            s, p = cosine_sums(reps[label], mask, exclude_first=ex)
            sums[label, ex][where], pairs[label, ex][where] = s, p
    return {key: SelfSimilarity.from_sums(sums[key], pairs[key], exclude_first=key[1]) for key in sums}
