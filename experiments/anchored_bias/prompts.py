"""Items -> token ids the way the paper feeds them: BOS + the one-line prompt (or a chat template), left-padded.

The answer is read at the last position. `plain` is the paper's format (BOS prepended, gold token `" " + letter`);
`chat` wraps the prompt as the user turn of the model's chat template with the assistant turn opened, and the
answer tokens are the bare letters (the assistant's reply starts a line). Every letter must be one token, and
the position of each option letter (`" A"` in `... A: dog B: ...`) is recorded for the attention analysis.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from experiments.anchored_bias.items import LETTERS

FORMATS = ("plain", "chat")


@dataclass
class Encoded:
    input_ids: torch.Tensor        # (n, T) left-padded
    attention_mask: torch.Tensor   # (n, T)
    letter_pos: torch.Tensor       # (n, 5) position of each option letter in the padded row; -1 when absent
    letter_ids: list[int]          # answer token id per letter A..E
    option_end: torch.Tensor | None = None  # (n, 5) position of the last token of each option's text; -1 absent


def bos_id(tokenizer) -> int:
    """The paper prepends GPT-2's BOS (= <|endoftext|>); a tokenizer without a BOS uses its EOS."""
    tid = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if tid is None:
        raise ValueError("tokenizer has neither a BOS nor an EOS token to prepend")
    return int(tid)


def answer_token_ids(tokenizer, fmt: str) -> list[int]:
    """Token id of each answer letter: `" A"` .. `" E"` (plain) or `"A"` .. `"E"` (chat); each must be one token."""
    prefix = " " if fmt == "plain" else ""
    ids = []
    for letter in LETTERS:
        enc = tokenizer.encode(prefix + letter, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"answer {prefix + letter!r} is {len(enc)} tokens in this tokenizer ({enc}); the MCQ "
                             "readout needs one token per letter")
        ids.append(enc[0])
    return ids


def _text(tokenizer, prompt: str, fmt: str) -> tuple[str, bool]:
    """(text to tokenize, whether special tokens are already in it)."""
    if fmt == "plain":
        return prompt, False
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError("format 'chat' needs a tokenizer with a chat template (an instruction-tuned model)")
    msgs = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), True


def encode(tokenizer, prompts: list[str], n_options: list[int], fmt: str) -> Encoded:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {FORMATS}")
    rows, positions, end_positions = [], [], []
    for prompt, k in zip(prompts, n_options):
        text, special = _text(tokenizer, prompt, fmt)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        if fmt == "plain":
            ids, offsets = [bos_id(tokenizer)] + ids, [(0, 0)] + offsets
        start = text.index("Answer Choices:")
        chars = []
        for i in range(k):
            chars.append(text.index(f" {LETTERS[i]}:", start) + 1)  # the letter itself
            start = chars[-1]
        ends = [c - 2 for c in chars[1:]] + [text.index(" Answer:", start) - 1]  # last char of each option

        def token_at(char: int, what: str) -> int:
            tok = next((j for j, (a, b) in enumerate(offsets) if a <= char < b), None)
            if tok is None:
                raise ValueError(f"{what} not found in the tokens of {prompt!r}")
            return tok

        pad_k = [-1] * (len(LETTERS) - k)
        rows.append(ids)
        positions.append([token_at(c, f"option letter {LETTERS[i]}") for i, c in enumerate(chars)] + pad_k)
        end_positions.append([token_at(c, f"end of option {LETTERS[i]}") for i, c in enumerate(ends)] + pad_k)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else bos_id(tokenizer)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    letter_pos = torch.full((len(rows), len(LETTERS)), -1, dtype=torch.long)
    option_end = torch.full((len(rows), len(LETTERS)), -1, dtype=torch.long)
    for i, (r, p, e) in enumerate(zip(rows, positions, end_positions)):
        off = width - len(r)
        input_ids[i, off:] = torch.tensor(r)
        mask[i, off:] = 1
        letter_pos[i] = torch.tensor([q + off if q >= 0 else -1 for q in p])
        option_end[i] = torch.tensor([q + off if q >= 0 else -1 for q in e])
    return Encoded(input_ids, mask, letter_pos, answer_token_ids(tokenizer, fmt), option_end)


def batches(enc: Encoded, batch_size: int):
    """(slice, input_ids, attention_mask) per batch, each re-trimmed to its own longest row (left padding)."""
    n = enc.input_ids.shape[0]
    for s in range(0, n, batch_size):
        ids, mask = enc.input_ids[s:s + batch_size], enc.attention_mask[s:s + batch_size]
        keep = int(mask.sum(1).max())
        cut = ids.shape[1] - keep
        yield slice(s, s + ids.shape[0]), ids[:, cut:], mask[:, cut:], cut
