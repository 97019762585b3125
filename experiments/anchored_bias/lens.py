"""Logit lens at the answer position, through the adapter (GPT-2 and Llama alike), as the authors' notebook computes it.

- `letter_lens(x)`: the lens of a component x alone, `W_U[:, t] . final_norm(x) + b_U[t]` for the letter tokens.
  With the model's full final norm (gamma, beta) the A-minus-gold differences equal those of TransformerLens with
  fold_ln + center_unembed (the notebook's setting): the vocabulary centring cancels in a difference and the
  folded bias is beta . W_U. The lens is scale-invariant (the norm is applied to the component, not to the
  residual stream), so it is not direct logit attribution.
- Layer scan: `Delta_l = lens_A(mlp_out_l) - lens_gold(mlp_out_l)` at the last position.
- Neurons (paper): per layer the top-10 by `|k_n| * ||v_n||` (k = `mlp.hook_post` at the last position, v_n the
  value vector; for LayerNorm families ||v_n|| is the norm of the centred vector, as TransformerLens'
  center_writing_weights makes it), candidates `g_n = lens_A(k_n v_n + b_out) - lens_gold(k_n v_n + b_out) > tau`.
- Neurons (issue's projection score, on the logit scale): `s_n = k_n * v_n . (u_A - u_gold) / s` with u the lens
  direction below and s the final norm's divisor for the item: each neuron's direct logit attribution to
  logit(A) - logit(gold), over every neuron (no top-10 cut).
- `lens_direction(t)`: the unembedding column in TransformerLens-processed coordinates, `gamma_f * W_U[:, t]`
  minus its mean over the vocabulary (what the paper's update adds to a value vector).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.anchored_bias.predict import readout
from experiments.anchored_bias.prompts import Encoded, batches


def norm_gamma(adapter) -> torch.Tensor:
    site = adapter.norms()[-1]
    weight = getattr(site.module, "weight", None)
    if weight is None:
        return torch.ones(adapter.d_model)
    return weight.detach()


def lens_direction(adapter, token_ids: list[int]) -> torch.Tensor:
    """(len(token_ids), d_model): gamma_f * W_U[:, t] - mean over the vocabulary of gamma_f * W_U[:, v]."""
    W = adapter.W_U.detach().float()  # (d_model, vocab)
    g = norm_gamma(adapter).float()[:, None]
    folded = g * W
    return (folded[:, token_ids] - folded.mean(dim=1, keepdim=True)).T.clone()  # only the asked columns


def letter_lens(adapter, x: torch.Tensor, letter_ids: list[int]) -> torch.Tensor:
    """Lens values of components x (..., d_model) for the letter tokens: (..., len(letter_ids))."""
    normed = adapter.final_norm(x.to(adapter.W_U.dtype))
    out = normed @ adapter.W_U[:, letter_ids]
    if adapter.b_U is not None:
        out = out + adapter.b_U[letter_ids]
    return out.float()


def is_layernorm(adapter) -> bool:
    return isinstance(adapter.norms()[-1].module, torch.nn.LayerNorm)


def norm_scale(adapter, resid: torch.Tensor) -> torch.Tensor:
    """(...,) the divisor of the final norm for residuals (..., d): sqrt(var + eps) (LayerNorm) or sqrt(mean
    square + eps) (RMSNorm)."""
    mod = adapter.norms()[-1].module
    eps = getattr(mod, "eps", None) or getattr(mod, "variance_epsilon", 1e-5)
    if is_layernorm(adapter):
        return (resid.var(-1, unbiased=False) + eps).sqrt()
    return (resid.pow(2).mean(-1) + eps).sqrt()


def centred_norms(adapter, layer: int) -> torch.Tensor:
    """||v_n|| per neuron; centred over d_model for LayerNorm families (the mean is removed by the next norm)."""
    v = adapter.W_out(layer).detach().float()
    if isinstance(adapter.norms()[-1].module, torch.nn.LayerNorm):
        v = v - v.mean(dim=1, keepdim=True)
    return v.norm(dim=1)


@dataclass
class AnswerActs:
    """Activations at the last position of every item."""

    mlp_out: torch.Tensor   # (n, L, d_model)
    post: torch.Tensor      # (n, L, d_mlp)   MLP coefficients k
    head_lens: torch.Tensor  # (n, L, H, 5)   letter lens of each head's output (hook_result)
    letter_attn: torch.Tensor  # (n, L, H, 5) attention of the last query on each option letter (0 when absent)
    final_scale: torch.Tensor  # (n,) what the final norm divides the last residual by (std or RMS, with eps)
    letter_logits: torch.Tensor  # (n, 5) float64 the model's letter logits at the last position (its prediction)
    top: torch.Tensor  # (n,) full-vocabulary argmax token id at the last position

    def subset(self, mask: np.ndarray) -> "AnswerActs":
        idx = torch.from_numpy(np.flatnonzero(mask))
        return AnswerActs(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


@torch.no_grad()
def answer_activations(adapter, enc: Encoded, batch_size: int) -> AnswerActs:
    L = adapter.n_layers
    names = [f"blocks.{l}.{h}" for l in range(L) for h in ("hook_mlp_out", "mlp.hook_post", "attn.hook_result",
                                                           "attn.hook_pattern")] + [f"blocks.{L - 1}.hook_resid_post"]
    outs: dict[str, list] = {k: [] for k in ("mlp_out", "post", "head_lens", "letter_attn", "final_scale",
                                             "letter_logits", "top")}
    for rows, ids, mask, cut in batches(enc, batch_size):
        store: dict[str, torch.Tensor] = {}

        def keep(t, hook):
            store[str(hook)] = t[:, :, -1].clone() if str(hook).endswith("hook_pattern") else t[:, -1].clone()

        ll, top = readout(adapter.run_with_hooks(ids, mask, fwd_hooks=[(names, keep)], last_only=True),
                          enc.letter_ids)
        outs["letter_logits"].append(torch.from_numpy(ll))
        outs["top"].append(torch.from_numpy(top))
        pos = enc.letter_pos[rows] - cut  # (b, 5)
        present = enc.letter_pos[rows] >= 0
        outs["mlp_out"].append(torch.stack([store[f"blocks.{l}.hook_mlp_out"] for l in range(L)], 1).float())
        outs["post"].append(torch.stack([store[f"blocks.{l}.mlp.hook_post"] for l in range(L)], 1).float())
        res = torch.stack([store[f"blocks.{l}.attn.hook_result"] for l in range(L)], 1)  # (b, L, H, d)
        outs["head_lens"].append(letter_lens(adapter, res, enc.letter_ids))
        pat = torch.stack([store[f"blocks.{l}.attn.hook_pattern"] for l in range(L)], 1).float()  # (b, L, H, K)
        idx = pos.clamp(min=0)[:, None, None, :].expand(-1, pat.shape[1], pat.shape[2], -1)
        att = torch.gather(pat, 3, idx) * present[:, None, None, :]
        outs["letter_attn"].append(att)
        outs["final_scale"].append(norm_scale(adapter, store[f"blocks.{L - 1}.hook_resid_post"].float()))
    return AnswerActs(**{k: torch.cat(v) for k, v in outs.items()})


def gold_index(gold: np.ndarray) -> torch.Tensor:
    from experiments.anchored_bias.items import LETTERS

    return torch.tensor([LETTERS.index(g) for g in gold])


def layer_scan(adapter, acts: AnswerActs, gold: np.ndarray, letter_ids: list[int]) -> torch.Tensor:
    """Delta_l per item and layer (n, L): lens_A(mlp_out_l) - lens_gold(mlp_out_l)."""
    lens = letter_lens(adapter, acts.mlp_out, letter_ids)  # (n, L, 5)
    gi = gold_index(gold)
    return lens[..., 0] - lens[torch.arange(len(gi)), :, gi]


@torch.no_grad()
def paper_candidates(adapter, acts: AnswerActs, gold: np.ndarray, letter_ids: list[int], top: int,
                     tau: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The notebook's neuron filter per item and layer.

    Returns (neuron ids (n, L, top) by |k| ||v|| descending, gaps g_n (n, L, top), passes = g_n > tau)."""
    n, L = acts.post.shape[:2]
    gi = gold_index(gold)
    ids, gaps = [], []
    for l in range(L):
        norms = centred_norms(adapter, l)
        contrib = acts.post[:, l].abs() * norms[None, :]
        t = min(top, contrib.shape[1])
        nid = contrib.topk(t, dim=1).indices  # (n, t)
        v = adapter.W_out(l).detach().float()[nid]  # (n, t, d)
        k = torch.gather(acts.post[:, l], 1, nid)[..., None]
        b = adapter.b_out(l)
        vec = k * v + (b.detach().float() if b is not None else 0.0)
        lens = letter_lens(adapter, vec, letter_ids)  # (n, t, 5)
        gaps.append(lens[..., 0] - lens[torch.arange(n), :, gi])
        ids.append(nid)
    ids_t, gaps_t = torch.stack(ids, 1), torch.stack(gaps, 1)
    return ids_t, gaps_t, gaps_t > tau


@torch.no_grad()
def projection_scores(adapter, acts: AnswerActs, gold: np.ndarray, letter_ids: list[int]) -> torch.Tensor:
    """Direct logit attribution of every neuron to logit(A) - logit(gold), in logits (n, L, d_mlp):
    k_n * v_n . gamma_f (W_U[:, A] - W_U[:, gold]) / s, with v_n centred for LayerNorm families (the norm removes
    the mean) and s the final norm's divisor for that item (frozen, as in direct logit attribution). This is
    the issue's "activation x value vector projected on the unembedding of A minus gold", put on the logit scale
    the paper's threshold 4 is stated in."""
    u = lens_direction(adapter, letter_ids)  # (5, d): gamma * W_U, centred over the vocabulary
    gi = gold_index(gold)
    diff = u[0][None, :] - u[gi]  # (n, d); the vocabulary centring cancels
    out = []
    for l in range(acts.post.shape[1]):
        v = adapter.W_out(l).detach().float()
        if is_layernorm(adapter):
            v = v - v.mean(dim=1, keepdim=True)
        out.append(acts.post[:, l] * (diff @ v.T) / acts.final_scale[:, None])
    return torch.stack(out, 1)


def head_scores(acts: AnswerActs, gold: np.ndarray) -> torch.Tensor:
    """Per-head lens score lens_A(result_h) - lens_gold(result_h) per item (n, L, H)."""
    gi = gold_index(gold)
    return acts.head_lens[..., 0] - acts.head_lens[torch.arange(len(gi)), :, :, gi]
