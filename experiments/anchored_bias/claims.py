"""Anchored bias in MCQs (Li & Gao, Findings of ACL 2025): the paper's statements and how each is tested.

Sources (../shared/papers/anchored_bias.md): the paper's body and tables could not be read; every number below
comes from third-party notes, so `secondary`, except the notebook's update rule and threshold (`paper`, the
authors' repository). The paper's statements are about GPT-2 small-XL: at mini no GPT-2 is measured, so they are
not testable there, and the same rules run as `extension` rows on the models mini has (SmolLM2-135M, a real
pretrained Llama-architecture LM, and the tiny GPT-2s trained here). The planted statements check the method
against exact answers: the weight-planted neuron must rank first, the label-free edit must undo the plant, the
data-planted bias must be removed by it, and the clean model must show no neuron above the threshold (negative
control).

Each verdict is a plain function of numbers (unit-tested with a holds and a fails input, and with the paper's own
numbers where the notes give them); `evaluate_claims` only pulls the numbers out of the CSVs.

CLI: python -m experiments.anchored_bias.claims --summary summary.csv --neurons neurons.csv --meta meta.csv \
        --predictions predictions.csv [--truth truth.csv] --models JSON --thresholds JSON --scale mini \
        --out claims.csv --sanity sanity.csv --section report_section.md
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from experiments.anchored_bias.items import LETTERS
from experiments.report.claims import (
    ClaimsOutput,
    ClaimSpec,
    Decision,
    SanitySpec,
    claims_main,
    holds,
    recovered_if,
    reproduced_if,
)
from experiments.stats import wilson

R = "anchored_bias"

# Anchored-bias frequency (%), "Table 2" per the secondary notes (LD and Greater rows not captured)
PAPER_ANCHORED = {
    ("gpt2", "IOI"): 45.5, ("gpt2-medium", "IOI"): 97.4, ("gpt2-large", "IOI"): 100.0, ("gpt2-xl", "IOI"): 85.8,
    ("gpt2", "ARC"): 54.6, ("gpt2-medium", "ARC"): 91.6, ("gpt2-large", "ARC"): 97.6, ("gpt2-xl", "ARC"): 69.9,
    ("gpt2", "CSQA"): 34.8, ("gpt2-medium", "CSQA"): 81.5, ("gpt2-large", "CSQA"): 99.6, ("gpt2-xl", "CSQA"): 97.7,
}
# accuracy (%) on the failing items after the value-vector update (secondary notes; Medium not captured)
PAPER_MLP_FIXED = {"gpt2": [100, 100, 100, 100, 100], "gpt2-large": [100, 100, 100, 96.7, 99.7],
                   "gpt2-xl": [98.2, 100, 100, 90.7, 94.8]}
PAPER_SWAP_FIXED = {("gpt2-medium", "IOI"): 92.47}

FAVOURS = ClaimSpec(
    R, "gpt2_favours_A", "GPT-2 models consistently favour the first choice 'A' (anchored bias).",
    "Table 2 (anchored-bias frequency, model x dataset), via secondary notes", "secondary",
    "34.8-100% of gold != A items predicted A (Small-XL x IOI/ARC/CSQA)",
    "reproduced when every GPT-2 model x dataset has the Wilson CI low of its anchored rate above "
    "min_anchored_rate and, where the letters' error rates are measured, A preferred over the other letters by "
    "min_a_preference", min_n=1, n_unit="GPT-2 model x dataset rows")
FAVOURS_OTHER = ClaimSpec(
    R, "favours_A_other_model", "A model that is not GPT-2 also favours option 'A' in the paper's MCQ format.",
    "the rule of gpt2_favours_A on another model (not a paper claim)", "extension", "",
    "as gpt2_favours_A, on this model and prompt format", min_n=50, n_unit="gold != A items")
MLP_FIX = ClaimSpec(
    R, "mlp_edit_fixes_failing", "Updating the located MLP value vector (v - 1 W_U[A] + 8 W_U[gold]) makes the "
    "failing items (gold != A, predicted A) correct.",
    "accuracy after the update (Small v9,1853 / Large v34,1541 / XL v44,4967), via secondary notes; update rule "
    "from the authors' notebook", "secondary", "90.7-100% on the failing items (0% before)",
    "reproduced when the Wilson CI low of the accuracy after the edit on held-out failing items is above "
    "min_fixed_accuracy", min_n=20, n_unit="held-out failing items")
MLP_FIX_OTHER = ClaimSpec(
    R, "mlp_edit_fixes_failing_other_model", "The paper's value-vector update also fixes the failing items of a "
    "model that is not GPT-2.", "the rule of mlp_edit_fixes_failing on another model (not a paper claim)",
    "extension", "", "as mlp_edit_fixes_failing (lambda1 = 1, lambda2 = 8, oracle gold), on this model",
    min_n=20, n_unit="held-out failing items")
SWAP_FIX = ClaimSpec(
    R, "attention_swap_fixes_failing", "Swapping the attention weights of the 'A' and the gold letter positions "
    "in the heads that favour A makes the failing items correct.",
    "attention recalibration, GPT-2 Medium / IOI, via secondary notes", "secondary", "92.47% (Medium, IOI)",
    "reproduced when the Wilson CI low of the accuracy after the swap on held-out failing items is above "
    "min_fixed_accuracy", min_n=20, n_unit="held-out failing items")
SWAP_FIX_OTHER = ClaimSpec(
    R, "attention_swap_fixes_failing_other_model", "The attention swap also fixes the failing items of a model "
    "that is not GPT-2.", "the rule of attention_swap_fixes_failing on another model (not a paper claim)",
    "extension", "", "as attention_swap_fixes_failing, on this model", min_n=20, n_unit="held-out failing items")
PLANT_RANK = ClaimSpec(
    R, "weight_plant_ranked_first", "The neuron whose value vector was pushed toward ' A' is the located vector.",
    "planted (config weight_plant)", "planted", "the planted layer and neuron",
    "planted_recovered when the planted (layer, neuron) is rank 1 by the projection score (its direct logit "
    "attribution to logit(A) - logit(gold)) on the locate split's failing items", min_n=20,
    n_unit="failing locate items")
PLANT_RESTORE = ClaimSpec(
    R, "weight_plant_label_free_restores", "The label-free edit of the located vector restores the clean model's "
    "accuracy.", "planted (config weight_plant); notes 5.1: within 2 points", "planted", "clean eval accuracy",
    "planted_recovered when the paired bootstrap CI upper bound of (clean - edited) eval accuracy is below "
    "restore_margin", min_n=50, n_unit="eval items")
DATA_REMOVED = ClaimSpec(
    R, "data_plant_removed_label_free", "The bias planted in the data (trigger topic relabelled to A) is located "
    "and removed by the label-free edit, without hurting the other topics.", "planted (config items.plant_*)",
    "planted", "trigger-topic anchored rate back to the clean model's",
    "planted_recovered when after the edit the trigger topics' anchored rate has its Wilson CI upper below the "
    "clean model's + removed_margin and the other topics' accuracy drop has its paired CI upper below "
    "restore_margin; not testable when the plant did not take (trigger anchored rate not above the others'). "
    "min_n 40: below it even 0 of n has a Wilson upper bound above the 0.10 margin (0 of 26: 0.13)",
    min_n=40, n_unit="trigger gold != A eval items")
NEGATIVE = ClaimSpec(
    R, "clean_no_neuron_above_threshold", "The clean model has no value vector that pushes toward 'A' "
    "(negative control).", "planted (the clean variant plants nothing)", "planted", "no neuron",
    "planted_recovered when no neuron of the clean model has a mean direct logit attribution to logit(A) - "
    "logit(gold) above min_dla_logits over its gold != A locate items; not testable when the weight-planted "
    "model's largest is not above it (the threshold would not see a planted neuron)", min_n=50,
    n_unit="gold != A locate items")


PARTIAL = SanitySpec(
    R, "partial_forward_exact", "Re-running only the blocks from the edited layer on (from the cached residual) "
    "gives the full forward's letter logits (the eval baseline is read this way; the full forward of its first "
    "batch checks it).", "< 1e-4",
    "an identity (the blocks before the edited one are unchanged by a value-vector edit); a failure is a bug in "
    "adapter.forward_from or the residual cache")


def favours_a(rows: list[dict], t: dict, spec: ClaimSpec = FAVOURS) -> Decision:
    """rows: {label, rate, n (or None: a paper point estimate), a_pref (or None)}; every row must pass.
    FAVOURS counts model x dataset rows toward its minimum; FAVOURS_OTHER (one row) its gold != A items."""
    n_ev = len(rows) if spec is FAVOURS else sum(int(r.get("n") or 0) for r in rows)
    if (gate := spec.gate(n_ev)):
        return gate
    fails, lows = [], []
    for r in rows:
        lo, hi = wilson(r["rate"] * r["n"], r["n"]) if r.get("n") else (r["rate"], r["rate"])
        lows.append(lo)
        ok = holds(lo, hi, r["rate"], above=t["min_anchored_rate"])
        if r.get("a_pref") is not None and not r["a_pref"] > t["min_a_preference"]:
            ok = False
        if not ok:
            fails.append(r["label"])
    worst = int(np.argmin(lows))
    w = rows[worst]
    ci = wilson(w["rate"] * w["n"], w["n"]) if w.get("n") else None
    notes = "; ".join(f"{r['label']}: rate {r['rate']:.3f}" + (f" (n {r['n']})" if r.get("n") else "")
                      + (f", A preference {r['a_pref']:.2f}" if r.get("a_pref") is not None else "") for r in rows)
    if fails:
        notes += f"; failing: {', '.join(fails)}"
    n = sum(int(r["n"]) for r in rows if r.get("n")) or len(rows)
    return Decision(reproduced_if(not fails), float(w["rate"]), ci, n, notes)


def fixed_accuracy(correct: int, n: int, t: dict, spec: ClaimSpec) -> Decision:
    """Accuracy after an edit on held-out failing items (all wrong before)."""
    if (gate := spec.gate(n)):
        return gate
    acc = correct / n
    lo, hi = wilson(correct, n)
    return Decision(reproduced_if(holds(lo, hi, acc, above=t["min_fixed_accuracy"])), acc, (lo, hi), n,
                    f"{correct} of {n} failing items correct after the edit")


def paper_fixed(values: list[float], t: dict, spec: ClaimSpec) -> Decision:
    """The paper's own accuracies (%, point estimates): every one must exceed the threshold."""
    ok = all(v / 100 > t["min_fixed_accuracy"] for v in values)
    return Decision(reproduced_if(ok), min(values) / 100, None, len(values), "paper's point estimates")


def a_preference(pred: pd.DataFrame, readout: str = "option") -> float:
    """P(pred A | gold != A) / mean over letters L != A (with gold != L items) of P(pred L | gold != L)."""
    p = pred[f"pred_{readout}"].fillna("")
    rate = lambda letter: float((p[pred["gold"] != letter] == letter).mean())  # noqa: E731
    others = [rate(x) for x in LETTERS[1:] if (pred["n_options"] > LETTERS.index(x)).any()]
    base = float(np.mean(others)) if others else float("nan")
    return rate("A") / base if base > 0 else float("inf")


def ranked_first(neurons: pd.DataFrame, layer: int, neuron: int, n_failing: int,
                 spec: ClaimSpec = PLANT_RANK) -> Decision:
    if (gate := spec.gate(n_failing)):
        return gate
    hit = neurons[(neurons["layer"] == layer) & (neurons["neuron"] == neuron)]
    rank = int(hit["rank_projection"].iloc[0]) if len(hit) else None
    top = neurons.sort_values("rank_projection").iloc[0] if len(neurons) else None
    notes = (f"planted L{layer}N{neuron}: projection (DLA) rank {rank if rank else '> 20'}"
             + (f"; the paper's filter passes it on {int(hit['candidate_count'].iloc[0])} of {n_failing} failing "
                f"items (filter rank {int(hit['rank_filter'].iloc[0])})" if len(hit) else "")
             + (f"; top: L{int(top.layer)}N{int(top.neuron)} ({top.projection_mean:.2f} logits)"
                if top is not None else ""))
    if rank is None:
        return Decision("planted_missed", None, None, n_failing, notes)
    return Decision(recovered_if(rank == 1), float(rank), None, n_failing, notes)


def paired_drop(before: np.ndarray, after: np.ndarray, n_boot: int, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """mean(before) - mean(after) over the same items (0/1 arrays) with a paired bootstrap CI."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    d = before - after
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_boot, len(d)))
    boots = d[idx].mean(1)
    return float(d.mean()), (float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))


def restores(before: np.ndarray, after: np.ndarray, t: dict, spec: ClaimSpec = PLANT_RESTORE) -> Decision:
    """before: clean model correct (0/1) per eval item; after: edited planted model correct on the same items."""
    if (gate := spec.gate(len(before))):
        return gate
    drop, ci = paired_drop(before, after, t["bootstrap"])
    return Decision(recovered_if(holds(*ci, drop, below=t["restore_margin"])), drop, ci, len(before),
                    f"clean {np.mean(before):.3f} vs edited {np.mean(after):.3f} eval accuracy")


def data_removed(trigger_after_A: np.ndarray, clean_trigger_rate: float, trigger_before_rate: float,
                 other_before_rate: float, other_before: np.ndarray, other_after: np.ndarray, t: dict,
                 spec: ClaimSpec = DATA_REMOVED) -> Decision:
    """trigger_after_A: 0/1 per trigger-topic gold != A eval item (predicted A after the edit)."""
    if (gate := spec.gate(len(trigger_after_A))):
        return gate
    if not trigger_before_rate > other_before_rate:
        return spec.not_testable(f"the plant did not take: trigger anchored rate {trigger_before_rate:.3f} vs "
                                 f"others {other_before_rate:.3f}", n=len(trigger_after_A))
    k, n = float(np.sum(trigger_after_A)), len(trigger_after_A)
    rate = k / n
    lo, hi = wilson(k, n)
    drop, dci = paired_drop(other_before, other_after, t["bootstrap"])
    removed = holds(lo, hi, rate, below=clean_trigger_rate + t["removed_margin"])
    kept = holds(*dci, drop, below=t["restore_margin"])
    return Decision(recovered_if(removed and kept), rate, (lo, hi), n,
                    f"trigger anchored rate {trigger_before_rate:.3f} -> {rate:.3f} (clean model "
                    f"{clean_trigger_rate:.3f}"
                    f" + margin {t['removed_margin']}); other topics' accuracy drop {drop:.3f} CI [{dci[0]:.3f}, "
                    f"{dci[1]:.3f}] (margin {t['restore_margin']})")


def negative_control(max_dla: float, n_items: int, t: dict, planted_dla: float | None = None,
                     spec: ClaimSpec = NEGATIVE) -> Decision:
    if (gate := spec.gate(n_items)):
        return gate
    thr = t["min_dla_logits"]
    notes = f"clean model's largest mean DLA to A - gold {max_dla:.3f} logits (threshold {thr:g})" + (
        f"; the weight-planted model's largest {planted_dla:.3f}" if planted_dla is not None else "")
    if planted_dla is not None and not planted_dla > thr:
        return spec.not_testable(notes + ": the planted neuron is not above the threshold either", n=n_items)
    return Decision(recovered_if(max_dla <= thr), max_dla, None, n_items, notes)


# ---- from the CSVs --------------------------------------------------------------------------------------

def _summary(s: pd.DataFrame, model: str, fmt: str, condition: str, subset: str, lam2: float | None = None):
    q = s[(s["model"] == model) & (s["format"] == fmt) & (s["split"] == "eval") & (s["condition"] == condition)
          & (s["subset"] == subset) & (s["readout"] == "option")]
    if lam2 is not None:
        q = q[np.isclose(q["lam2"], lam2)]
    return q.iloc[0] if len(q) else None


def _fixed_counts(s, model, fmt, condition, lam2=None):
    row = _summary(s, model, fmt, condition, "failing", lam2)
    if row is None or not row["n"]:
        return None
    return int(round(row["accuracy"] * row["n"])), int(row["n"])


def evaluate_claims(args, t: dict) -> ClaimsOutput:
    models = json.loads(args.models)
    s = pd.read_csv(args.summary)
    neurons = pd.read_csv(args.neurons)
    meta = pd.read_csv(args.meta)
    pred = pd.read_csv(args.predictions, keep_default_na=False, na_values=[""])
    pred["pred_vocab"] = pred["pred_vocab"].fillna("")
    truth = pd.read_csv(args.truth) if args.truth else None
    scale, rows = args.scale, []
    lam2 = float(args.lam2)
    gpt2 = [m for m, d in models.items() if d.get("gpt2")]
    others = [m for m, d in models.items() if not d.get("gpt2") and d["kind"] == "pretrained"]

    def base(model, fmt):
        return pred[(pred["model"] == model) & (pred["format"] == fmt) & (pred["condition"] == "baseline")]

    def rate_row(model, fmt):
        b = base(model, fmt)
        na = b[b["gold"] != "A"]
        return {"label": f"{model} ({fmt})", "rate": float((na["pred_option"] == "A").mean()), "n": len(na),
                "a_pref": a_preference(b)}

    # paper claims: GPT-2 rows only
    if gpt2:
        rows.append(FAVOURS.row(favours_a([rate_row(m, "plain") for m in gpt2], t), scale=scale,
                                model="+".join(gpt2)))
        for spec, cond, l2 in ((MLP_FIX, "oracle_mlp", lam2), (SWAP_FIX, "oracle_attention_swap", None)):
            counts = [_fixed_counts(s, m, "plain", cond, l2) for m in gpt2]
            counts = [c for c in counts if c]
            k, n = sum(c[0] for c in counts), sum(c[1] for c in counts)
            rows.append(spec.row(fixed_accuracy(k, n, t, spec), scale=scale, model="+".join(gpt2)))
    else:
        note = ("no GPT-2 checkpoint at this scale (mini has no hub access); the same rule on the models mini has: "
                "the *_other_model rows")
        for spec in (FAVOURS, MLP_FIX, SWAP_FIX):
            rows.append(spec.row(spec.not_testable(note, n=0), scale=scale, model="gpt2 family"))

    # extension rows: every non-GPT-2 pretrained model, each format it was run in
    for m in others:
        for fmt in models[m]["formats"]:
            rr = rate_row(m, fmt)
            d = favours_a([rr], t, FAVOURS_OTHER)
            rows.append(FAVOURS_OTHER.row(d, scale=scale, model=f"{m} ({fmt})"))
        for fmt in models[m]["edit_formats"]:
            for spec, cond, l2 in ((MLP_FIX_OTHER, "oracle_mlp", lam2),
                                   (SWAP_FIX_OTHER, "oracle_attention_swap", None)):
                c = _fixed_counts(s, m, fmt, cond, l2)
                d = fixed_accuracy(*c, t, spec) if c else spec.not_testable("no failing items or no edit run", n=0)
                rows.append(spec.row(d, scale=scale, model=f"{m} ({fmt})"))

    # planted claims
    tiny = {m for m, d in models.items() if d["kind"] == "tiny"}
    meta_of = lambda m: meta[(meta["model"] == m) & (meta["format"] == "plain")].iloc[0]  # noqa: E731
    if "weight_planted" in tiny and truth is not None:
        tr = truth.iloc[0]
        mw = meta_of("weight_planted")
        rows.append(PLANT_RANK.row(ranked_first(neurons[neurons["model"] == "weight_planted"], int(tr["layer"]),
                                                int(tr["neuron"]), int(mw["n_failing_locate"])),
                                   scale=scale, model="weight_planted"))
        if "clean" in tiny:
            c = base("clean", "plain").set_index("item")
            w = pred[(pred["model"] == "weight_planted") & (pred["condition"] == "label_free_mlp")].set_index("item")
            if len(w):
                w = w.loc[c.index]
                rows.append(PLANT_RESTORE.row(restores(c["correct_option"].to_numpy(bool),
                                                       w["correct_option"].to_numpy(bool), t),
                                              scale=scale, model="weight_planted"))
            else:
                rows.append(PLANT_RESTORE.row(PLANT_RESTORE.not_testable("no label-free edit (nothing located)"),
                                              scale=scale, model="weight_planted"))
    if "data_planted" in tiny and "clean" in tiny:
        topics = json.loads(args.plant_topics) if args.plant_topics else []
        b = base("data_planted", "plain")
        a = pred[(pred["model"] == "data_planted") & (pred["condition"] == "label_free_mlp")]
        c = base("clean", "plain")
        trig = lambda df: df["topic"].isin(topics) & (df["gold"] != "A")  # noqa: E731
        if len(a) and topics:
            a, b2 = a.set_index("item"), b.set_index("item")
            a = a.loc[b2.index]
            other = ~b2["topic"].isin(topics)
            d = data_removed((a.loc[trig(b2), "pred_option"] == "A").to_numpy(float),
                             float((c.loc[trig(c), "pred_option"] == "A").mean()),
                             float((b2.loc[trig(b2), "pred_option"] == "A").mean()),
                             float((b2.loc[other & (b2["gold"] != "A"), "pred_option"] == "A").mean()),
                             b2.loc[other, "correct_option"].to_numpy(bool),
                             a.loc[other, "correct_option"].to_numpy(bool), t)
        else:
            d = DATA_REMOVED.not_testable("no label-free edit or no trigger topics")
        rows.append(DATA_REMOVED.row(d, scale=scale, model="data_planted"))
    if "clean" in tiny:
        mc = meta_of("clean")
        planted = (float(meta_of("weight_planted")["max_projection_gold_not_A"]) if "weight_planted" in tiny
                   else None)
        rows.append(NEGATIVE.row(negative_control(float(mc["max_projection_gold_not_A"]),
                                                  int(mc["n_gold_not_A_locate"]), t, planted),
                                 scale=scale, model="clean"))
    sanity = []
    if "partial_forward_max_abs_diff" in meta.columns:
        for m in meta.dropna(subset=["partial_forward_max_abs_diff"]).itertuples():
            v = float(m.partial_forward_max_abs_diff)
            checked = getattr(m, "partial_forward_checked_items", None)
            on = f"; first {int(checked)} eval items" if checked is not None and checked == checked else ""
            sanity.append(PARTIAL.row(scale=scale, model=f"{m.model} ({m.format}{on})", value=v, passed=v < 1e-4))
    return ClaimsOutput(rows, sanity, section(s, meta, truth, models, lam2))


def section(s: pd.DataFrame, meta: pd.DataFrame, truth, models: dict, lam2: float) -> str:
    lines = ["### Per model and prompt format (eval split, option readout)", "",
             "| model | format | accuracy | anchored rate | failing n | after oracle MLP edit | after label-free "
             "edit | after attention swap | located | tau |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m in meta.itertuples():
        def acc(cond, lam2=None, subset="failing"):
            r = _summary(s, m.model, m.format, cond, subset, lam2)
            return f"{r['accuracy']:.2f}" if r is not None and r["n"] else "-"
        b = _summary(s, m.model, m.format, "baseline", "all")
        located = m.located if isinstance(getattr(m, "located", None), str) else "-"
        lines.append(f"| {m.model} | {m.format} | {b['accuracy']:.3f} | {b['anchored_rate']:.3f} | "
                     f"{int(m.n_failing_eval)} | {acc('oracle_mlp', lam2)} | {acc('label_free_mlp')} | "
                     f"{acc('oracle_attention_swap')} | {located} | "
                     f"{m.tau:.2f} |")
    lines += ["", "After-edit columns: accuracy on the held-out failing items (gold != A, predicted A before), 0 "
              f"before by construction. Oracle MLP edit: the notebook's update (lambda1 = 1, lambda2 = {lam2:g}, each "
              "item's gold letter). Label-free: v - lambda1 u_A with lambda1 fitted on the locate split to the "
              "A share balanced gold positions imply (bisection). tau: the paper's filter threshold as used (4, "
              "or 4 x this model's decision margin / the paper's Fig. 1 margin 2.94 with threshold_scale margin). "
              "Located: the neuron with the largest mean direct logit attribution to A - gold on the failing "
              "items (or on all gold != A items when there are none)."]
    if "general_text" in meta.columns:
        lines += ["", "### Side effect on general text (mean next-token loss, nats; Debian fortunes, BOS + the first "
                  "tokens of each text)", "", "| model | format | texts | tokens | baseline | after oracle MLP edit "
                  "(mean / max over gold letters) | after label-free edit |", "|---|---|---|---|---|---|---|"]
        for m in meta.dropna(subset=["general_text"]).itertuples():
            def f(col):
                v = getattr(m, col, float("nan"))
                return f"{v:.3f}" if v == v else "-"
            n_tok = getattr(m, "general_n_tokens", float("nan"))
            lines.append(f"| {m.model} | {m.format} | {m.general_text} | {int(n_tok) if n_tok == n_tok else '-'} | "
                         f"{f('general_nll_baseline')} | {f('general_nll_oracle_mean')} / {f('general_nll_oracle_max')}"
                         f" | {f('general_nll_label_free')} |")
    if truth is not None:
        tr = truth.iloc[0]
        lines += ["", f"Weight plant: L{int(tr['layer'])}N{int(tr['neuron'])} ({tr['neuron_rule']}), strength "
                  f"{tr['strength']} u_A (|delta| {tr['delta_norm']:.2f}), mean activation at the answer "
                  f"{tr['mean_activation']:.2f}."]
    labels = "; ".join(f"{k}: {v['label']}" for k, v in models.items())
    lines += ["", f"Models: {labels}.", ""]
    return "\n".join(lines)


def extra_args(ap) -> None:
    ap.add_argument("--models", required=True, help="JSON: model id -> {kind, label, gpt2, formats, edit_formats}")
    ap.add_argument("--plant-topics", required=True, help="JSON list: the data plant's trigger topics")
    ap.add_argument("--lam2", type=float, required=True, help="the analysis' lambda2 (the paper's 8)")


def main(argv: list[str] | None = None) -> None:
    claims_main(__doc__, {"summary": {}, "neurons": {}, "meta": {}, "predictions": {}, "truth": {"required": False}},
                evaluate_claims, extra_args=extra_args, argv=argv)


if __name__ == "__main__":
    main()
