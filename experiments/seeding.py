"""Seeding helper: one call seeds every RNG the experiments use."""

from __future__ import annotations

import os
import random

__all__ = ["seed_everything"]


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and all CUDA devices).

    Args:
        seed: the seed (a non-negative int).
        deterministic: additionally ask torch for deterministic kernels
            (``torch.use_deterministic_algorithms(True, warn_only=True)``, so
            ops without a deterministic implementation warn rather than fail),
            disable cuDNN benchmarking, and set ``CUBLAS_WORKSPACE_CONFIG``
            (if unset) as cuBLAS requires; that variable only takes effect if
            CUDA has not been initialised yet, so call this early.

    Returns:
        ``seed``, for convenient logging.
    """
    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    return seed
