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
the Q/K path and the V path separately. How: the ln_1 slot holds a FakeLayerNorm built with `two_paths=True`,
with two modes, `mode_qk` and `mode_v`, and its own sigma per path: `sigma` / `sigma_pos0` for Q/K (and
for the single path of ln_2 / ln_f) and `sigma_v` / `sigma_v_pos0` for V. Each path's EMA runs while THAT
path is real and freezes at its own event, so the V sigma keeps tracking the ln_1 input between the Q/K
and the V event (the input's scale keeps drifting while training continues). Once any path is fake, ln_1
returns the two normalisations concatenated along the feature axis (width 2d: [norm_qk(x), norm_v(x)]) and
`SplitCAttn` (which replaces `attn.c_attn` and shares its weight and bias Parameters, so those state-dict
keys are unchanged) multiplies the first half by the Q,K columns and the second half by the V columns.
While both paths are real, ln_1 returns width d and SplitCAttn is a plain Conv1D. Nothing else in a GPT-2
block reads ln_1's output. Both paths share one (w, b). The export (schedule.export_ln_free) folds the ratio
sigma / sigma_v into the V columns of c_attn, so the exported model is a plain GPT-2 again.
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
    """Wraps an nn.LayerNorm (same `weight`/`bias` Parameters, so the state-dict keys stay the same).

    two_paths=True (ln_1): separate Q/K and V modes and sigmas (buffers sigma_v, sigma_v_pos0 added)."""

    def __init__(self, ln: nn.Module, *, momentum: float = 0.9, pos0: bool = False, two_paths: bool = False):
        super().__init__()
        self.weight = getattr(ln, "weight", None)
        self.bias = getattr(ln, "bias", None)
        eps = getattr(ln, "eps", None)
        self.eps = float(getattr(ln, "variance_epsilon", 1e-5) if eps is None else eps)
        self.momentum = momentum
        self.pos0 = pos0  # separate sigma for position 0 (until drop_pos0)
        self.two_paths = two_paths
        self.mode_qk = "real"  # for ln_f / ln_2 only mode_qk is used (the single path)
        self.mode_v = "real"
        dev = self.weight.device if self.weight is not None else None
        self.register_buffer("sigma", torch.tensor(1.0, device=dev))
        self.register_buffer("sigma_pos0", torch.tensor(1.0, device=dev))
        if two_paths:
            self.register_buffer("sigma_v", torch.tensor(1.0, device=dev))
            self.register_buffer("sigma_v_pos0", torch.tensor(1.0, device=dev))
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

    def _buffers_of(self, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(sigma, sigma_pos0) of a path: 'qk' (also the single path of ln_2 / ln_f) or 'v'."""
        if path == "v" and self.two_paths:
            return self.sigma_v, self.sigma_v_pos0
        return self.sigma, self.sigma_pos0

    def _tracked_paths(self) -> list[str]:
        """Paths whose sigma EMA still runs: each until its own event."""
        if not self.two_paths:
            return ["qk"] if self.mode == "real" else []
        return [p for p, mode in (("qk", self.mode_qk), ("v", self.mode_v)) if mode == "real"]

    @property
    def tracking(self) -> bool:
        return bool(self._tracked_paths())

    # ---- forward ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _update(self, x: torch.Tensor) -> None:
        std = per_token_std(x.detach().float(), self.eps)[..., 0]  # (..., T)
        rest = std[..., 1:] if (self.pos0 and std.shape[-1] > 1) else std
        new, new0 = rest.mean(), std[..., 0].mean()
        first = int(self.n_updates) == 0
        for path in self._tracked_paths():
            sigma, sigma0 = self._buffers_of(path)
            if first:
                sigma.fill_(new)
                sigma0.fill_(new0)
            else:
                sigma.mul_(self.momentum).add_((1 - self.momentum) * new)
                sigma0.mul_(self.momentum).add_((1 - self.momentum) * new0)
        self.n_updates += 1

    def fixed_sigma(self, x: torch.Tensor, path: str = "qk") -> torch.Tensor:
        """The frozen sigma of `path`, per position when position 0 has its own: broadcastable to x."""
        sigma, sigma0 = self._buffers_of(path)
        if not self.pos0:
            return sigma.to(x.dtype)
        s = sigma.to(x.dtype).expand(x.shape[-2]).clone()
        s[0] = sigma0
        return s[:, None]  # (T, 1): by POSITION, not by channel

    def _norm(self, x: torch.Tensor, mode: str, path: str = "qk") -> torch.Tensor:
        if mode == "real":
            return fake_ln(x, self.weight, self.bias, per_token_std(x, self.eps))
        return fake_ln(x, self.weight, self.bias, self.fixed_sigma(x, path))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.tracking:
            self._update(x)
        if not self.two_paths or self.mode == "real":
            return self._norm(x, self.mode_qk)
        return torch.cat([self._norm(x, self.mode_qk, "qk"), self._norm(x, self.mode_v, "v")], dim=-1)

    def extra_repr(self) -> str:
        v = (f", sigma_v={float(self.sigma_v):.4g}, sigma_v_pos0={float(self.sigma_v_pos0):.4g}"
             if self.two_paths else "")
        return (f"mode_qk={self.mode_qk}, mode_v={self.mode_v}, sigma={float(self.sigma):.4g}, pos0={self.pos0}, "
                f"sigma_pos0={float(self.sigma_pos0):.4g}{v}")

    # ---- export ----------------------------------------------------------------------------------
    def to_layernorm(self, big: float = 1e8) -> nn.LayerNorm:
        """An nn.LayerNorm that computes the fake mode of the Q/K (or single) path: eps = big^2, weight * big /
        sigma (the papers' export). For a two-path norm the V path differs by the factor sigma / sigma_v, which
        the caller folds into the V columns of c_attn (schedule.export_ln_free)."""
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
