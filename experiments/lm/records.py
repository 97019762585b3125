"""Record-level batches for fine-tuning on whole documents (one record per row, no packing), as DP-SGD needs: the
unit of privacy is a record, so each row's loss must depend on that record alone.

Rows are [EOT] + record tokens (cut to `block` - 1) padded on the right; padding is masked out of the attention
and of the loss (label -100), so a row's loss and gradient equal those of the record alone (right padding keeps
positions 0..len-1, the same as the unpadded row).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def record_batch(records: list[list[int]], *, bos_id: int, pad_id: int, block: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and labels (B, T) for `records` (token id lists); T = the longest row."""
    if block < 2:
        raise ValueError("block must hold the BOS and at least one token")
    rows = [[bos_id] + list(r)[: block - 1] for r in records]
    if any(len(r) < 2 for r in rows):
        raise ValueError("empty record: nothing to predict")
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    labels = ids.masked_fill(mask == 0, IGNORE)
    # one row of positions per record: HF GPT-2 otherwise builds (1, T) positions, and a per-sample gradient
    # hook on the position embedding (opacus) would see one sample instead of B
    positions = torch.arange(width).repeat(len(rows), 1)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels}


def per_record_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy of each row's own tokens (nats), shape (B,), on the model's device."""
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in batch.items()}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits[:, :-1]
    target = batch["labels"][:, 1:]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE, reduction="none")
    n = (target != IGNORE).sum(1)
    return nll.sum(1) / n
