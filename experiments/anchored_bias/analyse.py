"""One model x prompt format: predictions, the logit lens on the locate split, edits evaluated on the eval split.

    python -m experiments.anchored_bias.analyse --spec dir:MODEL --model-id clean --format plain \
        --locate locate.csv --eval eval.csv --options JSON --seed 0 --threads 1 \
        --out-summary s.csv --out-predictions p.csv --out-layers l.csv --out-neurons n.csv --out-heads h.csv \
        --out-meta m.csv

Steps (Li & Gao's method, notes §1.5-1.7; every fitted choice is made on `locate`, every accuracy after an edit
is measured on `eval`, never on the items that located the vectors):
1. Baseline predictions on both splits; the failing items are those with gold != A predicted A.
2. On the locate split's failing items: the layer scan, the paper's neuron filter (top-10 by |k| ||v||, gap > tau)
   counted per neuron, the projection score, the per-head lens. tau is the paper's 4 on GPT-2's logit scale; at
   `threshold_scale: margin` it is multiplied by (this model's median decision margin, top minus runner-up
   letter logit over the locate items) / (the paper's Figure 1 margin, 16.28 - 13.34 = 2.94 [P]); `fixed` keeps
   4 (GPT-2, the paper's scale). Both numbers are logged in the meta table.
   Located vectors: the `n_vectors` neurons with the largest mean projection score (each neuron's direct logit
   attribution to logit(A) - logit(gold), the issue's ranking) on the failing items; the paper's filter count
   and its rank are reported beside it (on the tiny models the filter ties: their letter directions are nearly
   collinear, so a single vector's lens gap rarely exceeds 4).
3. Edits on `eval`: the paper's oracle update (lambda1 = 1, each lambda2 of the sweep, per item with its gold
   letter), the label-free edit (lambda1 fitted on `locate` without labels), both added to v with the sign of
   the neuron's mean coefficient k on the failing locate items (+1 for GPT-2's located neurons: the notebook's
   update; a gated MLP's k can be negative, and v + delta would then push the other way), the oracle attention
   swap and the label-free equalisation in the located heads. Summaries per subset: all items, failing items,
   gold = A items, and (data-planted world) the trigger topics vs the others.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from experiments.anchored_bias import edit, general, lens, predict, prompts
from experiments.anchored_bias.items import LETTERS
from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
from experiments.files import atomic_write_csv

OUTPUTS = ["summary", "predictions", "layers", "neurons", "heads", "meta"]
PAPER_FIG1_GAP = 16.28 - 13.34  # [P] Figure 1: logit of 'A' minus logit of the gold 'B' on an LD item
REQUIRED = ("batch_size", "top_neurons", "gap_threshold", "threshold_scale", "lam1", "lam2", "lam2_sweep",
            "label_free_max", "label_free_steps", "n_vectors", "n_heads", "n_locate", "n_eval", "plant_topics")


def subsets(pred: pd.DataFrame, failing: np.ndarray, plant_topics: list[str]) -> dict[str, np.ndarray]:
    out = {"all": np.ones(len(pred), bool), "failing": failing, "gold_A": (pred["gold"] == "A").to_numpy()}
    if plant_topics:
        trig = pred["topic"].isin(plant_topics).to_numpy()
        out["trigger"], out["other"] = trig, ~trig
    return out


def summary_rows(pred: pd.DataFrame, failing: np.ndarray, plant_topics: list[str], **keys) -> list[dict]:
    rows = []
    for name, m in subsets(pred, failing, plant_topics).items():
        for readout in ("option", "vocab"):
            rows.append({**keys, "subset": name, "readout": readout, **predict.summarise(pred[m], readout)})
    return rows


def fit_label_free(a_share, target: float, n_items: int, hi: float, steps: int) -> tuple[float, float, list]:
    """lambda1 of the label-free edit, without labels. Nothing is removed when the locate items' share of "A"
    predictions is not significantly above `target` (what balanced gold positions imply: its Wilson CI low is
    not above it). Otherwise a doubling grid (hi / 2^9 .. hi) sets the goal t = max(target, lowest share on the
    grid) (a model's A share can sit just above the balanced value even when unbiased), and `steps` bisection
    steps find the smallest lambda1 whose share is at most t below the first grid point that reaches it (the
    share need not fall monotonically once lambda1 passes the bias: the vector then pushes the other way).
    Returns (lambda1, its share, [(lambda1, share), ...] tried)."""
    from experiments.stats import wilson

    s0 = a_share(0.0)
    tried = [(0.0, s0)]
    if wilson(s0 * n_items, n_items)[0] <= target:
        return 0.0, s0, tried
    grid = [(lam, a_share(lam)) for lam in [hi / 2 ** k for k in range(9, -1, -1)]]
    tried += grid
    goal = max(target, min(share for _, share in grid))
    first = next(i for i, (_, share) in enumerate(grid) if share <= goal)
    lo, best = (grid[first - 1][0] if first else 0.0), grid[first]
    for _ in range(steps):
        mid = (lo + best[0]) / 2
        share = a_share(mid)
        tried.append((mid, share))
        if share <= goal:
            best = (mid, share)
        else:
            lo = mid
    return best[0], best[1], tried


def decision_margin(pred: pd.DataFrame) -> float:
    """Median over items of (top letter logit - runner-up letter logit) among the options: the model's typical
    decision margin, the counterpart of the paper's Figure 1 margin (A 16.28 over the gold B 13.34)."""
    logits = pred[[f"logit_{x}" for x in LETTERS]].to_numpy()
    top2 = -np.sort(-np.nan_to_num(logits, nan=-np.inf), axis=1)[:, :2]
    return float(np.median(top2[:, 0] - top2[:, 1]))


class Runner:
    def __init__(self, adapter, items: pd.DataFrame, fmt: str, batch_size: int, tokenizer):
        self.adapter, self.items, self.batch_size = adapter, items.reset_index(drop=True), batch_size
        self.enc = prompts.encode(tokenizer, self.items["prompt"].tolist(), self.items["n_options"].tolist(), fmt)
        self.gold = self.items["gold"].to_numpy()
        self._resid: dict = {}

    def sub(self, mask: np.ndarray) -> "prompts.Encoded":
        idx = torch.from_numpy(np.flatnonzero(mask))
        e = self.enc
        return prompts.Encoded(e.input_ids[idx], e.attention_mask[idx], e.letter_pos[idx], e.letter_ids,
                               e.option_end[idx])

    def predict(self, mask: np.ndarray | None = None, hooks=None) -> pd.DataFrame:
        mask = np.ones(len(self.items), bool) if mask is None else mask
        ll, top = predict.final_logits(self.adapter, self.sub(mask), self.batch_size, hooks)
        return predict.predictions(self.items[mask], ll, top, self.enc.letter_ids)

    @torch.no_grad()
    def warm(self, layer: int) -> None:
        """Cache the residual entering block `layer` (of the unedited model) for every item, left-padded to the
        common width like enc.input_ids (pad columns stay 0: they are masked)."""
        if layer in self._resid:
            return
        e = self.enc
        out = torch.zeros(*e.input_ids.shape, self.adapter.d_model)
        for rows, ids, m, cut in prompts.batches(e, self.batch_size):
            out[rows, cut:] = self.adapter.resid_pre(layer, ids, m).float()
        self._resid[layer] = out

    @torch.no_grad()
    def predict_from(self, layer: int, mask: np.ndarray | None = None) -> pd.DataFrame:
        """Predictions with only blocks layer.. recomputed (adapter.forward_from) from the cached residual: exact
        for an edit of MLP value vectors in blocks >= layer (the blocks before it are unchanged). Call warm first,
        before editing."""
        mask = np.ones(len(self.items), bool) if mask is None else mask
        idx = torch.from_numpy(np.flatnonzero(mask))
        resid, attn = self._resid[layer][idx], self.enc.attention_mask[idx]
        ll, top = [], []
        for s in range(0, len(idx), self.batch_size):
            r, m = resid[s:s + self.batch_size], attn[s:s + self.batch_size]
            cut = m.shape[1] - int(m.sum(1).max())
            logits = self.adapter.forward_from(layer, r[:, cut:].to(self.adapter.W_U.dtype), m[:, cut:],
                                               last_only=True)
            letter_logits, argmax = predict.readout(logits, self.enc.letter_ids)
            ll.append(letter_logits)
            top.append(argmax)
        return predict.predictions(self.items[mask], np.concatenate(ll), np.concatenate(top), self.enc.letter_ids)


def signed_edits(vectors: list[tuple[int, int]], signs: dict, delta: torch.Tensor) -> list:
    """(layer, neuron, sign * delta) per located vector: the update acts through k * v, so for a neuron whose
    coefficient k is negative at the answer (gated MLPs such as Llama's; GELU's k is mostly positive) the same
    change of the logits needs -delta. sign = +1 is the notebook's update exactly (1.0 * delta == delta)."""
    return [(l, n, signs[(l, n)] * delta) for l, n in vectors]


def oracle_mlp(run: Runner, vectors: list[tuple[int, int]], lam1: float, lam2: float, signs: dict) -> pd.DataFrame:
    """The paper's per-item update: items grouped by gold letter, each group run with its own edit."""
    parts = []
    first = min(l for l, _ in vectors)
    run.warm(first)
    for g in sorted(set(run.gold)):
        mask = run.gold == g
        gi = LETTERS.index(g)
        delta = edit.paper_delta(run.adapter, run.enc.letter_ids, gi, lam1, lam2)
        with edit.edited(run.adapter, signed_edits(vectors, signs, delta)):
            parts.append(run.predict_from(first, mask))
    return pd.concat(parts).set_index("item").loc[run.items["item"]].reset_index()


def attention_edit(run: Runner, heads: list[tuple[int, int]], mode: str) -> pd.DataFrame:
    gold_idx = lens.gold_index(run.gold)

    def shifted(pos, rows, cut):
        return torch.where(pos[rows] >= 0, pos[rows] - cut, torch.full_like(pos[rows], -1))

    def hooks(rows, cut):
        sets = [shifted(run.enc.letter_pos, rows, cut), shifted(run.enc.option_end, rows, cut)]
        return edit.attention_hooks(heads, sets, gold_idx[rows], mode)

    return run.predict(hooks=hooks)


def main(argv: list[str] | None = None) -> None:
    from experiments.lm.arch import get_adapter
    from experiments.lm.load import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--format", choices=prompts.FORMATS, default="plain")
    ap.add_argument("--locate", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--options", required=True, help="JSON: the config's analysis block + n_locate/n_eval/plant_topics")
    ap.add_argument("--no-edits", action="store_true", help="predictions only (no lens, no edits)")
    ap.add_argument("--general-text", help="side effect: EOT-separated texts (anchored_bias.general); the mean "
                    "next-token loss on them before and after each MLP edit goes into the meta table")
    ap.add_argument("--general-max-tokens", type=int, default=None,
                    help="tokens per general text (with --general-text)")
    add_runtime_args(ap)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    device = setup_runtime(args)
    o = json.loads(args.options)
    missing = [k for k in REQUIRED if k not in o]
    if missing:
        raise ValueError(f"--options lacks {missing}")
    out = output_paths(args, OUTPUTS)
    if args.general_text and not args.general_max_tokens:
        raise ValueError("--general-text needs --general-max-tokens")
    model, tok = load_model(args.spec, device=device)
    model.requires_grad_(False)
    ad = get_adapter(model)
    keys = {"model": args.model_id, "format": args.format}
    plant_topics = list(o["plant_topics"])

    loc = Runner(ad, pd.read_csv(args.locate).head(o["n_locate"]), args.format, o["batch_size"], tok)
    ev = Runner(ad, pd.read_csv(args.eval).head(o["n_eval"]), args.format, o["batch_size"], tok)
    # One forward of the locate split gives its predictions and the lens activations (the hooks only read).
    base_ev = None
    if args.no_edits:  # predictions of the eval split only
        base_ev = ev.predict()
        base_loc = base_ev.iloc[:0]
    else:
        acts_loc = lens.answer_activations(ad, loc.enc, o["batch_size"])
        base_loc = predict.predictions(loc.items, acts_loc.letter_logits.numpy(), acts_loc.top.numpy(),
                                       loc.enc.letter_ids)
    fail_loc = ((base_loc["pred_option"] == "A") & (base_loc["gold"] != "A")).to_numpy()

    # --- locate ------------------------------------------------------------------------------------------
    final_gap = float(np.median(base_loc.loc[fail_loc, "gap_A_minus_gold"])) if fail_loc.any() else np.nan
    margin = decision_margin(base_loc) if len(base_loc) else float("nan")
    not_a = (base_loc["gold"] != "A").to_numpy()
    scale = (margin / PAPER_FIG1_GAP) if o["threshold_scale"] == "margin" else 1.0
    tau = float(o["gap_threshold"] * scale)
    meta = {**keys, "n_locate": len(base_loc), "n_eval": len(ev.items), "n_gold_not_A_locate": int(not_a.sum()),
            "n_failing_locate": int(fail_loc.sum()),
            "n_failing_eval": None, "final_gap_median": final_gap, "decision_margin_median": margin,
            "paper_fig1_gap": PAPER_FIG1_GAP,
            "threshold_scale": o["threshold_scale"], "tau": tau}
    L, H = ad.n_layers, ad.n_heads
    if not_a.any() and not args.no_edits:
        acts = acts_loc.subset(not_a)
        gold_na = loc.gold[not_a]
        fail_in_na = fail_loc[not_a]
        focus = fail_in_na if fail_in_na.any() else np.ones(len(gold_na), bool)
        meta["located_on"] = "failing" if fail_in_na.any() else "gold_not_A (no failing items)"
        scan = lens.layer_scan(ad, acts, gold_na, loc.enc.letter_ids)
        layers = pd.DataFrame({**keys, "layer": range(L), "delta_mean": scan[focus].mean(0).numpy(),
                               "delta_mean_gold_not_A": scan.mean(0).numpy(), "n": int(focus.sum())})
        nid, gaps, passes = lens.paper_candidates(ad, acts, gold_na, loc.enc.letter_ids, o["top_neurons"], tau)
        proj = lens.projection_scores(ad, acts, gold_na, loc.enc.letter_ids)  # (n, L, d_mlp)
        d_mlp = proj.shape[2]
        count_f = torch.zeros(L, d_mlp)
        count_all = torch.zeros(L, d_mlp)
        for l in range(L):
            count_f[l].index_add_(0, nid[focus][:, l][passes[focus][:, l]], torch.ones(int(passes[focus][:, l].sum())))
            count_all[l].index_add_(0, nid[:, l][passes[:, l]], torch.ones(int(passes[:, l].sum())))
        proj_f = proj[focus].mean(0)
        flat = pd.DataFrame({"layer": np.repeat(np.arange(L), d_mlp), "neuron": np.tile(np.arange(d_mlp), L),
                             "candidate_count": count_f.flatten().numpy(),
                             "candidate_share": count_f.flatten().numpy() / int(focus.sum()),
                             "candidate_share_gold_not_A": count_all.flatten().numpy() / len(gold_na),
                             "projection_mean": proj_f.flatten().numpy()})
        flat["projection_mean_gold_not_A"] = proj.mean(0).flatten().numpy()
        order = np.lexsort((-flat["projection_mean"].to_numpy(), -flat["candidate_count"].to_numpy()))
        flat["rank_filter"] = np.empty(len(flat), int)
        flat.loc[order, "rank_filter"] = np.arange(1, len(flat) + 1)  # the paper's filter count, ties: projection
        flat = flat.sort_values("projection_mean", ascending=False).reset_index(drop=True)
        flat["rank_projection"] = np.arange(1, len(flat) + 1)
        neurons = flat[(flat["rank_filter"] <= 20) | (flat["rank_projection"] <= 20)].assign(**keys)
        vectors = [(int(r.layer), int(r.neuron)) for r in flat.head(o["n_vectors"]).itertuples()]
        k_mean = {(l, n): float(acts.post[focus][:, l, n].mean()) for l, n in vectors}
        signs = {v: (1.0 if k >= 0 else -1.0) for v, k in k_mean.items()}
        meta["located_mean_activation"] = ";".join(f"{k_mean[v]:.4g}" for v in vectors)
        hs = lens.head_scores(acts, gold_na)[focus].mean(0)  # (L, H)
        att = acts.letter_attn[focus]  # (n, L, H, 5)
        heads = pd.DataFrame({**keys, "layer": np.repeat(np.arange(L), H), "head": np.tile(np.arange(H), L),
                              "lens_score_mean": hs.flatten().numpy(),
                              "attn_on_A_mean": att[..., 0].mean(0).flatten().numpy()})
        heads = heads.sort_values("lens_score_mean", ascending=False).reset_index(drop=True)
        heads["rank"] = np.arange(1, len(heads) + 1)
        above = heads[heads["lens_score_mean"] > tau]
        chosen = (above if len(above) else heads).head(o["n_heads"])
        meta["heads_rule"] = (f"lens score > tau: {len(above)} heads, the top {len(chosen)} edited" if len(above)
                              else f"top {o['n_heads']} (none > tau)")
        head_list = [(int(r.layer), int(r.head)) for r in chosen.itertuples()]
        heads["chosen"] = heads[["layer", "head"]].apply(tuple, axis=1).isin(head_list)
        meta["max_candidate_share"] = float(flat["candidate_share"].max())
        meta["max_candidate_share_gold_not_A"] = float(flat["candidate_share_gold_not_A"].max())
        meta["max_projection_gold_not_A"] = float(flat["projection_mean_gold_not_A"].max())
        meta["located"] = ";".join(f"L{l}N{n}" for l, n in vectors)
        meta["heads"] = ";".join(f"L{l}H{h}" for l, h in head_list)
    else:
        layers = pd.DataFrame(columns=[*keys, "layer", "delta_mean", "delta_mean_gold_not_A", "n"])
        neurons = pd.DataFrame(columns=[*keys, "layer", "neuron", "candidate_count", "candidate_share",
                                        "candidate_share_gold_not_A", "projection_mean", "rank_filter",
                                        "rank_projection"])
        heads = pd.DataFrame(columns=[*keys, "layer", "head", "lens_score_mean", "attn_on_A_mean", "rank", "chosen"])
        vectors, head_list, signs = [], [], {}
        meta["located_on"] = "not run (--no-edits)" if args.no_edits else "none (no gold != A items)"

    # --- baseline on eval: with a located vector, the cached residual entering its block + the blocks after it
    # (one forward in all, and the cache every value-vector edit below starts from); the full forward of the
    # first batch checks that this equals the plain forward (the sanity row partial_forward_exact).
    first = min((l for l, _ in vectors), default=None)
    if first is not None:
        ev.warm(first)
        base_ev = ev.predict_from(first)
        head = np.arange(len(ev.items)) < min(o["batch_size"], len(ev.items))
        cols = [f"logit_{x}" for x in LETTERS]
        diff = np.abs(ev.predict(head)[cols].to_numpy() - base_ev.loc[head, cols].to_numpy())
        meta["partial_forward_max_abs_diff"] = float(np.nanmax(diff))
        meta["partial_forward_checked_items"] = int(head.sum())
    elif base_ev is None:
        base_ev = ev.predict()
    fail_ev = ((base_ev["pred_option"] == "A") & (base_ev["gold"] != "A")).to_numpy()
    meta["n_failing_eval"] = int(fail_ev.sum())
    rows = summary_rows(base_ev, fail_ev, plant_topics, **keys, split="eval", condition="baseline", lam2=np.nan)
    if not args.no_edits:
        rows += summary_rows(base_loc, fail_loc, plant_topics, **keys, split="locate", condition="baseline",
                             lam2=np.nan)
    preds = [base_ev.assign(condition="baseline")]
    general_texts = general.read_texts(args.general_text) if args.general_text else []

    def general_nll() -> tuple[float, int]:
        return general.mean_nll(ad, tok, general_texts, args.general_max_tokens, o["batch_size"])

    if args.general_text:
        meta["general_text"] = (f"{len(general_texts)} texts x <= {args.general_max_tokens} tokens" if general_texts
                                else "not run: missing data (no general text: Debian fortunes not installed)")
    if general_texts:
        meta["general_nll_baseline"], meta["general_n_tokens"] = general_nll()

    # --- edits, evaluated on eval -------------------------------------------------------------------------
    if vectors:
        for lam2 in tqdm(o["lam2_sweep"], desc=f"{args.model_id} oracle lambda2 sweep", mininterval=5):
            p = oracle_mlp(ev, vectors, o["lam1"], float(lam2), signs)
            rows += summary_rows(p, fail_ev, plant_topics, **keys, split="eval", condition="oracle_mlp",
                                 lam2=float(lam2))
            if float(lam2) == float(o["lam2"]):
                preds.append(p.assign(condition="oracle_mlp"))
        if general_texts:  # the oracle edit depends on the gold letter: its loss under each letter's edit
            nll = []
            for g in sorted(set(ev.gold)):
                delta = edit.paper_delta(ad, ev.enc.letter_ids, LETTERS.index(g), o["lam1"], o["lam2"])
                with edit.edited(ad, signed_edits(vectors, signs, delta)):
                    nll.append(general_nll()[0])
            meta["general_nll_oracle_mean"], meta["general_nll_oracle_max"] = float(np.mean(nll)), float(max(nll))
        expected_a = float((1.0 / loc.items["n_options"]).mean())
        loc.warm(first)

        u_a = edit.anchor_delta(ad, loc.enc.letter_ids, 1.0)  # lens_direction once, not per fit step

        def a_share(lam1: float) -> float:
            delta = -lam1 * u_a
            with edit.edited(ad, signed_edits(vectors, signs, delta)):
                return float((loc.predict_from(first)["pred_option"] == "A").mean())

        lam1_fit, share_fit, fits = fit_label_free(a_share, expected_a, len(loc.items), o["label_free_max"],
                                                   o["label_free_steps"])
        meta.update(label_free_lam1=lam1_fit, label_free_locate_A_share=share_fit, expected_A_share=expected_a,
                    label_free_fit=json.dumps(fits))
        delta = -lam1_fit * u_a
        with edit.edited(ad, signed_edits(vectors, signs, delta)):
            p = ev.predict_from(first)
            if general_texts:
                meta["general_nll_label_free"] = general_nll()[0]
        rows += summary_rows(p, fail_ev, plant_topics, **keys, split="eval", condition="label_free_mlp", lam2=np.nan)
        preds.append(p.assign(condition="label_free_mlp"))
    if head_list:
        for mode, cond in (("swap", "oracle_attention_swap"), ("equalise", "label_free_attention")):
            p = attention_edit(ev, head_list, mode)
            rows += summary_rows(p, fail_ev, plant_topics, **keys, split="eval", condition=cond, lam2=np.nan)
            preds.append(p.assign(condition=cond))

    atomic_write_csv(pd.DataFrame(rows), out["summary"], allow_nan=["accuracy", "anchored_rate", "accuracy_gold_A",
                                                                    "pred_A_share", "lam2"])
    atomic_write_csv(pd.concat(preds).assign(**keys), out["predictions"],
                     allow_nan=[f"logit_{x}" for x in LETTERS])
    atomic_write_csv(layers, out["layers"])
    atomic_write_csv(neurons, out["neurons"])
    atomic_write_csv(heads, out["heads"])
    atomic_write_csv(pd.DataFrame([meta]), out["meta"], allow_nan=list(meta))
    b = predict.summarise(base_ev)
    print(f"{args.model_id} [{args.format}]: eval accuracy {b['accuracy']:.3f}, anchored rate {b['anchored_rate']:.3f} "
          f"({int(fail_ev.sum())} failing); tau {tau:.2f}; located {meta.get('located', '-')}; heads "
          f"{meta.get('heads', '-')}")


if __name__ == "__main__":
    main()
