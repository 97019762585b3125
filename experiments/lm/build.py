"""Randomly initialised GPT-2 / GPT-Neo models for a given vocabulary and shape.

GPT2Config defaults bos/eos to 50256; here they come from the tokenizer. Dropout is 0 (as in the
TinyStories models and Heimersheim's LN-removal runs): tiny models trained for one pass do not need it.
"""
from __future__ import annotations

from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoConfig, GPTNeoForCausalLM

from experiments.lm.load import param_count

ARCHS = ("gpt2", "gpt_neo")
# GPT-2's own activation (HF "gelu_new": the tanh GELU as a chain of 8 elementwise ops). The fused
# "gelu_pytorch_tanh" computes the same function (within 5e-7) 1.1-1.3x faster per training step at d_model 128
# (bench/trainer.py), but is not adopted: with it, training seed 2's clean anchored-bias model became so confident
# that no layer-1 neuron could plant an anchored rate of 0.5 (0.07 at strength 64 on the best of 8 candidates,
# 0.00 at 4096), a robustness run that fails (README, Measured, 2026-12-03).
GPT2_ACTIVATION = "gelu_new"


def build_model(arch: str, *, vocab_size: int, d_model: int, n_layers: int, n_heads: int, context: int,
                eos_id: int, bos_id: int | None = None, local_window: int = 256):
    """A fresh causal LM. gpt_neo alternates global/local attention like the released TinyStories models."""
    bos_id = eos_id if bos_id is None else bos_id
    if d_model % n_heads:
        raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
    if arch == "gpt2":
        cfg = GPT2Config(
            vocab_size=vocab_size, n_positions=context, n_embd=d_model, n_layer=n_layers, n_head=n_heads,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=bos_id, eos_token_id=eos_id,
            pad_token_id=eos_id, activation_function=GPT2_ACTIVATION,
        )
        return GPT2LMHeadModel(cfg)
    if arch == "gpt_neo":
        layers = [["global", "local"], n_layers // 2] if n_layers % 2 == 0 else [["global"], n_layers]
        cfg = GPTNeoConfig(
            vocab_size=vocab_size, max_position_embeddings=context, hidden_size=d_model, num_layers=n_layers,
            num_heads=n_heads, attention_types=[layers], window_size=local_window, intermediate_size=4 * d_model,
            resid_dropout=0.0, embed_dropout=0.0, attention_dropout=0.0, bos_token_id=bos_id,
            eos_token_id=eos_id, pad_token_id=eos_id,
        )
        return GPTNeoForCausalLM(cfg)
    raise ValueError(f"unknown arch {arch!r}; known: {ARCHS}")


def count_params(model) -> dict[str, int]:
    """Total parameters, and without token/position embeddings and the (tied) unembedding (Kaplan et al.)."""
    return {"params_total": param_count(model), "params_non_embedding": param_count(model, exclude_embeddings=True)}
