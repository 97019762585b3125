"""The LayerNorm-removal schedule as a training StepHook (experiments.lm.train.StepHook).

Order (both papers): every ln_2 (MLP input), one block at a time -> every ln_1 for the Q/K path -> every ln_1
for the V path -> ln_f -> "bos" (position 0 loses its own sigma; only when pos0 sigmas are used). Starts are
chained as in Baroni's config.py: start_next = start + n_layers * gap. Heimersheim's GPT-2 small run is
start=200, gaps 20/20/30, ln_f 30 after the last V event, eot +20, bos +100 (ln_2 200..420, qk 440..660,
v 680..1010, ln_f 1040, bos 1160). The EOT-token special case of the V path (Heimersheim's "eot" event) is not
implemented: our mini vocabularies have no separate attention-sink token, and position 0 is handled by `pos0`.

An event fires in `before_step(step)` for step == its configured step (and, defensively, any earlier event
not yet fired). `state_dict()` lists the fired events; `load_state_dict` (called by train() BEFORE the model
state dict) re-installs the FakeLayerNorm modules and replays the fired events, so the model's keys match
and a resumed run continues the schedule exactly; the sigma buffers (ln_1: one per path, `sigma` for Q/K and
`sigma_v` for V) then come from the model state.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from experiments.lm.arch import get_adapter
from experiments.ln_removal.fake_norm import FakeLayerNorm, SplitCAttn
from experiments.options import check_known

KINDS = ("ln_2", "ln_1qk", "ln_1v", "ln_f", "bos")


@dataclass
class ScheduleConfig:
    start: int = 10
    gap_ln2: int = 2
    gap_qk: int = 2
    gap_v: int = 3
    gap_bos: int = 10  # bos fires this many steps after ln_f (only with pos0); ln_f = v start + n_layers * gap_v
    momentum: float = 0.9
    pos0: bool = False  # separate sigma for position 0 until the "bos" event

    @classmethod
    def from_dict(cls, d: dict) -> "ScheduleConfig":
        check_known(cls, d, "schedule")
        return cls(**d)


@dataclass(frozen=True)
class Event:
    step: int
    kind: str
    layer: int | None

    @property
    def name(self) -> str:
        return self.kind if self.layer is None else f"{self.kind}.{self.layer}"


def events(cfg: ScheduleConfig, n_layers: int) -> list[Event]:
    """The removal events for an L-layer model, in firing order."""
    out = []
    qk_start = cfg.start + n_layers * cfg.gap_ln2
    v_start = qk_start + n_layers * cfg.gap_qk
    lnf = v_start + n_layers * cfg.gap_v
    for i in range(n_layers):
        out.append(Event(cfg.start + i * cfg.gap_ln2, "ln_2", i))
    for i in range(n_layers):
        out.append(Event(qk_start + i * cfg.gap_qk, "ln_1qk", i))
    for i in range(n_layers):
        out.append(Event(v_start + i * cfg.gap_v, "ln_1v", i))
    out.append(Event(lnf, "ln_f", None))
    if cfg.pos0:
        out.append(Event(lnf + cfg.gap_bos, "bos", None))
    return out


def install(model: nn.Module, cfg: ScheduleConfig) -> dict[tuple[str, int | None], FakeLayerNorm]:
    """Swap every LayerNorm for a real-mode FakeLayerNorm (idempotent); ln_1's c_attn becomes SplitCAttn."""
    adapter = get_adapter(model)
    if adapter.family != "gpt2":
        raise NotImplementedError(f"LN removal is implemented for GPT-2 (c_attn split); got {adapter.family}")
    fakes = {}
    for site in adapter.norms():
        module = site.module
        if not isinstance(module, FakeLayerNorm):
            module = FakeLayerNorm(module, momentum=cfg.momentum, pos0=cfg.pos0, two_paths=site.kind == "ln_1")
            adapter.set_norm(site, module)
        fakes[(site.kind, site.layer)] = module
    for layer in range(adapter.n_layers):
        attn = adapter.attn(layer)
        if not isinstance(attn.c_attn, SplitCAttn):
            attn.c_attn = SplitCAttn(attn.c_attn)
    return fakes


def fake_norms(model: nn.Module) -> dict[tuple[str, int | None], FakeLayerNorm]:
    return {(s.kind, s.layer): s.module for s in get_adapter(model).norms() if isinstance(s.module, FakeLayerNorm)}


def apply_event(fakes: dict, event: Event) -> None:
    if event.kind == "ln_2":
        fakes[("ln_2", event.layer)].set_fake()
    elif event.kind == "ln_1qk":
        fakes[("ln_1", event.layer)].set_fake("qk")
    elif event.kind == "ln_1v":
        fakes[("ln_1", event.layer)].set_fake("v")
    elif event.kind == "ln_f":
        fakes[("ln_f", None)].set_fake()
    elif event.kind == "bos":
        for f in fakes.values():
            f.drop_pos0()
    else:
        raise ValueError(f"unknown event kind {event.kind!r}")


class RemovalSchedule:
    """StepHook: installs FakeLayerNorms at the first step and fires the schedule's events at exact steps."""

    def __init__(self, cfg: ScheduleConfig, n_layers: int):
        self.cfg = cfg
        self.events = events(cfg, n_layers)
        self.fired: list[str] = []
        self.fired_at: dict[str, int] = {}

    @property
    def last_step(self) -> int:
        return self.events[-1].step

    def _fakes(self, model):
        return install(model, self.cfg)

    def before_step(self, step: int, model: nn.Module) -> None:
        fakes = self._fakes(model)
        for ev in self.events:
            if ev.name not in self.fired and ev.step <= step:
                apply_event(fakes, ev)
                self.fired.append(ev.name)
                self.fired_at[ev.name] = step

    def stage_at(self, step: int) -> str:
        """Name of the last event that fired at or before `step` (rows of the loss curve), 'with_ln' before."""
        done = [ev for ev in self.events if ev.step <= step]
        return done[-1].name if done else "with_ln"

    def state_dict(self) -> dict:
        return {"fired": list(self.fired), "fired_at": dict(self.fired_at), "config": asdict(self.cfg)}

    def load_state_dict(self, state: dict, model: nn.Module) -> None:
        fakes = self._fakes(model)
        by_name = {ev.name: ev for ev in self.events}
        self.fired, self.fired_at = [], {}
        for name in state.get("fired", []):
            apply_event(fakes, by_name[name])
            self.fired.append(name)
            self.fired_at[name] = state.get("fired_at", {}).get(name, by_name[name].step)


def fold_v_sigma(conv: nn.Module, ln_1: FakeLayerNorm) -> None:
    """Fold ln_1's V-path sigma into the V columns of `conv` (c_attn, Conv1D weight (d, 3d)), in place.

    The exported ln_1 computes the Q/K path y = (x - mean x) w / sigma + b; the V path needs
    (x - mean x) w / sigma_v + b = r (y - b) + b with r = sigma / sigma_v, so V = y (r W_v) + (1 - r) b W_v + b_v.
    """
    r = float(ln_1.sigma / ln_1.sigma_v)
    d = conv.weight.shape[0]
    with torch.no_grad():
        w_v = conv.weight[:, 2 * d:]
        if ln_1.bias is not None:
            conv.bias[2 * d:] += (1 - r) * (ln_1.bias @ w_v)
        w_v.mul_(r)


def export_ln_free(model: nn.Module, big: float = 1e8) -> nn.Module:
    """Turn a fully-fake model back into a plain GPT2LMHeadModel (LayerNorm eps = big^2, weight*big/sigma).

    Returns the same model object, modified in place; it then saves/loads with save_pretrained as usual.
    ln_1's V-path sigma is folded into c_attn's V columns (fold_v_sigma).
    big = 1e8: the export is affine up to a relative error ~ var / (2 big^2); with 1e6 a random-init GPT-2 small
    (residual variance ~4e4) missed the 1e-6 DLA tolerance (3.5e-6; 1e8 gives 3.5e-10, found by the smoke run).
    """
    adapter = get_adapter(model)
    ln_1 = {site.layer: site.module for site in adapter.norms()
            if site.kind == "ln_1" and isinstance(site.module, FakeLayerNorm)}
    from transformers.pytorch_utils import Conv1D

    for layer in range(adapter.n_layers):
        attn = adapter.attn(layer)
        if isinstance(attn.c_attn, SplitCAttn):
            conv = Conv1D(attn.c_attn.nf, attn.c_attn.d)
            conv.weight, conv.bias = attn.c_attn.weight, attn.c_attn.bias
            attn.c_attn = conv
        if layer in ln_1 and ln_1[layer].two_paths:
            if ln_1[layer].mode != "fake" or ln_1[layer].pos0:
                raise ValueError(f"cannot export ln_1 of layer {layer}: {ln_1[layer].extra_repr()}")
            fold_v_sigma(attn.c_attn, ln_1[layer])
    for site in adapter.norms():
        if isinstance(site.module, FakeLayerNorm):
            adapter.set_norm(site, site.module.to_layernorm(big))
    model.config.layer_norm_epsilon = big**2
    return model


def sigma_table(model: nn.Module) -> list[dict]:
    """One row per norm: sigma (Q/K or single path), sigma_v (ln_1's V path; = sigma elsewhere), modes."""
    return [dict(kind=k, layer=l, sigma=float(f.sigma), sigma_pos0=float(f.sigma_pos0),
                 sigma_v=float(f.sigma_v if f.two_paths else f.sigma), mode_qk=f.mode_qk, mode_v=f.mode_v,
                 pos0=f.pos0) for (k, l), f in fake_norms(model).items()]


@torch.no_grad()
def max_logit_diff(a: nn.Module, b: nn.Module, ids: torch.Tensor) -> float:
    return float((a(input_ids=ids).logits - b(input_ids=ids).logits).abs().max())
