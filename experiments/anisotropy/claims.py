"""Anisotropy and contrastive search (Su & Collier, TMLR 2023): the paper's statements and how each is tested.

Sources (../shared/papers/anisotropy.md): every number comes from the authors' own repository
(yxuansu/Contrastive_Search_Is_What_You_Need: the isotropy README table, the released generations whose rep-n
the notes recompute with SimCTG's code), so `paper`; the stored copies of the paper itself give only the
abstract. The 152334H rerun (robustness rows the paper lacks) is `secondary`.

Each verdict is a plain function below (unit-tested with a holds and a fails input, and with the paper's own
numbers); `evaluate_claims` only pulls the numbers out of the CSVs. At mini scale no paper checkpoint is
measured: the checkpoint claims are not testable and their notes say what mini measured instead (SmolLM2, tiny
GPT-2s trained here and their random-init twins). The decoding claim is measured at both scales; at mini its
coherence comes from a tiny GPT-2 trained here (the scorer), so it is one of the verdicts `make robustness`
checks across training seeds. The padded-batch equivalence of the representations is a sanity check.

CLI: python -m experiments.anisotropy.claims --isotropy isotropy_final.csv --decoding decoding.csv \
        --per-prompt decoding_per_prompt.csv --models JSON --samplers top_k50 nucleus095 typical095 \
        --contrastive contrastive --thresholds '{"anisotropic_below": 0.5, ...}' --scale mini \
        --out claims.csv --sanity sanity.csv --section report_section.md
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd

from experiments.anisotropy.metrics import CONTROL, diversity_of_sums, percentile_ci, prompt_arrays, resamples
from experiments.report.claims import ClaimsOutput, ClaimSpec, Decision, SanitySpec, claims_main, holds, reproduced_if

R = "anisotropy"
FINAL = "final_norm"

# The README table of isotropy_analysis/ (notes 1.3 [R]; the same values on the authors' figure [F]).
PAPER_ISOTROPY = {
    "gpt2": 0.10, "gpt2-medium": 0.25, "gpt2-large": 0.70, "gpt2-xl": 0.72,
    "EleutherAI/gpt-neo-125M": 0.68, "EleutherAI/gpt-neo-1.3B": 0.55, "EleutherAI/gpt-neo-2.7B": 0.60,
    "facebook/opt-125m": 0.75, "facebook/opt-350m": 0.69, "facebook/opt-1.3b": 0.75, "facebook/opt-2.7b": 0.74,
    "facebook/opt-6.7b": 0.70, "facebook/opt-13b": 0.66, "facebook/opt-30b": 0.68,
    "datificate/gpt2-small-spanish": 0.77, "DeepESP/gpt2-spanish-medium": 0.76, "asi/gpt-fr-cased-small": 0.76,
    "pierreguillou/gpt2-small-portuguese": 0.77, "flax-community/gpt2-base-thai": 0.74,
    "colorfulscoop/gpt2-small-ja": 0.72, "skt/kogpt2-base-v2": 0.58, "skt/ko-gpt-trinity-1.2B-v0.5": 0.68,
    "uer/gpt2-chinese-cluecorpussmall": 0.66, "cahya/gpt2-small-indonesian-522M": 0.66,
    "flax-community/gpt2-medium-indonesian": 0.67, "cahya/gpt2-large-indonesian-522M": 0.81,
    "flax-community/gpt2-bengali": 0.62, "surajp/gpt2-hindi": 0.62, "akhooli/gpt2-small-arabic": 0.53,
    "aubmindlab/aragpt2-medium": 0.64, "ml6team/gpt2-small-german-finetune-oscar": 0.83,
    "ml6team/gpt2-medium-german-finetune-oscar": 0.81, "ml6team/gpt2-small-dutch-finetune-oscar": 0.80,
    "ml6team/gpt2-medium-dutch-finetune-oscar": 0.79, "sberbank-ai/rugpt3small_based_on_gpt2": 0.67,
    "sberbank-ai/rugpt3medium_based_on_gpt2": 0.72, "sberbank-ai/rugpt3large_based_on_gpt2": 0.77,
    "LorenzoDeMattei/GePpeTto": 0.69,
}
ANISOTROPIC = ("gpt2", "gpt2-medium")  # the paper's exceptions
# 3.4 table [R] (rep-n [C]): GPT-2-large on 1000 WebText prefixes; coherence under OPT-125m
PAPER_DECODING = {
    "greedy": dict(diversity=5.38, coherence=-0.72), "beam": dict(diversity=4.04, coherence=-0.59),
    "top_k": dict(diversity=91.33, coherence=-2.59), "nucleus": dict(diversity=93.61, coherence=-3.09),
    "typical": dict(diversity=87.98, coherence=-2.45), "contrastive": dict(diversity=92.54, coherence=-1.93),
    "human": dict(diversity=93.62),
}
PAPER_DECODING_N = 1000

ONLY_GPT2 = ClaimSpec(
    R, "only_gpt2_anisotropic", "Only English GPT-2 small and medium are anisotropic; the other checkpoints of "
    "the 16 languages are isotropic.",
    "isotropy_analysis/README.md table (38 checkpoints; the same bars in the authors' figure)", "paper",
    "GPT-2 small 0.10, medium 0.25; every other checkpoint >= 0.53 (ar small), e.g. ko small 0.58",
    "reproduced when the paper checkpoints with pooled isotropy below anisotropic_below are exactly GPT-2 "
    "small and medium (both measured), over at least min_checkpoints paper checkpoints with min_texts texts each",
    min_n=20, n_unit="paper checkpoints")
VALUES = ClaimSpec(
    R, "checkpoint_isotropy", "Each checkpoint's last-layer isotropy matches the paper's value.",
    "isotropy_analysis/README.md table, this checkpoint's row", "paper", "the README value of the checkpoint",
    "reproduced when |ours - paper| <= value_tol (pooled, final norm, first 2000 WIT texts x <= 256 tokens)",
    min_n=200, n_unit="texts")
CONTRASTIVE = ClaimSpec(
    R, "contrastive_human_like", "Contrastive search reaches human-like diversity with coherence above the "
    "samplers (top-k, nucleus, typical).",
    "3.4 table: GPT-2-large on WebText, coherence under OPT-125m (released outputs; rep-n recomputed)", "paper",
    "diversity 92.54 vs human 93.62 (ratio 0.988); coherence -1.93 vs top-k -2.59, nucleus -3.09, typical -2.45",
    "reproduced when the CI lower bound of diversity(contrastive) / diversity(human) is above "
    "human_like_min_ratio and, for every sampler, the CI lower bound of coherence(contrastive) - "
    "coherence(sampler) (paired by prefix, samplers' seeds averaged) is above 0; CIs resample prefixes. "
    "Premise (else not testable): the scorer gives human continuations a higher log-prob after their own prefix "
    "than after another prefix (CI above 0)",
    min_n=8, n_unit="prefixes")
TRAINED = ClaimSpec(
    R, "trained_below_random_init", "Training lowers a GPT-2's last-layer isotropy below that of its random-init "
    "twin (same build and seed, no training).",
    "extension (issue 12: random-init twins as the baseline); not a statement of the paper", "extension",
    "none (the paper measures trained checkpoints only)",
    "per tiny language: reproduced when the trained model's isotropy CI lies wholly below its twin's "
    "(CI high of trained < CI low of twin)", min_n=8, n_unit="texts")
BATCH1 = SanitySpec(
    R, "batch1_equivalence", "Self-similarity from right-padded batches equals batch size 1 (the paper's code).",
    "< sanity_batch_tol",
    "an identity of causal attention with masked padding and positions cumsum(mask) - 1: max |Δ| per text over "
    "the first check_texts texts at the final norm; a failure is a masking or position bug")


# --------------------------------------------------------------------------- verdict rules


def only_gpt2_anisotropic(table: dict[str, float], below: float, min_checkpoints: int,
                          expected: tuple[str, ...] = ANISOTROPIC) -> Decision:
    """table: paper checkpoint id -> our pooled isotropy (only checkpoints with enough texts)."""
    if gate := ONLY_GPT2.gate(len(table), "measured"):
        return gate
    missing = [c for c in expected if c not in table]
    if missing:
        return ONLY_GPT2.not_testable(f"{', '.join(missing)} not measured: the exceptions cannot be checked",
                                      n=len(table))
    low = sorted(c for c, v in table.items() if v < below)
    lowest_other = min(((v, c) for c, v in table.items() if c not in expected), default=(float("nan"), "-"))
    ok = set(low) == set(expected)
    notes = (f"below {below}: {', '.join(f'{c} {table[c]:.2f}' for c in low) or 'none'}; lowest other "
             f"{lowest_other[1]} {lowest_other[0]:.2f}")
    return Decision(reproduced_if(ok), float(lowest_other[0]), None, len(table), notes)


def checkpoint_isotropy(ours: float, ci: tuple[float, float] | None, paper: float, n_texts: int, tol: float,
                        min_texts: int) -> Decision:
    spec = dataclasses.replace(VALUES, min_n=min_texts)
    if gate := spec.gate(n_texts):
        return gate
    ok = abs(ours - paper) <= tol
    return Decision(reproduced_if(ok), ours, ci, n_texts, f"paper {paper:.2f}; |Δ| {abs(ours - paper):.3f} "
                                                         f"(tolerance {tol})")


def contrastive_human_like(ratio: float, ratio_ci: tuple[float, float] | None, coh_diffs: dict[str, tuple],
                           n_prompts: int, min_ratio: float, min_prompts: int,
                           premise: tuple[float, tuple[float, float] | None] | None = None) -> Decision:
    """ratio = diversity(contrastive) / diversity(human); coh_diffs: sampler -> (coherence difference
    contrastive - sampler, its CI or None). Without CIs (the paper's table) the point estimates decide.

    premise: (coherence of human continuations after their own prefix minus after another prefix, CI). A scorer
    whose CI does not lie above 0 does not read the prefix, so it cannot judge coherence: not testable. None
    (the paper's OPT scorers) skips the check."""
    spec = dataclasses.replace(CONTRASTIVE, min_n=min_prompts)
    if gate := spec.gate(n_prompts):
        return gate
    if not coh_diffs:
        return spec.not_testable("no sampler to compare with", n=n_prompts)
    lo, hi = ratio_ci if ratio_ci is not None else (None, None)
    if premise is not None and not holds(*(premise[1] or (None, None)), premise[0], above=0.0):
        ci = premise[1]
        return Decision("not_testable_at_scale", ratio, ratio_ci, n_prompts,
                        f"the coherence scorer does not prefer a human continuation's own prefix to another's "
                        f"(log-prob per token {premise[0]:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
                        + "): it cannot judge coherence; diversity ratio " + f"{ratio:.3f}"
                        + (f" [{lo:.3f}, {hi:.3f}]" if ratio_ci else ""))
    human_like = holds(lo, hi, ratio, above=min_ratio)
    above = {s: holds(*(ci or (None, None)), d, above=0.0) for s, (d, ci) in coh_diffs.items()}
    fails = ([] if human_like else [f"diversity ratio not above {min_ratio}"]) + \
        [f"coherence not above {s}" for s, ok in above.items() if not ok]
    diffs = "; ".join(f"vs {s} {d:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
                      for s, (d, ci) in coh_diffs.items())
    prem = "" if premise is None else f"; scorer premise (own - other prefix) {premise[0]:+.3f}" + (
        f" [{premise[1][0]:+.3f}, {premise[1][1]:+.3f}]" if premise[1] else "")
    notes = f"diversity ratio {ratio:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if ratio_ci else "") + \
        f"; coherence difference {diffs}{prem}" + (f"; fails: {', '.join(fails)}" if fails else "")
    return Decision(reproduced_if(not fails), ratio, ratio_ci, n_prompts, notes)


def trained_below_random_init(trained: tuple[float, float, float], twin: tuple[float, float, float],
                              n_texts: int) -> Decision:
    """(value, ci_low, ci_high) of the trained model and of its twin on the same texts."""
    if gate := TRAINED.gate(n_texts):
        return gate
    ok = trained[2] < twin[1]
    return Decision(reproduced_if(ok), trained[0] - twin[0], None, n_texts,
                    f"trained {trained[0]:.3f} [{trained[1]:.3f}, {trained[2]:.3f}] vs random-init twin "
                    f"{twin[0]:.3f} [{twin[1]:.3f}, {twin[2]:.3f}]; value = trained - twin")


# --------------------------------------------------------------------------- reading the CSVs


def paper_table_decision(below: float, min_checkpoints: int) -> Decision:
    """The rule on the paper's own table (what a faithful paper-scale run would give)."""
    return only_gpt2_anisotropic(dict(PAPER_ISOTROPY), below, min_checkpoints)


def _final(iso: pd.DataFrame, exclude_first: bool = False, measure: str = "pooled") -> pd.DataFrame:
    ex = iso.exclude_first.astype(str).str.lower() == str(exclude_first).lower()
    return iso[(iso.layer == FINAL) & (iso.measure == measure) & ex & (iso.status == "measured")]


def _measured_summary(fin: pd.DataFrame) -> str:
    return "; ".join(f"{r.model_id} {r.lang} {r.isotropy:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]"
                     for r in fin.itertuples())


def isotropy_claims(iso: pd.DataFrame, models: dict, th: dict, scale: str) -> tuple[list, list]:
    rows, sanity = [], []
    fin = _final(iso)
    paper_rows = {}
    for mid, m in models.items():
        pid = m.get("paper_id")
        if m.get("group") != "paper" or pid not in PAPER_ISOTROPY:
            continue
        g = fin[fin.model_id == mid]
        if g.empty:
            continue
        r = g.iloc[0]
        paper_rows[pid] = r
        spec = dataclasses.replace(VALUES, paper_value=f"{PAPER_ISOTROPY[pid]:.2f}", min_n=th["min_texts"],
                                   source=f"{VALUES.source} ({pid})")
        dec = checkpoint_isotropy(float(r.isotropy), (float(r.ci_low), float(r.ci_high)), PAPER_ISOTROPY[pid],
                                  int(r.n_texts), th["value_tol"], th["min_texts"])
        rows.append(spec.row(dec, scale=scale, model=mid))
    enough = {pid: float(r.isotropy) for pid, r in paper_rows.items() if int(r.n_texts) >= th["min_texts"]}
    mini_note = ("mini measures none of the paper's 38 checkpoints (no hub access); it measured "
                 + (_measured_summary(fin) or "nothing")
                 + ". Mini can check the metric code, the decoder and what training does to a tiny GPT-2's "
                 "isotropy; it says nothing about the paper's checkpoints.")
    spec = dataclasses.replace(ONLY_GPT2, min_n=th["min_checkpoints"])
    if enough:
        dec = only_gpt2_anisotropic(enough, th["anisotropic_below"], th["min_checkpoints"])
        if dec.verdict == "not_testable_at_scale":
            dec = dataclasses.replace(dec, notes=f"{dec.notes}; {mini_note}" if scale == "mini" else dec.notes)
        outside = [f"{mid} {float(fin[fin.model_id == mid].isotropy.iloc[0]):.2f}" for mid, m in models.items()
                   if m.get("group") == "robustness" and len(fin[fin.model_id == mid])]
        if outside:
            dec = dataclasses.replace(dec, notes=f"{dec.notes}; outside the paper's list: {', '.join(outside)}")
    else:
        dec = spec.not_testable(mini_note, n=0)
    rows.append(spec.row(dec, scale=scale, model="paper checkpoints (38)"))
    if not paper_rows:
        values = dataclasses.replace(VALUES, min_n=th["min_texts"])
        rows.append(values.row(values.not_testable("no paper checkpoint measured at this scale (see "
                                                   "only_gpt2_anisotropic)", n=0), scale=scale,
                               model="paper checkpoints (38)"))

    # extension: trained tiny GPT-2 vs its random-init twin, per language
    for r in fin[fin.model_kind == "trained_here"].itertuples():
        twin = fin[(fin.model_id == f"{r.model_id}_random_init") & (fin.lang == r.lang)]
        if twin.empty:
            continue
        t = twin.iloc[0]
        dec = trained_below_random_init((r.isotropy, r.ci_low, r.ci_high), (t.isotropy, t.ci_low, t.ci_high),
                                        int(r.n_texts))
        rows.append(TRAINED.row(dec, scale=scale, model=r.model_id))
    for r in iso[(iso.status != "measured") & (iso.model_kind == "trained_here")].itertuples():
        rows.append(TRAINED.row(TRAINED.not_testable(r.status, n=0), scale=scale, model=r.model_id))

    chk = iso[iso.measure == "batch1_max_abs_diff"]
    tol = th["sanity_batch_tol"]
    for mid, g in chk.groupby("model_id", sort=True):
        v = float(g.self_similarity.max())
        sanity.append(dataclasses.replace(BATCH1, expected=f"< {tol:g}").row(
            scale=scale, model=mid, value=v, passed=v < tol, notes=f"languages {', '.join(sorted(g.lang))}"))
    return rows, sanity


def decoding_stats(per: pd.DataFrame, contrastive: str, samplers: list[str], n_boot: int = 1000,
                   seed: int = 0) -> dict:
    """Point estimates and prefix-bootstrap CIs (one set of resamples for every statistic): diversity ratio
    contrastive / human, the paired coherence differences contrastive - sampler (a prefix's seeds averaged
    first), and the scorer premise: coherence of a human continuation after its own prefix minus after another."""
    ids = np.array(sorted(per[per.method == "human"].prompt_id.unique()))
    arr = {m: prompt_arrays(per[per.method == m], ids) for m in [contrastive, "human", CONTROL] + samplers
           if (per.method == m).any()}
    picks = resamples(len(ids), n_boot, seed)
    full = np.arange(len(ids))[None]

    def ratio(idx):
        return diversity_of_sums(arr[contrastive][1][idx]) / diversity_of_sums(arr["human"][1][idx])

    def diff(a, b):
        d = arr[a][2] - arr[b][2]
        return float(np.nanmean(d)), percentile_ci(np.nanmean(d[picks], axis=1))

    out = {"n_prompts": len(ids), "ratio": float(ratio(full)[0]), "ratio_ci": percentile_ci(ratio(picks))}
    out["diffs"] = {s: diff(contrastive, s) for s in samplers}
    out["premise"] = diff("human", CONTROL) if CONTROL in arr else None
    return out


def decoding_claim(summary: pd.DataFrame, per: pd.DataFrame, contrastive: str, samplers: list[str], th: dict,
                   scale: str):
    st = decoding_stats(per, contrastive, samplers)
    dec = contrastive_human_like(st["ratio"], st["ratio_ci"], st["diffs"], st["n_prompts"],
                                 th["human_like_min_ratio"], th["min_prompts"], premise=st["premise"])
    s = summary.set_index("method")
    ctx = "; ".join(f"{m} div {s.loc[m, 'diversity']:.1f} coh {s.loc[m, 'coherence']:.2f}" for m in s.index)
    scorer, gen = s["coherence_scorer"].iloc[0], s["generator"].iloc[0]
    dec = dataclasses.replace(dec, notes=f"{dec.notes}; generator {gen}, coherence scorer {scorer}; {ctx}")
    return dataclasses.replace(CONTRASTIVE, min_n=th["min_prompts"]).row(dec, scale=scale,
                                                                         model=f"{gen} (scored by {scorer})")


def section(iso: pd.DataFrame, summary: pd.DataFrame | None, scale: str, rows: list) -> str:
    fin = iso[(iso.layer == FINAL) | (iso.status != "measured")]
    lines = [f"Scale: {scale}. Isotropy = 1 - self-similarity of a sequence's last-layer states after the final "
             "norm (the paper's code: pooled over all pairs of distinct positions; also the per-sequence mean). "
             "95% bootstrap CIs over texts.", "",
             "| model | language | isotropy pooled [95% CI] | without position 0 | per-sequence mean | texts "
             "| tokens |", "|---|---|---|---|---|---|---|"]
    keys = fin[["model_id", "lang"]].drop_duplicates().itertuples(index=False)
    for mid, lang in keys:
        g = fin[(fin.model_id == mid) & (fin.lang == lang)]
        if (g.status != "measured").all():
            lines.append(f"| {mid} | {lang} | {g.status.iloc[0]} | - | - | 0 | - |")
            continue

        def cell(ex, measure):
            x = _final(g, ex, measure)
            return "-" if x.empty else f"{x.isotropy.iloc[0]:.3f} [{x.ci_low.iloc[0]:.3f}, {x.ci_high.iloc[0]:.3f}]"
        p = _final(g)
        lines.append(f"| {mid} | {lang} | {cell(False, 'pooled')} | {cell(True, 'pooled')} | "
                     f"{cell(False, 'per_sequence_mean')} | {int(p.n_texts.iloc[0])} | {int(p.n_tokens.iloc[0])} |")
    if summary is not None:
        lines += ["", f"Decoding: generator {summary.generator.iloc[0]}, coherence scorer "
                  f"{summary.coherence_scorer.iloc[0]} (mean log-prob per continuation token), n-grams of "
                  f"{summary.ngram_unit.iloc[0]}s; samplers pool their seeds (diversity per seed: mean ± std).", "",
                  "| method | rep-2 | rep-3 | rep-4 | diversity [95% CI] | per seed | length (words) | coherence "
                  "[95% CI] | MAUVE |", "|---|---|---|---|---|---|---|---|---|"]
        for r in summary.itertuples():
            coh = "-" if pd.isna(r.coherence) else \
                f"{r.coherence:.2f} [{r.coherence_ci_low:.2f}, {r.coherence_ci_high:.2f}]"
            seeds = f"{r.diversity_seed_mean:.1f} ± {r.diversity_seed_std:.1f}" if r.n_seeds > 1 else "-"
            lines.append(f"| {r.method} | {r.rep_2:.2f} | {r.rep_3:.2f} | {r.rep_4:.2f} | {r.diversity:.2f} "
                         f"[{r.diversity_ci_low:.2f}, {r.diversity_ci_high:.2f}] | {seeds} | {r.length_words:.1f} "
                         f"| {coh} | not run |")
    lines += ["", "### What differs from the paper", ""]
    if scale == "mini":
        lines += ["- Texts: Debian fortunes (short quotations, cut to the configured tokens), not WIT captions "
                  "(2000 per language, 256 tokens); a language whose package is absent has a 'not run: missing "
                  "data' row.",
                  "- Models: SmolLM2-135M-Instruct (a pretrained Llama-architecture LM, mostly English; not "
                  "GPT-2) and tiny GPT-2s trained here on one language each for a few hundred steps, with "
                  "random-init twins; none of the paper's 38 checkpoints.",
                  "- Decoding: a few held-out English fortunes, short prefixes and continuations (the paper: "
                  "GPT-2-large on 1000 WebText prefixes, 200 new tokens); generator and coherence scorer as named "
                  "above (the paper: OPT-125m/2.7b/13b score GPT-2-large). MAUVE not run (mauve-text is not "
                  "installed offline, and at this n it is unstable). No human evaluation."]
    lines += ["- Not done: the 16-language decoding protocol on WIT (paper scale config only), human ratings.", ""]
    return "\n".join(lines)


def evaluate(args, th: dict) -> ClaimsOutput:
    iso = pd.read_csv(args.isotropy, keep_default_na=False, na_values=[""])
    models = json.loads(args.models)
    rows, sanity = isotropy_claims(iso, models, th, args.scale)
    summary = None
    if args.decoding:
        summary = pd.read_csv(args.decoding, keep_default_na=False, na_values=[""])
        per = pd.read_csv(args.per_prompt, keep_default_na=False, na_values=[""])
        rows.append(decoding_claim(summary, per, args.contrastive, args.samplers, th, args.scale))
    else:
        rows.append(CONTRASTIVE.row(CONTRASTIVE.not_testable("no decoding section in the config"), scale=args.scale,
                                    model="none"))
    return ClaimsOutput(rows, sanity, section(iso, summary, args.scale, rows))


def extra_args(ap) -> None:
    ap.add_argument("--models", required=True, help="JSON: model id -> {label, paper_id, langs, group}")
    ap.add_argument("--samplers", nargs="*", default=[])
    ap.add_argument("--contrastive", default=None)


def main(argv: list[str] | None = None) -> None:
    claims_main(__doc__, {"isotropy": {}, "decoding": {"required": False}, "per_prompt": {"required": False}},
                evaluate, extra_args=extra_args, argv=argv)


if __name__ == "__main__":
    main()
