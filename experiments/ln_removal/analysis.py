"""Mechanistic checks of LN-free models: direct logit attribution (DLA) and confidence/entropy neurons.

DLA. Components of the final residual R = embed + sum_l attn_out[l] + sum_l mlp_out[l] (GPT-2: token +
position embedding, each attention block output, each MLP output). The direct effect of component c is
    DE_c = logits(R) - logits(R - c)            (final norm recomputed, as run_analysis.py's "direct effect")
and the bias term is logits(0) = W_U b_f. When the final norm is affine (LN-free), sum_c DE_c + logits(0)
equals the logits exactly; with a real LayerNorm it does not. We report max |sum - logits| over positions
and the whole vocabulary, and per component the NMAE between the cached-scale DLA, W_U((c - mean c) / s * w)
with s the clean per-token scale, and DE_c (mean |DLA - DE| / mean |DE|). Computed in float64 so the LN-free
error is at double-precision level.

Confidence (entropy) neurons (Stolfo et al. 2024 criterion): last-layer MLP neurons whose output weight has a
large norm (top quarter) and the largest share of its norm in the unembedding's (effective) null space, the
span of the right singular vectors of W_U with the smallest `null_frac` of singular values. Each is
mean-ablated; the total effect on the entropy of the next-token distribution (rerun, final norm recomputed)
is compared with the direct effect (same residual change, final-norm scale frozen at its clean value).
With LN the total effect exceeds the direct one (the neuron acts through the norm scale); without LN they
coincide, so that mechanism is gone.
"""
from __future__ import annotations

import copy

import torch

from experiments.lm.arch import get_adapter


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


@torch.no_grad()
def dla_check(model, ids: torch.Tensor) -> tuple[float, list[dict]]:
    """(max |sum of direct effects + bias term - logits|, per-component rows) on `ids` (B, T), float64."""
    m = copy.deepcopy(model).double().eval()
    ad = get_adapter(m)
    L = ad.n_layers
    logits, cache = ad.run_with_cache(ids, names={"resid_pre", "attn_out", "mlp_out"})
    comps = [("embed", cache["resid_pre"][0])]
    for layer in range(L):
        comps += [(f"attn.{layer}", cache["attn_out"][layer]), (f"mlp.{layer}", cache["mlp_out"][layer])]
    R = cache["resid_pre"][L]
    norm = get_adapter(m).norms()[-1].module
    full = ad.unembed(ad.final_norm(R))
    total = ad.unembed(ad.final_norm(torch.zeros_like(R)))
    scale = norm_scale(norm, R)
    weight, _, _ = _final_ln_parts(norm)
    rows = []
    for name, c in comps:
        de = full - ad.unembed(ad.final_norm(R - c))
        total = total + de
        centred = (c - c.mean(-1, keepdim=True)) / scale
        dla = (centred * weight if weight is not None else centred) @ ad.model.get_output_embeddings().weight.T
        rows.append(dict(component=name, nmae_dla_vs_de=float((dla - de).abs().mean() / de.abs().mean().clamp_min(1e-30)),
                         mean_abs_de=float(de.abs().mean())))
    err = float((total - logits).abs().max())
    recon = float((sum(c for _, c in comps) - R).abs().max())
    rows.append(dict(component="residual_reconstruction", nmae_dla_vs_de=float("nan"), mean_abs_de=recon))
    return err, rows


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
    """Per neuron: mean |dH| total (rerun) and direct (frozen final-norm scale), mean |dloss| total; per-token
    arrays _per_token_total/_direct (|dH|) and _per_token_ln = |dH_total - dH_direct| (the part through the norm)."""
    m = copy.deepcopy(model).double().eval()
    ad = get_adapter(m)
    last = ad.n_layers - 1
    logits, cache = ad.run_with_cache(ids, names={"resid_pre", "mlp_post"})
    act = cache["mlp_post"][last]  # (B, T, d_mlp)
    R = cache["resid_pre"][ad.n_layers]
    norm = ad.norms()[-1].module
    scale = norm_scale(norm, R)
    h0 = _entropy(logits)
    tgt = ids[:, 1:]

    def nll(lg):
        return -lg[:, :-1].log_softmax(-1).gather(-1, tgt[..., None])[..., 0]

    loss0 = nll(logits)
    w_out = ad.value_vectors(last)
    rows = []
    for n in neurons:
        mean = act[..., n].mean()

        def hook(module, args):
            x = args[0].clone()
            x[..., n] = mean
            return (x,)

        handle = ad.mlp_out_proj(last).register_forward_pre_hook(hook)
        try:
            abl = m(input_ids=ids).logits
        finally:
            handle.remove()
        R_abl = R + (mean - act[..., n])[..., None] * w_out[n]
        direct = ad.unembed(norm_with_scale(norm, R_abl, scale))
        s_total, s_direct = _entropy(abl) - h0, _entropy(direct) - h0
        d_total, d_direct = s_total.abs(), s_direct.abs()
        rows.append(dict(neuron=int(n), mean_abs_dentropy_total=float(d_total.mean()),
                         mean_abs_dentropy_direct=float(d_direct.mean()),
                         mean_abs_dloss_total=float((nll(abl) - loss0).abs().mean()),
                         mean_activation=float(mean), _per_token_total=d_total.flatten().numpy(),
                         _per_token_direct=d_direct.flatten().numpy(),
                         _per_token_ln=(s_total - s_direct).abs().flatten().numpy()))
    return rows

