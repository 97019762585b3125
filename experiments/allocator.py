"""glibc malloc settings for the steps: freed memory stays in the process for the next allocation of that size.

With glibc's defaults a training step frees its activations and gradients (MBs each) back to the kernel and maps
them again in the next step: the kernel then zeroes every page on first touch (measured, d128 x 4 GPT-2, batch
4 x 256, 1 thread: ~4,000-6,500 minor page faults and 6-10 ms of system time per 120-135 ms step). These settings
keep that memory in the heap (no faults after the first steps), which saves 3-10% per training step on this CPU
(bench/trainer.py, its process A/B). Allocation never changes arithmetic: every output is bit-identical with and
without it.

    M_MMAP_MAX        0: no block is mmapped, the larger ones too (SmolLM2's (256, 49,152) logits per sampling step,
                      opacus' per-sample gradients: 50-70 MB each, page-faulted afresh every step when mmapped;
                      occupational-bias SmolLM2 sampling 60.1 -> 53.6 s, the PII DP fine-tune 42.7 -> 36.5 s, outputs
                      identical; max RSS +2-4%)
    M_MMAP_THRESHOLD  32 MiB (glibc's maximum): the same where mmap stays allowed; setting it also keeps glibc's
                      dynamic threshold from being switched off by the trim setting (trim alone made it worse)
    M_TRIM_THRESHOLD  1 GiB: free memory at the heap's top is kept up to this size instead of returned at once
    M_TOP_PAD         64 MiB: each heap extension asks the kernel for this much more

Called by experiments.warm before a step runs (cold, or in a worker forked from the pre-imported server).
No-op off Linux/glibc.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4  # glibc malloc.h
SETTINGS = ((M_MMAP_THRESHOLD, 32 << 20), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
_done: bool | None = None


def tune() -> bool:
    """Apply SETTINGS once per process (a forked child keeps them); True when glibc accepted all of them."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    return _done
