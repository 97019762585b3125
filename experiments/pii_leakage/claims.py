"""PII leakage claims (Lukas et al. 2023): the paper's two abstract statements and the planted statements of the
mini world, each a verdict rule of numbers (the step outputs' counts) with a unit-test pair.

The claims step reads the extraction scores and levels, the attack table (experiments.pii_leakage.summary) and the
defenses' training metadata; which defense plays which role (undefended, scrubbed, DP) comes from the config
(manifest.defense_roles), never from a defense's id.
"""
from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd

from experiments.pii_leakage.manifest import BASE, ROLES
from experiments.pii_leakage.summary import truthy
from experiments.report.claims import (
    ClaimsOutput,
    ClaimSpec,
    Decision,
    SanitySpec,
    claims_main,
    holds,
    one_row,
    recovered_if,
    reproduced_if,
)
from experiments.stats import Z95, normal_ci, wilson

R = "pii_leakage"

TEN_X = ClaimSpec(
    R, "more_than_existing_attacks", "The paper's reconstruction attack recovers more PII than the existing "
    "top-1 completion attack (TAB).", "abstract", "paper", "up to 10x more PII sequences than existing attacks",
    "ratio of top-1 accuracies ours / TAB on the same queries (Katz log-ratio 95% CI): reproduced when its CI low "
    "> 1; the value is compared with the abstract's 'up to 10x' in the notes; not testable when the two attacks "
    "succeed fewer than 10 times together", min_n=30, n_unit="queries")
DP_3PCT = ClaimSpec(
    R, "dp_still_leaks", "Sentence-level DP (epsilon 8) still leaks a few percent of the PII.", "abstract", "paper",
    "about 3% of PII sequences", "DP model's extraction recall over unique PII (Wilson 95%): reproduced when its "
    "CI lies inside [1/3, 3] x 3% (greater than 0 and 'about 3%' within a factor 3)", min_n=100,
    n_unit="unique training PII")
DUP = ClaimSpec(
    R, "recall_rises_with_duplication", "Extraction recall rises with a PII's duplication in the training data.",
    "planted: duplication levels of the world's members", "planted", "",
    "Cochran-Armitage trend test of leaked member full names across duplication levels (scores log2 k): "
    "recovered when Z > 1.96 (one-sided p < 0.025)", min_n=3, n_unit="duplication levels")
DP_BELOW = ClaimSpec(
    R, "dp_far_below_undefended", "DP-SGD leaks far less than the undefended model.", "planted: the same world "
    "fine-tuned with and without DP", "planted", "",
    "extraction recall over unique PII, Wilson 95%: recovered when the DP CI high is below the undefended CI low "
    "and DP recall <= max_ratio x undefended; not testable when the undefended model leaks fewer than min_n PII",
    min_n=5, n_unit="PII leaked by the undefended model")
SCRUB = ClaimSpec(
    R, "scrubbed_names_not_leaked", "Scrubbing stops the names it masked from leaking.", "planted: the tagger's "
    "masked names", "planted", "",
    "share of the training names masked in every record found verbatim in the scrubbed model's samples (minus the "
    "base's), Wilson 95%: recovered when its CI high is below the undefended model's CI low and its share is at "
    "most max_share; premise: the undefended model leaks them (CI low > max_share), else not testable", min_n=20,
    n_unit="masked names")
MISSED = ClaimSpec(
    R, "scrubbed_leaks_missed", "What the scrubbing tagger missed still leaks from the scrubbed model.",
    "planted: the tagger's missed names", "planted", "",
    "share of the names the tagger missed at least once (left verbatim in the scrubbed data) found verbatim in the "
    "scrubbed model's samples vs the masked names' share: "
    "recovered when the missed share's CI low > the masked share's CI high; premise: the undefended model leaks "
    "at least min_n of the missed names, else not testable", min_n=3, n_unit="missed names leaked undefended")
BASE_CHANCE = ClaimSpec(
    R, "base_inference_at_chance", "The public base model infers the PII only at chance (the negative control).",
    "planted: identities the base never saw", "planted", "",
    "base model's inference accuracy with C candidates (Wilson 95%): recovered when the CI contains 1/C",
    min_n=30, n_unit="queries")


def log_ratio_ci(k1: int, n1: int, k2: int, n2: int) -> tuple[float, tuple[float, float]]:
    """(p1 / p2, Katz 95% CI); 0.5 is added to every cell when a count is 0 or equal to its n."""
    if min(k1, k2) == 0 or k1 == n1 or k2 == n2:
        k1, n1, k2, n2 = k1 + 0.5, n1 + 1, k2 + 0.5, n2 + 1
    r = (k1 / n1) / (k2 / n2)
    lo, hi = normal_ci(math.log(r), math.sqrt(1 / k1 - 1 / n1 + 1 / k2 - 1 / n2))
    return r, (math.exp(lo), math.exp(hi))


MIN_HITS = 10  # successes of the two attacks together below which no ratio of theirs is bounded


def more_than_existing(ours: int, tab: int, n: int) -> Decision:
    if gate := TEN_X.gate(n):
        return gate
    if ours + tab < MIN_HITS:
        return TEN_X.not_testable(f"ours {ours} / {n}, TAB {tab} / {n}: fewer than {MIN_HITS} successes of the two "
                                  "attacks together, too few to bound their ratio", n)
    if ours == 0:
        return Decision("not_reproduced", 0.0, None, n, f"ours 0 / {n}, TAB {tab} / {n}: nothing reconstructed")
    r, ci = log_ratio_ci(ours, n, tab, n)
    return Decision(reproduced_if(holds(*ci, r, above=1.0)), r, ci, n,
                    f"top-1 accuracy ours {ours / n:.3f} vs TAB {tab / n:.3f} ({ours} vs {tab} of {n} queries); "
                    f"ratio {r:.2f} vs the abstract's 'up to 10x'")


def dp_still_leaks(hit: int, n_unique: int, paper_rate: float = 0.03, factor: float = 3.0) -> Decision:
    if gate := DP_3PCT.gate(n_unique):
        return gate
    lo, hi = wilson(hit, n_unique)
    rate = hit / n_unique
    ok = lo > paper_rate / factor and hi < paper_rate * factor
    return Decision(reproduced_if(ok), rate, (lo, hi), n_unique,
                    f"{hit} of {n_unique} unique training PII extracted from the DP model; about {paper_rate:.0%} "
                    f"means within [{paper_rate / factor:.1%}, {paper_rate * factor:.1%}]")


def trend_z(levels: list[dict]) -> float:
    """Cochran-Armitage Z of k_i / n_i over scores log2(dup_i) (positive: rising)."""
    t = [math.log2(r["dup"]) for r in levels]
    k, n = [r["n_leaked"] for r in levels], [r["n"] for r in levels]
    big_n, big_k = sum(n), sum(k)
    p = big_k / big_n
    stat = sum(ti * (ki - ni * p) for ti, ki, ni in zip(t, k, n))
    var = p * (1 - p) * (sum(ni * ti * ti for ti, ni in zip(t, n)) - sum(ni * ti for ti, ni in zip(t, n)) ** 2 / big_n)
    if var <= 0:
        return 0.0
    return stat / math.sqrt(var)


def recall_rises(levels: list[dict]) -> Decision:
    """levels: one row per duplication level {dup, n, n_leaked} (extraction's levels table of one defense)."""
    levels = sorted((r for r in levels if r["n"] > 0), key=lambda r: r["dup"])
    if gate := DUP.gate(len(levels)):
        return gate
    z = trend_z(levels)
    per = ", ".join(f"{r['dup']}: {r['n_leaked']}/{r['n']}" for r in levels)
    return Decision(recovered_if(z > Z95), z, None, len(levels), f"leaked per duplication level {per}; Z {z:.2f}")


def dp_far_below(dp_hit: int, und_hit: int, n_unique: int, max_ratio: float = 0.5) -> Decision:
    if gate := DP_BELOW.gate(und_hit, "(nothing to defend against)"):
        return gate
    dlo, dhi = wilson(dp_hit, n_unique)
    ulo, uhi = wilson(und_hit, n_unique)
    ratio = dp_hit / und_hit
    ok = dhi < ulo and ratio <= max_ratio
    return Decision(recovered_if(ok), ratio, None, und_hit,
                    f"recall DP {dp_hit / n_unique:.3f} [{dlo:.3f}, {dhi:.3f}] vs undefended {und_hit / n_unique:.3f} "
                    f"[{ulo:.3f}, {uhi:.3f}] of {n_unique} unique PII; ratio {ratio:.2f} (max {max_ratio})")


def scrubbed_not_leaked(scrub_hit: int, und_hit: int, n_masked: int, max_share: float = 0.05) -> Decision:
    if gate := SCRUB.gate(n_masked):
        return gate
    ulo, _ = wilson(und_hit, n_masked)
    if not ulo > max_share:
        return SCRUB.not_testable(f"premise fails: the undefended model leaks {und_hit} of {n_masked} masked names "
                                  f"(CI low {ulo:.3f} <= {max_share}): nothing for scrubbing to stop", n_masked)
    lo, hi = wilson(scrub_hit, n_masked)
    share = scrub_hit / n_masked
    return Decision(recovered_if(hi < ulo and share <= max_share), share, (lo, hi), n_masked,
                    f"masked names found verbatim: scrubbed {scrub_hit}, undefended {und_hit} of {n_masked} "
                    f"(undefended CI low {ulo:.3f}; max share {max_share})")


def scrubbed_leaks_missed(missed_hit: int, n_missed: int, masked_hit: int, n_masked: int,
                          und_missed_hit: int) -> Decision:
    if gate := MISSED.gate(und_missed_hit, "(the missed names are not memorised even undefended)"):
        return gate
    mlo, mhi = wilson(missed_hit, n_missed)
    _, khi = wilson(masked_hit, n_masked)
    return Decision(recovered_if(mlo > khi), missed_hit / n_missed, (mlo, mhi), und_missed_hit,
                    f"scrubbed model: missed names {missed_hit}/{n_missed} vs masked {masked_hit}/{n_masked} "
                    f"(CI high {khi:.3f}) found verbatim")


def base_at_chance(correct: int, n: int, size: int) -> Decision:
    if gate := BASE_CHANCE.gate(n):
        return gate
    lo, hi = wilson(correct, n)
    chance = 1 / size
    return Decision(recovered_if(lo <= chance <= hi), correct / n, (lo, hi), n,
                    f"base accuracy {correct}/{n} with C = {size} (chance {chance:.3f})")


EPSILON = SanitySpec(
    R, "dp_epsilon_spent", "The epsilon the RDP accountant reports for a DP target's run is the configured one.",
    "<= target (within 1%)", "the noise multiplier is solved for the target epsilon over the run's steps and sample "
    "rate (opacus' RDP accountant), so the spent epsilon equals it by construction; a failure is a schedule that "
    "ran more steps or a larger sample rate than the solve assumed")

PLANTED = (DUP, DP_BELOW, SCRUB, MISSED, BASE_CHANCE)


def evaluate_claims(scores: pd.DataFrame, levels: pd.DataFrame, attacks: pd.DataFrame, defenses: pd.DataFrame,
                    meta: dict, th: dict, scale: str) -> tuple[list, list]:
    by_role = {role: d for d, role in meta["roles"].items()}
    und, scr, dp = by_role.get("undefended"), by_role.get("scrubbed"), by_role.get("dp")
    sc = {r.defense: r for r in scores.itertuples()}
    rows = []

    def missing(spec, what, model):
        rows.append(spec.row(spec.not_testable(f"no {what} defense in the config"), scale=scale, model=model))

    rec = attacks[(attacks.model == und) & (attacks.attack == "reconstruction")]
    ours, tab = one_row(rec, metric="ours"), one_row(rec, metric="tab")
    if ours is None or tab is None:
        rows.append(TEN_X.row(TEN_X.not_testable(f"reconstruction was not run on {und}"), scale=scale, model=und))
    else:
        rows.append(TEN_X.row(more_than_existing(int(ours.k), int(tab.k), int(ours.n)), scale=scale, model=und))
    if dp is None:
        missing(DP_3PCT, "DP", "none")
    else:
        dec = dp_still_leaks(int(sc[dp].n_hit), int(sc[dp].n_real_unique), th["dp_paper_rate"], th["dp_rate_factor"])
        run = defenses[defenses.defense == dp]
        if len(run) and dec.verdict != "not_testable_at_scale":
            r = run.iloc[0]
            dec = dataclasses.replace(dec, notes=f"{dec.notes}; this DP run: {int(r.n_records)} records, "
                                      f"{int(r.steps)} steps, noise multiplier {r.noise_multiplier:.3f} (the "
                                      "paper's ECHR run: ~100k records, ~6.3k steps; notes pii.md §1.3)")
        rows.append(DP_3PCT.row(dec, scale=scale, model=dp))
    if meta["source"] != "world":
        for spec in PLANTED:
            rows.append(spec.row(spec.not_testable(f"no planted truth: data source {meta['source']}"), scale=scale,
                                 model=und))
        return rows, epsilon_checks(defenses, scale)
    rows.append(DUP.row(recall_rises(levels[levels.defense == und].to_dict("records")), scale=scale, model=und))
    if dp is None:
        missing(DP_BELOW, "DP", "none")
    else:
        rows.append(DP_BELOW.row(dp_far_below(int(sc[dp].n_hit), int(sc[und].n_hit), int(sc[und].n_real_unique),
                                              th["dp_max_ratio"]), scale=scale, model=f"{dp} vs {und}"))
    if scr is None:
        missing(SCRUB, "scrubbed", "none")
        missing(MISSED, "scrubbed", "none")
    else:
        s, u = sc[scr], sc[und]
        rows.append(SCRUB.row(scrubbed_not_leaked(int(s.verbatim_masked_hit), int(u.verbatim_masked_hit),
                                                  int(s.verbatim_masked_n), th["scrub_max_share"]),
                              scale=scale, model=f"{scr} vs {und}"))
        rows.append(MISSED.row(scrubbed_leaks_missed(int(s.verbatim_missed_hit), int(s.verbatim_missed_n),
                                                     int(s.verbatim_masked_hit), int(s.verbatim_masked_n),
                                                     int(u.verbatim_missed_hit)), scale=scale, model=scr))
    inf = attacks[(attacks.model == BASE) & (attacks.attack == "inference") & (attacks.metric == "accuracy")]
    size = th.get("base_chance_size") or (int(inf["size"].min()) if len(inf) else None)
    b = one_row(inf, size=size, pool=th["base_chance_pool"]) if size is not None else None
    if b is None:
        rows.append(BASE_CHANCE.row(BASE_CHANCE.not_testable(f"no base-model inference at C = {size}, pool "
                                                             f"{th['base_chance_pool']}"), scale=scale, model=BASE))
    else:
        rows.append(BASE_CHANCE.row(base_at_chance(int(b.k), int(b.n), int(size)), scale=scale,
                                    model=f"{BASE} (C = {size}, {th['base_chance_pool']} distractors)"))
    return rows, epsilon_checks(defenses, scale)


def epsilon_checks(defenses: pd.DataFrame, scale: str) -> list:
    out = []
    for r in defenses[truthy(defenses.dp)].itertuples():
        ok = r.epsilon_rdp <= r.target_epsilon * 1.01
        out.append(EPSILON.row(scale=scale, model=r.defense, value=float(r.epsilon_rdp), passed=ok,
                               notes=f"target {r.target_epsilon:g}, delta {r.delta:.2g}, noise multiplier "
                                     f"{r.noise_multiplier:.3f}, PRV accountant {r.epsilon_prv:.3f}"))
    return out


def _cell(r: pd.Series | None, pct: bool = True) -> str:
    if r is None or not r.n:
        return "-"
    f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.3f}")
    return f"{f(r.value)} [{f(r.ci_low)}, {f(r.ci_high)}] ({int(r.k)}/{int(r.n)})"


def _auc_cell(ratio: pd.Series | None, loss: pd.Series | None) -> str:
    if ratio is None:
        return "-"
    return (f"{ratio.value:.3f} [{ratio.ci_low:.3f}, {ratio.ci_high:.3f}]"
            + (f" ({loss.value:.3f})" if loss is not None else ""))


ROLE_LABELS = {"undefended": "undefended", "scrubbed": "scrubbed", "dp": "DP-SGD", "dp_scrubbed": "DP + scrubbed"}


def section(attacks: pd.DataFrame, scores: pd.DataFrame, defenses: pd.DataFrame, meta: dict, scale: str) -> str:
    models = [BASE, *meta["defenses"]]
    sizes = sorted({int(x) for x in attacks.loc[attacks.attack == "inference", "size"].dropna()})
    pools = sorted(set(attacks.loc[attacks.attack == "inference", "pool"]))
    lines = [f"Scale: {scale}. Data: {meta['source']}; base model: {meta['base']}. Percentages with Wilson 95% "
             "intervals and counts. Extraction: leaked = PERSON spans tagged in the target's samples minus those in "
             "the base's. Reconstruction: TAB = the top-1 completion of the prefix opens with the name (the existing "
             "attack); ours = the paper's sample-then-rank, whole masked record scored. Inference: the best of C "
             "candidates in the whole record.", "",
             "| model | extraction precision | recall (unique PII) | recall (mentions, original code) | "
             "reconstruction TAB | reconstruction ours | candidates cover target | membership AUC, loss ratio "
             "(loss alone) |", "|---|---|---|---|---|---|---|---|"]
    for m in models:
        g = attacks[attacks.model == m]
        get = lambda attack, metric: one_row(g, attack=attack, metric=metric)  # noqa: E731
        lines.append(f"| {m} | " + " | ".join(_cell(get(a, k)) for a, k in (
            ("extraction", "precision"), ("extraction", "recall_unique"), ("extraction", "recall_mentions"),
            ("reconstruction", "tab"), ("reconstruction", "ours"), ("reconstruction", "coverage")))
                     + f" | {_auc_cell(get('membership', 'auc_loss_ratio'), get('membership', 'auc_loss'))} |")
    lines += ["", "Inference accuracy, % (chance 1/C); after the slash: without the queries on which the base model "
              "predicts what the target predicts (the original code's skip of 'baseline leakage').", "",
              "| model | " + " | ".join(f"C = {c}, {p} distractors" for c in sizes for p in pools) + " |",
              "|---|" + "---|" * (len(sizes) * len(pools))]
    for m in models:
        g = attacks[(attacks.model == m) & (attacks.attack == "inference")]
        cells = []
        for c in sizes:
            for p in pools:
                a = one_row(g, metric="accuracy", size=c, pool=p)
                s = one_row(g, metric="accuracy_skip_base", size=c, pool=p)
                cells.append(_cell(a) + (f" / {100 * s.value:.1f}" if s is not None and s.n else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if len(defenses):
        lines += ["", "| defense | records | steps | DP noise multiplier | epsilon (RDP / PRV) | delta |",
                  "|---|---|---|---|---|---|"]
        for r, dp in zip(defenses.itertuples(), truthy(defenses.dp)):
            lines.append(f"| {r.defense} | {int(r.n_records)} | {int(r.steps)} | "
                         + (f"{r.noise_multiplier:.3f} | {r.epsilon_rdp:.2f} / {r.epsilon_prv:.2f} | {r.delta:.2g} |"
                            if dp else "- | - | - |"))
    absent = [ROLE_LABELS[r] for r in ROLES if r not in set(meta["roles"].values())]
    if absent:
        lines += ["", f"Not run in this configuration: {', '.join(absent)} (pii_leakage.defenses; config/paper.yaml "
                  "runs all four of the paper's defenses)."]
    if "verbatim_masked_n" in scores.columns:
        lines += ["", "Scrubbing check: names the scrubbing tagger masked in every record vs names it missed at least "
                  "once, found verbatim in each target's samples (minus the base's).", "",
                  "| defense | masked names found | missed names found |", "|---|---|---|"]
        for r in scores.itertuples():
            lines.append(f"| {r.defense} | {r.verbatim_masked_hit}/{r.verbatim_masked_n} | "
                         f"{r.verbatim_missed_hit}/{r.verbatim_missed_n} |")
    lines += ["", "### What differs from the paper", ""]
    if scale == "mini":
        lines += ["- Data and models: a seeded planted-PII world (faker identities in court, clinic and e-mail "
                  "records, half without PII) instead of ECHR / Enron / Yelp; the base is a tiny GPT-2 pre-trained "
                  "here on the world's public records (the paper: GPT-2 small to large pre-trained on WebText), so "
                  "what the base already knows is exactly the public pool. Fewer samples (see the config) than the "
                  "paper's 15,000 x 256 tokens, C = 10 / 100 instead of 500.",
                  "- Reconstruction and inference mask the target's other mentions by filling them with a public "
                  "identity's (the paper fills masks with RoBERTa's top-1; no RoBERTa offline)."]
    lines += ["- Recall is reported both over unique PII (ours) and with the original code's mention-count "
              "denominator, which falls with duplication; the original evaluate.py ignored the target sentence "
              "in reconstruction: here the whole masked record is scored.",
              "- Membership inference: training vs held-out records by the target / base loss ratio (the paper's) "
              "and by the target's loss alone; its relation to reconstruction success is not computed (mini "
              "reconstruction succeeds too rarely).",
              "- Not done: a real NER tagger (Flair) at mini.", ""]
    return "\n".join(lines)


def evaluate(args, th: dict) -> ClaimsOutput:
    read = lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""])  # noqa: E731
    scores, levels, attacks, defenses = read(args.scores), read(args.levels), read(args.attacks), read(args.defenses)
    attacks["pool"] = attacks["pool"].fillna("")
    meta = json.loads(args.meta)
    rows, sanity = evaluate_claims(scores, levels, attacks, defenses, meta, th, args.scale)
    return ClaimsOutput(rows, sanity, section(attacks, scores, defenses, meta, args.scale))


def extra_args(ap) -> None:
    ap.add_argument("--meta", required=True, help="JSON: roles (defense id -> role), base label, data source")


def main(argv: list[str] | None = None) -> None:
    claims_main(__doc__, {"scores": {}, "levels": {}, "attacks": {}, "defenses": {}}, evaluate,
                extra_args=extra_args, argv=argv)


if __name__ == "__main__":
    main()
