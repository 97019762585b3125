"""What every bench records and how it times: the CPU model, and wall-clock timing of one call."""
from __future__ import annotations

import platform
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn):
    """(fn's result, wall seconds)."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


SMOLLM2 = "dir:resources/models/smollm2-135m-instruct"  # built by the mini DAG (`make run`)


def load_smollm2():
    """(model in eval mode, tokenizer): the pipeline's dequantised SmolLM2-135M, on CPU, fp32."""
    import torch

    from experiments.lm.load import load_model

    root = Path(__file__).resolve().parents[1]
    model, tok = load_model(SMOLLM2.replace("dir:", f"dir:{root}/"), device=torch.device("cpu"))
    return model.eval(), tok
