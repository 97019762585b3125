"""Mechanistic checks of LN-free models: direct logit attribution (DLA) and confidence/entropy neurons.

DLA. Components of the final residual R = embed + sum_l attn_out[l] + sum_l mlp_out[l] (GPT-2: token +
position embedding, each attention block output, each MLP output). The direct effect of component c is
    DE_c = logits(R) - logits(R - c)            (final norm recomputed, as run_analysis.py's "direct effect")
and the bias term is logits(0) = W_U b_f. The cached-scale DLA of c is W_U((c - mean c) / s * w), s the clean
per-token scale of the final norm. Two numbers:
  - max |sum_c DE_c + logits(0) - logits| over positions and the vocabulary: an IDENTITY for any affine final
    map (it holds for a 30-step toy as for a converged model), so it is a sanity check of the LN-free export,
    never a claim;
  - per component NMAE = sum |DLA_c - DE_c| / sum |DE_c| (run_analysis.py's metric): what carries information,
    how wrong DLA is in the ORIGINAL model (with LayerNorm the scale moves when c is removed); in the LN-free
    model it is 0 up to float64 error. Sums are kept per block so a CI can resample blocks.
One block per float64 forward, so memory is that of one block.

Confidence (entropy) neurons (Stolfo et al. 2024 criterion): last-layer MLP neurons whose output weight has a
large norm (top quarter) and the largest share of its norm in the unembedding's (effective) null space, the
span of the right singular vectors of W_U with the smallest `null_frac` of singular values. Each is
mean-ablated; the total effect on the entropy of the next-token distribution (rerun, final norm recomputed)
is compared with the direct effect (same residual change, final-norm scale frozen at its clean value).
A confidence neuron in an LN model acts mainly THROUGH the norm: its total |dH| is a multiple of its direct
|dH| (amplification = sum |dH_total| / sum |dH_direct| > 1; a generic neuron's change is partly undone by the
norm, < 1). In an LN-free model total = direct by construction (a sanity check), so the question is whether
the total effect drops against the control fine-tuned with LN kept (pooled_ratio, CI over blocks).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from experiments.lm.arch import get_adapter
from experiments.stats import ratio_ci


def _final_ln_parts(norm):
    weight = getattr(norm, "weight", None)
    bias = getattr(norm, "bias", None)
    eps = getattr(norm, "eps", getattr(norm, "variance_epsilon", 1e-5))
    return weight, bias, float(eps)


def norm_with_scale(norm, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The final LayerNorm with its per-token scale replaced by `scale` (centering kept)."""
    weight, bias, _ = _final_ln_parts(norm)
    y = (x - x.mean(-1, keepdim=True)) / scale
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


def norm_scale(norm, x: torch.Tensor) -> torch.Tensor:
    _, _, eps = _final_ln_parts(norm)
    return torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)


@dataclass
class DLAResult:
    """dla_check's output. Per block b and component c: err_sum[b, c] = sum over positions and the vocabulary
    of |DLA - DE|, de_sum[b, c] = sum of |DE| (so NMAE_c = err_sum[:, c].sum() / de_sum[:, c].sum(), and a
    bootstrap over blocks resamples rows)."""

    max_abs_sum_error: float  # max |sum_c DE_c + logits(0) - logits| (the identity; a sanity check)
    components: list[str]
    err_sum: np.ndarray  # (B, C)
    de_sum: np.ndarray  # (B, C)
    n_per_block: int  # positions x vocabulary entries summed per block
    reconstruction_error: float  # max |sum of components - final residual| (a sanity check of the cache)

    def rows(self) -> list[dict]:
        """Per component: NMAE of the cached-scale DLA against the direct effect, and mean |DE|."""
        err, de = self.err_sum.sum(0), self.de_sum.sum(0)
        n = self.n_per_block * len(self.err_sum)
        return [dict(component=c, nmae_dla_vs_de=float(err[i] / max(de[i], 1e-300)), mean_abs_de=float(de[i] / n))
                for i, c in enumerate(self.components)]


def mean_component_nmae(err_sum: np.ndarray, de_sum: np.ndarray, axis=None):
    """Mean over components of NMAE_c = sum_b err_sum[b, c] / sum_b de_sum[b, c]. With `axis` (bootstrap use):
    err_sum / de_sum are (n_boot, B, C) stacks of resampled blocks and the result is (n_boot,)."""
    err, de = np.asarray(err_sum), np.asarray(de_sum)
    nmae = err.sum(-2) / np.maximum(de.sum(-2), 1e-300)
    return nmae.mean(-1)


@torch.no_grad()
def dla_check(model, ids: torch.Tensor) -> DLAResult:
    """DLA against direct effects on `ids` (B, T), one block per float64 forward (memory of one block)."""
    m = copy.deepcopy(model).double().eval()
    ad = get_adapter(m)
    L = ad.n_layers
    norm = ad.norms()[-1].module
    weight, _, _ = _final_ln_parts(norm)
    w_u = ad.model.get_output_embeddings().weight
    names = ["embed"] + [f"{kind}.{layer}" for layer in range(L) for kind in ("attn", "mlp")]
    err_sum, de_sum = np.zeros((len(ids), len(names))), np.zeros((len(ids), len(names)))
    max_err = recon = 0.0
    for b in range(len(ids)):
        logits, cache = ad.run_with_cache(ids[b:b + 1], names={"resid_pre", "attn_out", "mlp_out"})
        comps = [cache["resid_pre"][0]]
        for layer in range(L):
            comps += [cache["attn_out"][layer], cache["mlp_out"][layer]]
        R = cache["resid_pre"][L]
        full = ad.unembed(ad.final_norm(R))
        total = ad.unembed(ad.final_norm(torch.zeros_like(R)))
        scale = norm_scale(norm, R)
        for i, c in enumerate(comps):
            de = full - ad.unembed(ad.final_norm(R - c))
            total = total + de
            centred = (c - c.mean(-1, keepdim=True)) / scale
            dla = (centred * weight if weight is not None else centred) @ w_u.T
            err_sum[b, i], de_sum[b, i] = float((dla - de).abs().sum()), float(de.abs().sum())
        max_err = max(max_err, float((total - logits).abs().max()))
        recon = max(recon, float((sum(comps) - R).abs().max()))
    return DLAResult(max_err, names, err_sum, de_sum, int(ids.shape[1] * w_u.shape[0]), recon)


def pick_entropy_neurons(model, k: int = 3, null_frac: float = 0.1) -> list[dict]:
    """Last-layer neurons by the Stolfo et al. criterion; rows with neuron, w_out_norm, null_share."""
    ad = get_adapter(model)
    w_out = ad.value_vectors(ad.n_layers - 1).detach().double()  # (d_mlp, d_model)
    w_u = ad.model.get_output_embeddings().weight.detach().double()  # (vocab, d_model)
    _, _, vh = torch.linalg.svd(w_u, full_matrices=False)
    n_null = max(1, int(round(null_frac * vh.shape[0])))
    null = vh[-n_null:]  # (n_null, d_model), smallest singular values
    norms = w_out.norm(dim=1)
    share = (w_out @ null.T).norm(dim=1) / norms.clamp_min(1e-30)
    big = norms >= torch.quantile(norms, 0.75)
    score = torch.where(big, share, torch.full_like(share, -1.0))
    top = torch.argsort(score, descending=True)[:k]
    return [dict(neuron=int(i), w_out_norm=float(norms[i]), null_share=float(share[i]),
                 norm_rank_pct=float((norms < norms[i]).double().mean())) for i in top]


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


@torch.no_grad()
def ablate_neurons(model, ids: torch.Tensor, neurons: list[int]) -> list[dict]:
    """Mean-ablate each neuron of the last MLP layer (its mean activation over `ids`), one block per float64
    forward. Per neuron, arrays of shape (B, T) (block, position): `total` = |dH| with the final norm
    recomputed (rerun), `direct` = |dH| with the final-norm scale frozen at its clean value, `via_norm` =
    |dH_total - dH_direct| (the part that goes through the norm's scale), `dloss` = |d next-token loss|
    (position T-1 has no target: 0); and the mean activation used."""
    m = copy.deepcopy(model).double().eval()
    ad = get_adapter(m)
    last = ad.n_layers - 1
    norm = ad.norms()[-1].module
    w_out = ad.value_vectors(last)
    clean = []
    for b in range(len(ids)):
        logits, cache = ad.run_with_cache(ids[b:b + 1], names={"resid_pre", "mlp_post"})
        clean.append((logits, cache["mlp_post"][last], cache["resid_pre"][ad.n_layers]))
    means = {n: float(torch.cat([a[..., n].flatten() for _, a, _ in clean]).mean()) for n in neurons}

    def nll(lg, tgt):
        return -lg[:, :-1].log_softmax(-1).gather(-1, tgt[..., None])[..., 0]

    rows = []
    for n in neurons:
        out = {k: np.zeros(ids.shape) for k in ("total", "direct", "via_norm", "dloss")}
        for b, (logits, act, R) in enumerate(clean):
            abl = _ablated_logits(m, ad, last, ids[b:b + 1], n, means[n])
            R_abl = R + (means[n] - act[..., n])[..., None] * w_out[n]
            direct = ad.unembed(norm_with_scale(norm, R_abl, norm_scale(norm, R)))
            h0 = _entropy(logits)
            s_total, s_direct = _entropy(abl) - h0, _entropy(direct) - h0
            tgt = ids[b:b + 1, 1:]
            out["total"][b] = s_total.abs()[0].cpu().numpy()
            out["direct"][b] = s_direct.abs()[0].cpu().numpy()
            out["via_norm"][b] = (s_total - s_direct).abs()[0].cpu().numpy()
            out["dloss"][b, :-1] = (nll(abl, tgt) - nll(logits, tgt)).abs()[0].cpu().numpy()
        rows.append(dict(neuron=int(n), mean_activation=means[n], **out))
    return rows


def _ablated_logits(m, ad, layer: int, ids: torch.Tensor, neuron: int, value: float) -> torch.Tensor:
    """Logits with MLP hidden unit `neuron` of `layer` set to `value` (the adapter's mlp.hook_post)."""

    def fix(post: torch.Tensor, hook) -> torch.Tensor:
        post = post.clone()
        post[..., neuron] = value
        return post

    return ad.run_with_hooks(ids, fwd_hooks=[(f"blocks.{layer}.mlp.hook_post", fix)])


def pooled_ratio(num: np.ndarray, den: np.ndarray, n_boot: int) -> tuple[float, tuple[float, float], int]:
    """sum(num) / sum(den) over neurons and positions, CI by resampling BLOCKS (the units): num, den are
    (neurons, B, T) or (B, T) arrays; returns (ratio, ci, number of blocks)."""
    num_b = np.asarray(num).reshape(-1, *np.shape(num)[-2:]).sum(axis=(0, 2))
    den_b = np.asarray(den).reshape(-1, *np.shape(den)[-2:]).sum(axis=(0, 2))
    value, ci = ratio_ci(num_b, den_b, n_boot=n_boot)
    return value, ci, len(num_b)
