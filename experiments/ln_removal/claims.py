"""LayerNorm removal (Heimersheim 2409.13710; Baroni et al. 2507.02559): the papers' statements and tests.

Sources (../shared/papers/tinystories_ln.md part B): Heimersheim's own blog table and Baroni et al.'s model
cards / repository are the authors' own (`paper`); numbers the notes derive from them ([I]) say so in
`source`. At mini scale the TinyStories-sweep GPT-2s stand in for GPT-2. The base models come from that sweep;
this result varies the fine-tuning seed (section `seed`) and, through `with_seed`, the base model's seed.

Each verdict is a plain function below (unit-tested with a holds and a fails input, and with the papers' own
numbers where the notes have them); `evaluate_claims` only pulls the numbers out of the CSVs. Checks that hold
by construction (the DLA sum identity of any affine final map, the LN-free model having no path through the
norm) are sanity checks, not claims.

CLI: python -m experiments.ln_removal.claims --ce ce.csv --dla dla.csv --neurons neurons.csv \
        --scaling-fit scaling_fit.csv --converge converge.csv --thresholds '{"max_rel_delta_ce": 0.03, ...}' \
        --scale mini --out claims.csv --sanity sanity.csv --section report_section.md
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats as st

from experiments.report.claims import (
    ClaimsOutput,
    ClaimSpec,
    Decision,
    SanitySpec,
    claims_main,
    holds,
    reproduced_if,
    rows_where,
)

R = "ln_removal"

# The papers' own CE numbers (notes B3 [R]): (CE LN-free, CE of the reference fine-tuned with LN kept).
HEIMERSHEIM_OWT = (3.014, 2.989)  # blog table, GPT-2 small, OpenWebText; 500M tokens, another protocol
BARONI_OWT = {  # model cards (README table), OWT val, LN-free vs vanilla, the *_aux schedules this pipeline runs
    "gpt2": (3.0797, 3.0126, 300), "gpt2-medium": (2.7642, 2.7390, 500),
    "gpt2-large": (2.6384, 2.6240, 600), "gpt2-xl": (2.5052, 2.4799, 800),
}
BARONI_EVAL_BLOCKS = 4400  # OWT val 4.5M tokens in 1024-token chunks (pile_eval.py), the papers' n
# Fine-tuning tokens of the released *_aux runs (configs [R]; tokens = steps x tokens/step [I]) per size (params)
BARONI_BUDGETS = {124e6: 157e6, 355e6: 259e6, 774e6: 310e6, 1.56e9: 413e6}


def _rel(d: tuple[float, float]) -> str:
    return f"{d[0] - d[1]:+.4f} nats = {(d[0] - d[1]) / d[1]:+.2%} of {d[1]}"


CE_SMALL = ClaimSpec(
    R, "small_ce_cost", "LayerNorm can be removed from a trained GPT-2 by fine-tuning at a small cross-entropy cost "
    "relative to a control fine-tuned for the same steps with LN kept.",
    "Baroni 2507.02559 model cards, OWT val, LN-free vs vanilla (gpt2_aux, the protocol run here; mini "
    "anneals to lr/10 as Heimersheim, config ln_removal.train.min_lr, and first trains each base on with LN kept "
    "towards a loss plateau, ln_removal.converge); Heimersheim "
    "blog table (other protocol) beside it", "paper",
    f"small: {_rel(BARONI_OWT['gpt2'][:2])} (Baroni gpt2_aux, 300 steps); Heimersheim {_rel(HEIMERSHEIM_OWT)} "
    "vs FT-with-LN",
    "relative ΔCE = [CE(LN-free) - CE(control)] / CE(control) on held-out blocks, paired bootstrap CI over blocks "
    "(control CE taken as fixed): reproduced when the CI upper bound < max_rel_delta_ce. The control also learns "
    "more than the LN-free run when the base is not converged, so the same gap vs the original base brackets the "
    "cost from below: not_reproduced when that lower end's CI lower bound > max_rel_delta_ce, "
    "not_testable_at_scale when the bracket straddles it",
    min_n=30, n_unit="held-out blocks")
CE_XL = dataclasses.replace(
    CE_SMALL, claim_id="xl_ce_cost", claim="GPT-2 XL without LayerNorm loses only ~0.03 nats of cross-entropy.",
    source="Baroni 2507.02559 abstract ('+0.03') = model card, OWT val, LN-free vs vanilla",
    paper_value=f"{_rel(BARONI_OWT['gpt2-xl'][:2])} (gpt2-xl_aux, 800 steps)",
    test="paper scale with gpt2-xl only; the small_ce_cost rule on the XL model")
DLA = ClaimSpec(
    R, "dla_exact", "Direct logit attribution with the cached final-norm scale misstates the components' direct "
    "effects in the original LN model, and equals them (is exact) in the LN-free model.",
    "Baroni 2507.02559 abstract; mech_interp/attention_head_attribution/run_analysis.py (NMAE metric)", "paper",
    "LN-free: exact (by construction); original: approximate (the paper's NMAE values were not read)",
    "per-component NMAE = Σ|DLA_c - DE_c| / Σ|DE_c| (DE_c: final norm recomputed without c), mean over components "
    "(embeddings, each attention block, each MLP), float64, CI resampling held-out blocks: reproduced when the "
    "original's CI lower bound > dla_orig_nmae_min and the LN-free value < dla_free_nmae_tol; an original whose "
    "DLA is already accurate is not_reproduced (the paper's contrast does not exist in that model)",
    min_n=8, n_unit="held-out blocks")
NEURONS = ClaimSpec(
    R, "confidence_neurons_inactive", "Confidence (entropy) neurons, which in the original model act on the "
    "entropy through the final norm, are inactive in the LN-free model: their total entropy effect drops.",
    "Baroni 2507.02559 abstract; mech_interp/entropy_neurons/ablate_all_models.py", "paper",
    "inactive in LN-free models (GPT-2 small neurons 584, 2123, 2870; effect sizes not read)",
    "last-layer neurons picked by the Stolfo criterion in the original, mean-ablated, pooled: (premise) in the "
    "original the total entropy effect is a multiple of the direct one, amplification Σ|ΔH_total| / Σ|ΔH_direct| "
    "with CI lower bound > min_norm_amplification, else not_testable_at_scale (no confidence neurons to switch "
    "off); then reproduced when Σ|ΔH_total(LN-free)| / Σ|ΔH_total(control)| has CI upper bound < "
    "max_total_ratio. CIs resample held-out blocks",
    min_n=8, n_unit="held-out blocks")
SCALING = ClaimSpec(
    R, "sublinear_data", "The fine-tuning data needed to remove LN grows sublinearly with model size.",
    "Baroni repo config.py @a15a638: *_aux budgets 157M/259M/310M/413M tokens for 124M..1.56B params; the slope "
    "0.37 is derived from these budgets by the notes [I], not the paper's own fit", "paper",
    "log-log slope of tokens on params ~0.37 (from the budgets)",
    "per model size, tokens needed = the smallest fine-tuning budget tried whose relative ΔCE meets the "
    "small_ce_cost target (a size counts only when a smaller budget tried missed it; otherwise the number is an "
    "upper bound); OLS slope of log tokens on log non-embedding params with a t CI: reproduced when the CI upper "
    "bound < 1",
    min_n=3, n_unit="model sizes with uncensored tokens-to-target")
PAPER_EVALS = ClaimSpec(
    R, "pile_hellaswag", "LN-free GPT-2 keeps The Pile CE and HellaSwag accuracy close to the original.",
    "Heimersheim blog table; Baroni model cards", "paper",
    "Pile +0.046 (small, Heimersheim); HellaSwag 29.54% vs 29.82%; XL unfiltered Pile mean 130.2 (rare tokens)",
    "not implemented: The Pile and HellaSwag evaluations (not available offline)")
SMOLLM = ClaimSpec(
    R, "rmsnorm_smollm2", "RMSNorm removal works on a real pretrained Llama-architecture LM (SmolLM2-135M).",
    "issue text (mini option)", "extension", "not a paper claim; optional extension",
    "not run: SmolLM2-135M fine-tuning (and the Llama attention split) is out of the 2-core mini budget, and the "
    "removal code implements the GPT-2 c_attn split only")

DLA_SUM = SanitySpec(
    R, "dla_sum_identity", "In the LN-free model the components' direct effects plus the bias term sum to the "
    "logits.", "< sanity_float_tol",
    "an identity of any affine final map (it holds after 30 fine-tuning steps as after convergence); float64 "
    "max |Σ_c DE_c + W_U b_f - logit|. A failure means the export or the schedule left a real norm in place")
NO_NORM_PATH = SanitySpec(
    R, "neurons_no_norm_path", "In the LN-free model no part of a neuron's entropy effect goes through the final "
    "norm.", "< sanity_float_tol",
    "Σ|ΔH_total - ΔH_direct| / Σ|ΔH_total| over the picked neurons: 0 by construction once ln_f is affine")


# --------------------------------------------------------------------------- verdict rules


@dataclasses.dataclass(frozen=True)
class BasePlateau:
    """The last round of converge.py for one base: was the plateau reached before the cap?"""
    converged: bool
    rounds: int
    last_gain: float
    tol: float


def base_plateau(converge: pd.DataFrame, model: str) -> BasePlateau | None:
    """From the rounds table (aggregate's converge.csv); None when the base was used as it is (no rows)."""
    mine = converge[converge.model_id == model] if len(converge) else converge
    if mine.empty:
        return None
    last = mine.sort_values("round").iloc[-1]
    return BasePlateau(bool(last.converged), int(last["round"]), float(last.rel_gain), float(last.tol))


def small_ce_cost(delta: float, ci: tuple[float, float] | None, ce_control: float, n_blocks: int | None,
                  max_rel: float, spec: ClaimSpec = CE_SMALL, base: BasePlateau | None = None,
                  vs_original: tuple[float, tuple[float, float] | None, float] | None = None) -> Decision:
    """Relative removal cost below max_rel, decided on a bracket when the base may still be learning.

    The control keeps LN and trains on; if the base is not converged it also learns more in the same steps than
    the LN-free run (LN speeds optimisation), so ΔCE vs the control over-states the removal cost, and ΔCE vs the
    original base, which ignores what the LN-free run itself learned, under-states it:
        ΔCE/CE vs original  <=  removal cost  <=  ΔCE/CE vs control
    (assuming the LN-free run learns no more than the control and not less than nothing). Reproduced when the
    upper end's CI upper bound is below max_rel; not_reproduced when the lower end's CI lower bound is above it;
    otherwise not_testable_at_scale (the bracket straddles the threshold: the base is too far from converged to
    tell). With a converged base (the papers' GPT-2s) both ends agree. `vs_original` = (ΔCE vs original, its CI,
    CE of the original); without it (the papers' own numbers: LN-free vs vanilla) the control end decides.
    `base`: the rounds that brought the base towards its plateau (converge.py), reported in the notes."""
    if gate := spec.gate(n_blocks):
        return gate
    rel = delta / ce_control
    rel_ci = None if ci is None else (ci[0] / ce_control, ci[1] / ce_control)
    ci_txt = "" if ci is None else f" [{ci[0]:+.4f}, {ci[1]:+.4f}]"
    notes = f"ΔCE vs control {delta:+.4f}{ci_txt} nats, control CE {ce_control:.4f}; target < {max_rel:.1%}"
    if base is not None:
        notes += (f"; base trained {base.rounds} LN-kept round(s) first, last gain {base.last_gain:.2%} "
                  + ("(plateau)" if base.converged else f"(no plateau: tol {base.tol:.2%})"))
    if holds(*(rel_ci or (None, None)), rel, below=max_rel):
        verdict = reproduced_if(True)
    elif vs_original is None:
        verdict = reproduced_if(False)
    else:
        d_o, ci_o, ce_o = vs_original
        lo = d_o / ce_o if ci_o is None else ci_o[0] / ce_o
        notes += f"; bracket: removal cost between {d_o / ce_o:+.2%} (vs original, CI low {lo:+.2%}) and {rel:+.2%}"
        if holds(*(None, None) if ci_o is None else (ci_o[0] / ce_o, ci_o[1] / ce_o), d_o / ce_o, above=max_rel):
            verdict = reproduced_if(False)
        else:
            return Decision("not_testable_at_scale", rel, rel_ci, n_blocks,
                            notes + f": it straddles {max_rel:.1%}; the control's own learning (the base is not "
                                    "converged) cannot be told apart from the removal cost")
    return Decision(verdict, rel, rel_ci, n_blocks, notes)


def dla_exact(orig_nmae: float, orig_ci: tuple[float, float] | None, free_nmae: float, n_blocks: int | None,
              orig_min: float, free_tol: float) -> Decision:
    """DLA inexact in the original (NMAE CI above orig_min) and exact in the LN-free model (< free_tol)."""
    if gate := DLA.gate(n_blocks):
        return gate
    inexact = holds(*(orig_ci or (None, None)), orig_nmae, above=orig_min)
    exact = free_nmae < free_tol
    why = ("" if inexact else f"; the original's DLA is not shown to be inexact (NMAE CI not above {orig_min})") + \
          ("" if exact else f"; the LN-free DLA is not exact (NMAE {free_nmae:.2g} >= {free_tol:g})")
    return Decision(reproduced_if(inexact and exact), orig_nmae, orig_ci, n_blocks,
                    f"mean per-component NMAE original {orig_nmae:.3g}, LN-free {free_nmae:.2g}{why}")


def confidence_neurons(amplification: float, amp_ci: tuple[float, float] | None, total_ratio: float,
                       ratio_ci: tuple[float, float] | None, n_blocks: int | None, min_amplification: float,
                       max_total_ratio: float) -> Decision:
    """Premise: the picked neurons act through the norm in the original (amplification CI above the minimum),
    else not testable; claim: the LN-free total effect is below max_total_ratio of the control's."""
    if gate := NEURONS.gate(n_blocks):
        return gate
    amp_txt = f"amplification Σ|ΔH_total|/Σ|ΔH_direct| in the original {amplification:.3g}" + (
        f" [{amp_ci[0]:.3g}, {amp_ci[1]:.3g}]" if amp_ci else "")
    if not holds(*(amp_ci or (None, None)), amplification, above=min_amplification):
        return Decision("not_testable_at_scale", total_ratio, ratio_ci, n_blocks,
                        f"no confidence neurons in the original: {amp_txt}, not above {min_amplification} (the norm "
                        "does not amplify these neurons' entropy effect, so there is no norm-mediated effect to "
                        "switch off)")
    ok = holds(*(ratio_ci or (None, None)), total_ratio, below=max_total_ratio)
    return Decision(reproduced_if(ok), total_ratio, ratio_ci, n_blocks,
                    f"{amp_txt}; LN-free total effect / control's {total_ratio:.3g} (target < {max_total_ratio})")


def tokens_to_target(points: pd.DataFrame) -> tuple[float | None, bool]:
    """(tokens, censored) for one model from rows with `tokens` and `meets` (bool): the smallest budget that
    meets the target; censored when no smaller budget tried missed it (then it is only an upper bound)."""
    pts = points.sort_values("tokens")
    ok = pts[pts["meets"]]
    if ok.empty:
        return None, True
    first = float(ok["tokens"].iloc[0])
    return first, not bool((~pts["meets"] & (pts["tokens"] < first)).any())


def sublinear_data(params: list[float], tokens: list[float]) -> Decision:
    """Slope of log tokens-needed on log params over the sizes given (uncensored ones only)."""
    n = len(params)
    if gate := SCALING.gate(n):
        return gate
    x, y = np.log(np.asarray(params, float)), np.log(np.asarray(tokens, float))
    fit = st.linregress(x, y)
    half = st.t.ppf(0.975, n - 2) * fit.stderr
    ci = (float(fit.slope - half), float(fit.slope + half))
    return Decision(reproduced_if(holds(*ci, float(fit.slope), below=1.0)), float(fit.slope), ci, n,
                    f"{n} sizes; slope < 1 is sublinear")


# --------------------------------------------------------------------------- reading the CSVs


def _ci(r) -> tuple[float, float] | None:
    return None if pd.isna(r.ci_low) or pd.isna(r.ci_high) else (float(r.ci_low), float(r.ci_high))


def _tol(spec: SanitySpec, th: dict) -> SanitySpec:
    return dataclasses.replace(spec, expected=f"< {th['sanity_float_tol']:g}")


def _is_xl(model: str) -> bool:
    return "xl" in model.lower()


def _ce_spec(spec: ClaimSpec, model: str, scale: str) -> ClaimSpec:
    """At paper scale the paper value is Baroni's number for that size (the protocol run)."""
    if scale == "paper" and model in BARONI_OWT:
        lnf, van, steps = BARONI_OWT[model]
        return dataclasses.replace(spec, paper_value=f"{_rel((lnf, van))} (Baroni {model}_aux, {steps} steps)")
    return spec


def ce_claim(ce: pd.DataFrame, model: str, th: dict, scale: str, base: BasePlateau | None = None):
    d = rows_where(ce, model_id=model, variant="ln_free", metric="delta_ce_vs_control_nats")
    ctrl = rows_where(ce, model_id=model, variant="with_ln", metric="ce_nats")
    spec = _ce_spec(CE_XL if _is_xl(model) else CE_SMALL, model, scale)
    if d.empty or ctrl.empty:
        return spec.row(spec.not_testable("no LN-free / control CE rows"), scale=scale, model=model)
    r = d.iloc[0]
    orig = rows_where(ce, model_id=model, variant="ln_free", metric="delta_ce_vs_original_nats")
    ce_orig = rows_where(ce, model_id=model, variant="original", metric="ce_nats")
    vs_orig = None
    if len(orig) and len(ce_orig):
        o = orig.iloc[0]
        vs_orig = (float(o.value), _ci(o), float(ce_orig.value.iloc[0]))
    dec = small_ce_cost(float(r.value), _ci(r), float(ctrl.value.iloc[0]), int(r.n), th["max_rel_delta_ce"], spec,
                        base, vs_orig)
    if vs_orig is not None:  # what the control gained from the same fine-tuning is part of the gap: say how much
        gain = vs_orig[0] - float(r.value)  # CE(control) - CE(original)
        dec = dataclasses.replace(dec, notes=f"{dec.notes}; LN-free vs original {vs_orig[0]:+.4f} nats, "
                                              f"control vs original {gain:+.4f}")
    return spec.row(dec, scale=scale, model=model)


def evaluate_claims(ce, dla, neurons, fit, th: dict, scale: str,
                    converge: pd.DataFrame | None = None) -> tuple[list, list]:
    rows, sanity = [], []
    models = sorted(ce.model_id.unique())
    for m in models:
        base = base_plateau(converge, m) if converge is not None else None
        rows.append(ce_claim(ce, m, th, scale, base))

        mean = rows_where(dla, model_id=m, component="mean_over_components", metric="nmae_dla_vs_de")
        o, f = rows_where(mean, variant="original"), rows_where(mean, variant="ln_free")
        if len(o) and len(f):
            o, f = o.iloc[0], f.iloc[0]
            c = rows_where(mean, variant="with_ln")
            dec = dla_exact(float(o.value), _ci(o), float(f.value), int(o.n), th["dla_orig_nmae_min"],
                            th["dla_free_nmae_tol"])
            extra = f"; control (LN kept) {float(c.value.iloc[0]):.3g}" if len(c) else ""
            rows.append(DLA.row(dataclasses.replace(dec, notes=dec.notes + extra), scale=scale, model=m))
        err = rows_where(dla, model_id=m, variant="ln_free", component="all", metric="max_abs_sum_error")
        if len(err):
            v = float(err.value.iloc[0])
            e_orig = rows_where(dla, model_id=m, variant="original", component="all", metric="max_abs_sum_error").value
            sanity.append(_tol(DLA_SUM, th).row(scale=scale, model=m, value=v, passed=v < th["sanity_float_tol"],
                                      notes=f"original (LN) model: {float(e_orig.iloc[0]):.3g}" if len(e_orig) else ""))

        pooled = rows_where(neurons, model_id=m, neuron=-1)
        amp = rows_where(pooled, variant="original", metric="amplification_total_over_direct")
        ratio = rows_where(pooled, variant="ln_free", metric="total_ratio_vs_control")
        if len(amp) and len(ratio):
            a, r = amp.iloc[0], ratio.iloc[0]
            dec = confidence_neurons(float(a.value), _ci(a), float(r.value), _ci(r), int(a.n),
                                     th["min_norm_amplification"], th["max_total_ratio"])
            picked = sorted(rows_where(neurons, model_id=m, variant="original").neuron.unique().tolist())
            ctrl_amp = rows_where(pooled, variant="with_ln", metric="amplification_total_over_direct").value
            extra = f"; neurons {[n for n in picked if n >= 0]}" + (
                f"; control amplification {float(ctrl_amp.iloc[0]):.3g}" if len(ctrl_amp) else "")
            rows.append(NEURONS.row(dataclasses.replace(dec, notes=dec.notes + extra), scale=scale, model=m))
        share = rows_where(pooled, variant="ln_free", metric="ln_mediated_share")
        if len(share):
            v = float(share.value.iloc[0])
            sanity.append(_tol(NO_NORM_PATH, th).row(scale=scale, model=m, value=v, passed=v < th["sanity_float_tol"]))

    if not any(_is_xl(m) for m in models):
        rows.append(CE_XL.row(CE_XL.not_testable("needs GPT-2 XL + OpenWebText (paper scale, gpt2-xl in models)"),
                              scale=scale, model="gpt2-xl"))
    rows.append(scaling_claim(fit, scale, models))
    rows.append(PAPER_EVALS.row(PAPER_EVALS.not_testable("The Pile / HellaSwag evaluations are not implemented "
                                                         "(not available offline)"), scale=scale, model="gpt2"))
    rows.append(SMOLLM.row(SMOLLM.not_testable("not run (see test)"), scale=scale, model="SmolLM2-135M"))
    return rows, sanity


def scaling_claim(fit: pd.DataFrame, scale: str, models: list[str]):
    per = "; ".join(f"{r.model_id} ({int(r.params_non_embedding)} params): "
                    + ("target not met" if pd.isna(r.tokens_to_target) else
                       f"{'<= ' if r.censored else ''}{int(r.tokens_to_target)} tokens")
                    + f" ({int(r.n_budgets)} budget{'' if int(r.n_budgets) == 1 else 's'})" for r in fit.itertuples())
    ok = fit[fit.tokens_to_target.notna() & ~fit.censored.astype(bool)]
    dec = sublinear_data(ok.params_non_embedding.tolist(), ok.tokens_to_target.tolist())
    return SCALING.row(dataclasses.replace(dec, notes=f"{dec.notes}; per size: {per}" if per else dec.notes),
                       scale=scale, model="+".join(models))


def converge_lines(converge: pd.DataFrame | None) -> list[str]:
    """The LN-kept rounds each base got before removal (none: the bases were used as they are)."""
    if converge is None or converge.empty:
        return []
    lines = ["", "LN-kept rounds before removal (converge.py): val CE on held-out blocks from the start of the val "
             "stream, relative gain of each round.", "",
             "| model | rounds | val CE before → after | gain per round | plateau |", "|---|---|---|---|---|"]
    for m, g in converge.sort_values("round").groupby("model_id", sort=True):
        gains = ", ".join(f"{x:+.1%}" for x in g.rel_gain)
        lines.append(f"| {m} | {len(g)} | {g.val_ce_before.iloc[0]:.4f} → {g.val_ce_after.iloc[-1]:.4f} | {gains} | "
                     f"{'yes' if bool(g.converged.iloc[-1]) else 'no (round cap)'} |")
    return lines


def section(ce, dla, scale: str, rows: list, converge: pd.DataFrame | None = None) -> str:
    lines = [f"Scale: {scale}. Every LayerNorm of a trained GPT-2-architecture model is replaced by a FakeLayerNorm "
             "(centering kept, per-token std frozen to an EMA scalar; ln_1's Q/K and V paths each tracked until "
             "their own event) in the papers' order (ln_2 block by block, ln_1 Q/K, ln_1 V, ln_f) while "
             "fine-tuning continues; a control is fine-tuned for the same steps with LN kept.", "",
             "| model | CE original | CE control | CE LN-free | ΔCE vs control [95% CI] "
             "| DLA NMAE original / LN-free |",
             "|---|---|---|---|---|---|"]
    for m in sorted(ce.model_id.unique()):
        def v(variant, metric="ce_nats"):
            d = rows_where(ce, model_id=m, variant=variant, metric=metric)
            return d.iloc[0] if len(d) else None
        d = v("ln_free", "delta_ce_vs_control_nats")
        mean = rows_where(dla, model_id=m, component="mean_over_components", metric="nmae_dla_vs_de")
        eo, ef = rows_where(mean, variant="original").value, rows_where(mean, variant="ln_free").value
        cells = [f"{x.value:.4f}" if x is not None else "-" for x in (v("original"), v("with_ln"), v("ln_free"))]
        dcell = f"{d.value:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]" if d is not None else "-"
        ecell = f"{eo.iloc[0]:.3g} / {ef.iloc[0]:.2g}" if len(eo) and len(ef) else "-"
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {dcell} | {ecell} |")
    lines += converge_lines(converge)
    lines += ["", "### What differs from the paper", ""]
    ctrl = rows_where(ce, variant="with_ln", metric="ce_nats").value
    ctrl_txt = f"{ctrl.min():.2f}-{ctrl.max():.2f}" if len(ctrl) else "-"
    if scale == "mini":
        lines += ["- Models and data: tiny GPT-2s trained by the TinyStories rules on the synthetic StoryWorld corpus "
                  "(the papers: GPT-2 small to XL on OpenWebText); a few hundred fine-tuning steps of 1,024 tokens "
                  "(the papers: 300-1,000 steps of ~0.5M tokens). The CE threshold is relative to the control's "
                  f"CE (here {ctrl_txt} nats; GPT-2's ~3). The sweep's models (1M tokens) are far from converged, so "
                  "each is first trained on with LN kept, in rounds of the fine-tune's own schedule, until rounds "
                  "stop lowering val CE (the plateau) or the round cap (converge.csv says which; the papers' GPT-2s "
                  "are converged already). 'Original' below is that base. A base still learning lets the control, "
                  "which keeps LN, learn more than the LN-free run in the same steps, so ΔCE vs the control "
                  "over-states the removal cost and ΔCE vs the original under-states it; small_ce_cost decides on "
                  "that bracket and says not testable when it straddles the threshold.",
                  "- Schedule and sigma follow Baroni et al. (EMA of the batch-mean per-token std while real, frozen "
                  "at the switch; aux loss on ln_f-input std uniformity), with the starts and gaps scaled down."]
    untested = [r.model for r in rows if r.claim_id == NEURONS.claim_id and r.verdict == "not_testable_at_scale"]
    if untested:
        lines.append(f"- No confidence neurons in {', '.join(untested)}: the final norm does not amplify the picked "
                     "neurons' entropy effect (see the claim's notes), so there is nothing for LN removal to "
                     "switch off.")
    lines += ["- Not done: the EOT-token special case of the V path; The Pile / HellaSwag evaluations; per-head "
              "(rather than per-attention-block) DLA; SmolLM2 RMSNorm removal.", ""]
    return "\n".join(lines)


def evaluate(args, thresholds: dict) -> ClaimsOutput:
    ce, dla, neurons = pd.read_csv(args.ce), pd.read_csv(args.dla), pd.read_csv(args.neurons)
    fit, converge = pd.read_csv(args.scaling_fit), pd.read_csv(args.converge)
    rows, sanity = evaluate_claims(ce, dla, neurons, fit, thresholds, args.scale, converge)
    return ClaimsOutput(rows, sanity, section(ce, dla, args.scale, rows, converge))


def main(argv: list[str] | None = None) -> None:
    claims_main(__doc__, {"ce": {}, "dla": {}, "neurons": {}, "scaling_fit": {}, "converge": {}}, evaluate, argv=argv)


if __name__ == "__main__":
    main()
