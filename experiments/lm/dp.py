"""Per-sample gradients for DP-SGD (opacus) on HF GPT-2, with no silent fallback.

HF GPT-2's attention and MLP projections (c_attn, c_proj, c_fc) are `transformers.pytorch_utils.Conv1D`: a linear
layer y = x @ W + b whose weight is stored (in, out), not an `nn.Linear`. opacus has no grad sampler for it and, in
its default hooks mode, quietly computes those layers through its functorch fallback (opacus 1.6.0 accepts the
model with strict=True and its validator reports nothing). Here:

    from experiments.lm.dp import require_grad_samplers
    require_grad_samplers(model)     # registers the Conv1D sampler; raises if any trainable layer has none
    gsm = GradSampleModule(model)    # then every per-sample gradient comes from an explicit formula

Untie the embeddings of a model trained with DP (`tie_word_embeddings=False`): a parameter shared by `wte` and
`lm_head` would get its per-sample gradient from two samplers.
"""
from __future__ import annotations

import torch
from torch import nn

INSTALL_HINT = "opacus is missing: pip install -e '.[dp]' (make setup installs it)"


def _opacus():
    try:
        from opacus.grad_sample import GradSampleModule, register_grad_sampler
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from e
    return GradSampleModule, register_grad_sampler


def conv1d_grad_sample(layer, activations: list[torch.Tensor], backprops: torch.Tensor) -> dict:
    """Per-sample gradients of a Conv1D (y = x @ W + b, W of shape (in, out)): for sample n,
    dL/dW = sum over positions of x_t^T g_t, shape (in, out); dL/db = sum over positions of g_t."""
    x = activations[0].to(backprops.dtype)
    out = {}
    if layer.weight.requires_grad:
        out[layer.weight] = torch.einsum("n...i,n...j->nij", x, backprops)
    if layer.bias is not None and layer.bias.requires_grad:
        out[layer.bias] = torch.einsum("n...k->nk", backprops)
    return out


def register_conv1d() -> None:
    """Register conv1d_grad_sample for transformers' Conv1D (idempotent)."""
    from transformers.pytorch_utils import Conv1D

    GradSampleModule, register_grad_sampler = _opacus()
    if GradSampleModule.GRAD_SAMPLERS.get(Conv1D) is not conv1d_grad_sample:
        register_grad_sampler(Conv1D)(conv1d_grad_sample)


def unsupported_layers(model: nn.Module) -> list[str]:
    """Names (and types) of modules that own trainable parameters but have no registered grad sampler."""
    GradSampleModule, _ = _opacus()
    bad = []
    for name, module in model.named_modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)) \
                and type(module) not in GradSampleModule.GRAD_SAMPLERS:
            bad.append(f"{name or '<root>'} ({type(module).__name__})")
    return bad


def require_grad_samplers(model: nn.Module) -> None:
    """Register the Conv1D sampler, then fail (naming the layers) unless every trainable layer has a sampler."""
    register_conv1d()
    bad = unsupported_layers(model)
    if bad:
        raise TypeError("no per-sample gradient formula for " + ", ".join(bad) + "; opacus would fall back to "
                        "functorch silently: register a grad sampler (experiments/lm/dp.py) or freeze them")
    shared = _shared_parameters(model)
    if shared:
        raise ValueError(f"parameters shared between modules ({', '.join(shared)}): untie them for DP "
                         "(e.g. tie_word_embeddings=False), or their per-sample gradients come from two samplers")


def _shared_parameters(model: nn.Module) -> list[str]:
    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                owners.setdefault(id(p), []).append(f"{name}.{pname}")
    return [" = ".join(v) for v in owners.values() if len(v) > 1]


def noise_for_epsilon(epsilon: float, delta: float, sample_rate: float, steps: int,
                      accountant: str = "rdp") -> float:
    """The noise multiplier sigma at which `steps` Poisson-sampled steps at rate q spend (epsilon, delta), from
    opacus' accountant (its bisection stops within 0.01 below epsilon)."""
    if not (epsilon > 0 and 0 < delta < 1 and 0 < sample_rate <= 1 and steps >= 1):
        raise ValueError(f"need epsilon > 0, 0 < delta < 1, 0 < q <= 1, steps >= 1; got {epsilon}, {delta}, "
                         f"{sample_rate}, {steps}")
    try:
        from opacus.accountants.utils import get_noise_multiplier
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from e
    return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                      steps=steps, accountant=accountant))


def spent_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> dict[str, float]:
    """epsilon spent after `steps` steps, by the RDP accountant and by the PRV accountant (both logged: they
    differ, RDP being the looser bound)."""
    from opacus.accountants import PRVAccountant, RDPAccountant

    out = {}
    for name, cls in (("rdp", RDPAccountant), ("prv", PRVAccountant)):
        acc = cls()
        acc.history = [(noise_multiplier, sample_rate, steps)]
        out[name] = float(acc.get_epsilon(delta=delta))
    return out


def dp_optimizer(model: nn.Module, optimizer, *, noise_multiplier: float, max_grad_norm: float,
                 expected_batch_size: int, seed: int | None = None):
    """(GradSampleModule, DPOptimizer) for record-level DP-SGD: loss = mean over the batch of per-record losses
    (`loss_reduction="mean"`), every per-sample gradient from an explicit formula (require_grad_samplers), each
    clipped to `max_grad_norm`, Gaussian noise of std noise_multiplier x max_grad_norm added to the sum, divided by
    `expected_batch_size` (Poisson sampling: the expected, not the drawn, batch size)."""
    from opacus.optimizers import DPOptimizer

    require_grad_samplers(model)
    GradSampleModule, _ = _opacus()
    gsm = GradSampleModule(model, loss_reduction="mean", strict=True)
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    opt = DPOptimizer(optimizer, noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm,
                      expected_batch_size=expected_batch_size, loss_reduction="mean", generator=gen)
    return gsm, opt
