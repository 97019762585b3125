"""Device choice: 'auto' picks CUDA when present; asking for CUDA without one fails at once."""
from __future__ import annotations

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config compute.device = cuda but no CUDA device is visible (set it to auto or cpu)")
    return torch.device(name)
