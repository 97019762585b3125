"""Metrics of the decoding comparison as the paper's code computes them, and the step that applies them.

rep-n and diversity (SimCTG `simctg/evaluation.py`, `measure_repetition_and_diversity`): per text, the n-grams
of its units (whitespace-split words; `char` = non-space characters, for zh/ja, labelled), counted by a loop
that stops before the text's last n-gram (`while end_idx < len(tokens)`); unique n-grams are counted per text
and summed over texts, as are the totals:

    rep-n     = 100 * (1 - sum_texts unique_n / sum_texts total_n)     (n = 2, 3, 4)
    diversity = 100 * prod_n (1 - rep-n / 100)

Coherence (the paper's `open_ended_generation/english/compute_coherence.py`): mean over continuations of the
mean log-probability of the continuation's tokens under a scoring model other than the generator, given
BOS + prefix (`--scorer-start bos`, as the paper's OPT; `none` for a scorer without a document BOS, such as
SmolLM2). Empty continuations are left out.
Generation length: mean whitespace word count of the continuations. Control rows `human_other_prefix` (each
human continuation scored after another prefix) test the scorer's premise: it must prefer a continuation's own
prefix (experiments.anisotropy.claims).

    python -m experiments.anisotropy.metrics --generations generations.csv --scorer-spec dir:... \
        --scorer-id tiny_gpt2_en --unit word --bootstrap 1000 --seed 0 \
        --out-summary decoding.csv --out-per-prompt decoding_per_prompt.csv

decoding_per_prompt.csv: one row per generation (method, seed, prompt_id) with its n-gram counts, coherence and
length: the units the claims bootstrap resamples (prefixes). decoding.csv: per method, the pooled metrics (over
prefixes and seeds; samplers also per seed: mean and std over seeds as the paper reports) with 95% bootstrap
CIs over prefixes for diversity and coherence.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
from experiments.files import atomic_write_csv

NS = (2, 3, 4)
UNITS = ("word", "char")


def units_of(text: str, unit: str = "word") -> list[str]:
    if unit == "word":
        return str(text).strip().split()
    if unit == "char":
        return [c for c in str(text) if not c.isspace()]
    raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")


def ngram_counts(text: str, n: int, unit: str = "word") -> tuple[int, int]:
    """(unique, total) n-grams of one text, SimCTG's loop (its last n-gram is not counted)."""
    toks = units_of(text, unit)
    grams = [tuple(toks[i:i + n]) for i in range(0, max(0, len(toks) - n))]
    return len(set(grams)), len(grams)


def rep_n(unique: float, total: float) -> float:
    """100 * (1 - unique / total); 0 when there is no n-gram at all."""
    return 100.0 * (1.0 - unique / total) if total else 0.0


def diversity_from_counts(counts: dict[int, tuple[float, float]]) -> float:
    """100 * prod_n (1 - rep-n / 100) from {n: (sum unique, sum total)}."""
    return 100.0 * float(np.prod([1.0 - rep_n(*counts[n]) / 100.0 for n in NS]))


def repetition_and_diversity(texts: list[str], unit: str = "word") -> dict[str, float]:
    """rep-2/3/4 and diversity of a set of texts, pooled as SimCTG pools them."""
    counts = {n: tuple(map(sum, zip(*[ngram_counts(t, n, unit) for t in texts]))) if texts else (0, 0) for n in NS}
    out = {f"rep_{n}": rep_n(*counts[n]) for n in NS}
    out["diversity"] = diversity_from_counts(counts)
    return out


def per_prompt_table(gen: pd.DataFrame, unit: str) -> pd.DataFrame:
    """One row per generation with its n-gram counts and word count (coherence is added by the scorer)."""
    rows = []
    for r in gen.itertuples():
        row = dict(method=r.method, kind=r.kind, seed=r.seed, prompt_id=r.prompt_id,
                   words=len(units_of(r.continuation, "word")), n_new_tokens=r.n_new_tokens,
                   ended_eos=r.ended_eos)
        for n in NS:
            row[f"unique_{n}"], row[f"total_{n}"] = ngram_counts(r.continuation, n, unit)
        rows.append(row)
    return pd.DataFrame(rows)


def prompt_arrays(per: pd.DataFrame, ids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prefix ids, n-gram sums (P, len(NS), 2) = (unique, total) over the prefix's rows (all seeds), and the
    prefix's mean coherence (P,), NaN where none): the units a prefix bootstrap resamples."""
    ids = np.array(sorted(per.prompt_id.unique())) if ids is None else np.asarray(ids)
    cols = [c for n in NS for c in (f"unique_{n}", f"total_{n}")]
    sums = per.groupby("prompt_id")[cols].sum().reindex(ids).fillna(0).to_numpy(float).reshape(len(ids), len(NS), 2)
    coh = per.dropna(subset=["coherence"]).groupby("prompt_id").coherence.mean().reindex(ids).to_numpy(float) \
        if "coherence" in per else np.full(len(ids), np.nan)
    return ids, sums, coh


def diversity_of_sums(sums: np.ndarray) -> np.ndarray:
    """Pooled diversity of (..., P, len(NS), 2) n-gram sums over the P axis (vectorised diversity_from_counts)."""
    tot = sums.sum(axis=-3)
    share = np.divide(tot[..., 0], tot[..., 1], out=np.ones_like(tot[..., 0]), where=tot[..., 1] > 0)
    return 100.0 * share.prod(axis=-1)


def resamples(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_units) indices of the prefix bootstrap (one draw shared by every statistic of a call)."""
    return np.random.default_rng(seed).integers(0, n_units, (n_boot, n_units))


def percentile_ci(values, alpha: float = 0.05) -> tuple[float, float]:
    lo, hi = np.nanquantile(np.asarray(values, float), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def diversity_of(per: pd.DataFrame) -> float:
    """Pooled diversity of the rows of a per-prompt table."""
    return diversity_from_counts({n: (per[f"unique_{n}"].sum(), per[f"total_{n}"].sum()) for n in NS})


def _prefix_mean(per: pd.DataFrame, col: str) -> float:
    """Mean of per-prefix means (a prefix's seeds averaged first): every prefix weighs the same."""
    d = per.dropna(subset=[col])
    return float(d.groupby("prompt_id")[col].mean().mean()) if len(d) else float("nan")


def summary_table(per: pd.DataFrame, *, unit: str, scorer: str, n_boot: int, seed: int) -> pd.DataFrame:
    rows = []
    for method, g in per.groupby("method", sort=False):
        seeds = sorted(g.seed.unique())
        by_seed = [diversity_of(g[g.seed == s]) for s in seeds]
        row = dict(method=method, kind=g.kind.iloc[0], n_prompts=g.prompt_id.nunique(), n_seeds=len(seeds),
                   n_generations=len(g), ngram_unit=unit, coherence_scorer=scorer)
        for n in NS:
            row[f"rep_{n}"] = rep_n(g[f"unique_{n}"].sum(), g[f"total_{n}"].sum())
        row["diversity"] = diversity_of(g)
        row["diversity_seed_mean"] = float(np.mean(by_seed))
        row["diversity_seed_std"] = float(np.std(by_seed, ddof=1)) if len(seeds) > 1 else 0.0
        _, sums, coh = prompt_arrays(g)
        picks = resamples(len(sums), n_boot, seed)
        row["diversity_ci_low"], row["diversity_ci_high"] = percentile_ci(diversity_of_sums(sums[picks]))
        row["length_words"] = float(g.words.mean())
        row["n_new_tokens"] = float(g.n_new_tokens.mean())
        row["eos_rate"] = float(g.ended_eos.mean())
        row["coherence"] = _prefix_mean(g, "coherence")
        if np.isfinite(coh).any():
            row["coherence_ci_low"], row["coherence_ci_high"] = percentile_ci(np.nanmean(coh[picks], axis=1))
        row["mauve"] = "not run: mauve-text is not installed offline here, and at a few dozen texts it is unstable"
        rows.append(row)
    return pd.DataFrame(rows)


CONTROL = "human_other_prefix"


def mismatched_control(gen: pd.DataFrame) -> pd.DataFrame:
    """The scorer's premise check: each human continuation after the NEXT prefix's text (cyclically). A scorer
    that reads the prefix gives a continuation its own prefix a higher log-prob than another's; one that does
    not (a unigram-like model) cannot judge coherence. Rows: method human_other_prefix, kind control."""
    human = gen[gen.method == "human"].reset_index(drop=True)
    if len(human) < 2:
        return human.iloc[0:0]
    other = human.copy()
    other["prefix"] = list(human.prefix.iloc[1:]) + [human.prefix.iloc[0]]
    other["method"], other["kind"] = CONTROL, "control"
    return other


def coherence(scorer, tok, prefixes: list[str], continuations: list[str], start: str, batch_size: int = 32
              ) -> list[float]:
    """Mean log-prob per continuation token under the scorer, given start + prefix (NaN when it has no token)."""
    from experiments.lm.score import continuation_logprobs

    scores = continuation_logprobs(scorer, tok, [start + p for p in prefixes], list(continuations),
                                   batch_size=batch_size)
    return [s.logprob / s.n_tokens if s.n_tokens else float("nan") for s in scores]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", required=True)
    ap.add_argument("--scorer-spec", required=True, help="coherence model (never the generator)")
    ap.add_argument("--scorer-id", required=True)
    ap.add_argument("--scorer-start", choices=["bos", "none"], default="bos",
                    help="bos: the scorer's bos (else eos) token before the prefix (the paper's OPT); none")
    ap.add_argument("--unit", choices=UNITS, default="word")
    ap.add_argument("--bootstrap", type=int, default=1000)
    add_runtime_args(ap)
    add_output_args(ap, ["summary", "per_prompt"])
    args = ap.parse_args(argv)
    device = setup_runtime(args)

    from experiments.lm.load import load_model

    gen = pd.read_csv(args.generations, keep_default_na=False)
    if args.scorer_id in set(gen.get("generator", [])):
        raise ValueError(f"the coherence scorer {args.scorer_id!r} is the generator; the paper scores with another")
    scorer, tok = load_model(args.scorer_spec, device=device)
    start = (tok.bos_token or tok.eos_token or "") if args.scorer_start == "bos" else ""
    gen = pd.concat([gen, mismatched_control(gen)], ignore_index=True)
    per = per_prompt_table(gen, args.unit)
    per["coherence"] = coherence(scorer, tok, gen.prefix.tolist(), gen.continuation.tolist(), start)
    per.insert(0, "generator", gen.generator.iloc[0] if "generator" in gen else "")
    per["coherence_scorer"] = args.scorer_id
    out = output_paths(args, ["summary", "per_prompt"])
    summary = summary_table(per, unit=args.unit, scorer=args.scorer_id, n_boot=args.bootstrap, seed=args.seed)
    summary.insert(0, "generator", per.generator.iloc[0])
    atomic_write_csv(per, out["per_prompt"], allow_nan=["coherence"])
    atomic_write_csv(summary, out["summary"], allow_nan=["coherence", "coherence_ci_low", "coherence_ci_high"])
    cols = ["method", "rep_2", "rep_3", "rep_4", "diversity", "length_words", "coherence"]
    print(summary[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
