"""FakeLayerNorm: a LayerNorm whose per-token standard deviation can be frozen to a fixed scalar.

    real mode:  LN(x)   = (x - mean(x)) / sqrt(var(x) + eps) * w + b
    fake mode:  f(x)    = (x - mean(x)) / sigma_fixed       * w + b       (centering kept: f is affine)

sigma is an EMA (momentum 0.9) of the batch-mean per-token std sqrt(var + eps), updated on every training
forward while the module is real and frozen when it switches to fake (Baroni et al. 2507.02559,
EXP_RECOMPUTE_STD_ON_REAL=1). With `pos0=True` a separate sigma is kept for sequence POSITION 0 (the BOS /
attention-sink token, whose residual norm is much larger) and applied by position, not to channel 0 (the
gpt2_noLN bug); the "bos" event (`drop_pos0`) makes position 0 use the common sigma, after which the module
is one affine map. Bias-free norms (bias=None) keep centering and the sigma division (the other repo bug
returned x*w).

The attention-input LN (ln_1) feeds Q, K and V through one matrix (GPT-2 `c_attn`), and the papers switch
the Q/K path and the V path separately. How: the ln_1 slot holds a FakeLayerNorm with two modes, `mode_qk`
and `mode_v`. When they differ, ln_1 returns the two normalisations concatenated along the feature axis
(width 2d: [norm_qk(x), norm_v(x)]), and `SplitCAttn` (which replaces `attn.c_attn` and shares its weight
and bias Parameters, so state-dict keys are unchanged) multiplies the first half by the Q,K columns and the
second half by the V columns. When both modes agree, ln_1 returns width d and SplitCAttn is a plain
Conv1D. Nothing else in a GPT-2 block reads ln_1's output. The two paths share one (w, b) and one sigma
buffer pair (the EMA stops when either path becomes fake; the paths then use the same frozen value).
"""
from __future__ import annotations

import torch
from torch import nn


def per_token_std(x: torch.Tensor, eps: float) -> torch.Tensor:
    """sqrt(biased var + eps) over the last axis, shape x.shape[:-1] + (1,): the LayerNorm denominator."""
    return torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)


def fake_ln(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
            sigma: torch.Tensor | float) -> torch.Tensor:
    """(x - mean(x)) / sigma * weight + bias; sigma is a scalar or broadcasts against x."""
    y = (x - x.mean(-1, keepdim=True)) / sigma
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


class FakeLayerNorm(nn.Module):
    """Wraps an nn.LayerNorm (same `weight`/`bias` Parameters, so the state-dict keys stay the same)."""

    def __init__(self, ln: nn.Module, *, momentum: float = 0.9, pos0: bool = False):
        super().__init__()
        self.weight = getattr(ln, "weight", None)
        self.bias = getattr(ln, "bias", None)
        eps = getattr(ln, "eps", None)
        self.eps = float(getattr(ln, "variance_epsilon", 1e-5) if eps is None else eps)
        self.momentum = momentum
        self.pos0 = pos0  # separate sigma for position 0 (until drop_pos0)
        self.mode_qk = "real"  # for ln_f / ln_2 only mode_qk is used (the single path)
        self.mode_v = "real"
        dev = self.weight.device if self.weight is not None else None
        self.register_buffer("sigma", torch.tensor(1.0, device=dev))
        self.register_buffer("sigma_pos0", torch.tensor(1.0, device=dev))
        self.register_buffer("n_updates", torch.tensor(0, device=dev))

    # ---- modes -----------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.mode_qk if self.mode_qk == self.mode_v else "split"

    def set_fake(self, path: str = "all") -> None:
        """path: 'all', 'qk' or 'v'."""
        if path in ("all", "qk"):
            self.mode_qk = "fake"
        if path in ("all", "v"):
            self.mode_v = "fake"

    def drop_pos0(self) -> None:
        self.pos0 = False

    @property
    def tracking(self) -> bool:
        return self.mode_qk == "real" and self.mode_v == "real"

    # ---- forward ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        std = per_token_std(x.detach().float(), self.eps)[..., 0]  # (..., T)
        rest = std[..., 1:] if (self.pos0 and std.shape[-1] > 1) else std
        new, new0 = rest.mean(), std[..., 0].mean()
        if int(self.n_updates) == 0:
            self.sigma.fill_(new)
            self.sigma_pos0.fill_(new0)
        else:
            self.sigma.mul_(self.momentum).add_((1 - self.momentum) * new)
            self.sigma_pos0.mul_(self.momentum).add_((1 - self.momentum) * new0)
        self.n_updates += 1

    def fixed_sigma(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen sigma, per position when position 0 has its own: broadcastable to x."""
        if not self.pos0:
            return self.sigma.to(x.dtype)
        s = self.sigma.to(x.dtype).expand(x.shape[-2]).clone()
        s[0] = self.sigma_pos0
        return s[:, None]  # (T, 1): by POSITION, not by channel

    def _norm(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "real":
            return fake_ln(x, self.weight, self.bias, per_token_std(x, self.eps))
        return fake_ln(x, self.weight, self.bias, self.fixed_sigma(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.tracking:
            self._update(x)
        if self.mode_qk == self.mode_v:
            return self._norm(x, self.mode_qk)
        return torch.cat([self._norm(x, self.mode_qk), self._norm(x, self.mode_v)], dim=-1)

    def extra_repr(self) -> str:
        return (f"mode_qk={self.mode_qk}, mode_v={self.mode_v}, sigma={float(self.sigma):.4g}, pos0={self.pos0}, "
                f"sigma_pos0={float(self.sigma_pos0):.4g}")

    # ---- export ----------------------------------------------------------------------------------
    def to_layernorm(self, big: float = 1e8) -> nn.LayerNorm:
        """An nn.LayerNorm that computes the fake mode: eps = big^2, weight * big / sigma (the papers' export)."""
        if self.mode != "fake" or self.pos0:
            raise ValueError(f"cannot export a norm that is not fully fake with one sigma ({self.extra_repr()})")
        d = self.weight.shape[0]
        ln = nn.LayerNorm(d, eps=big**2, bias=self.bias is not None, device=self.weight.device)
        with torch.no_grad():
            ln.weight.copy_(self.weight * big / self.sigma)
            if self.bias is not None:
                ln.bias.copy_(self.bias)
        return ln


class SplitCAttn(nn.Module):
    """GPT-2 `c_attn` (Conv1D, weight (d, 3d)) that accepts [x_qk, x_v] (width 2d) or plain x (width d)."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.weight = conv.weight  # shared Parameters: keys attn.c_attn.weight / .bias unchanged
        self.bias = conv.bias
        self.nf = conv.weight.shape[1]
        self.d = conv.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.d:
            return torch.addmm(self.bias, x.reshape(-1, self.d), self.weight).view(*x.shape[:-1], self.nf)
        if x.shape[-1] != 2 * self.d:
            raise ValueError(f"SplitCAttn expects width {self.d} or {2 * self.d}, got {x.shape[-1]}")
        x_qk, x_v = x[..., : self.d], x[..., self.d:]
        qk = x_qk @ self.weight[:, : 2 * self.d] + self.bias[: 2 * self.d]
        v = x_v @ self.weight[:, 2 * self.d:] + self.bias[2 * self.d:]
        return torch.cat([qk, v], dim=-1)
