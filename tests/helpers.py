"""Shared test helpers: the mini config's sections as the workflow sees them (schema defaults filled)."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def _mini_config() -> dict:
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for result, section in cfg.items():
        schema = ROOT / "config" / "schemas" / f"{result}.yaml"
        if schema.is_file():
            validate(section, str(schema), set_default=True)
    return cfg


def mini_section(result: str) -> dict:
    """A deep copy of the validated `result:` section of config/config.yaml."""
    return copy.deepcopy(_mini_config()[result])


def tiny_gpt2(vocab: int = 16, positions: int = 16, width: int = 16, layers: int = 2, tied: bool = False,
              seed: int = 0, double: bool = False):
    """A seeded random-init GPT-2 without dropout (for exact gradient comparisons)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=width, n_layer=layers, n_head=2,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
                     tie_word_embeddings=tied)
    model = GPT2LMHeadModel(cfg)
    return model.double() if double else model
