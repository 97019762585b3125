"""Evaluate one model: validation loss, sampled continuations of held-out beginnings, and their grades.

Measured (one row per metric, long format; CIs are 95% percentile bootstraps):
    val_loss_nats            mean next-token cross-entropy on fixed validation blocks from the END of the
                             validation stream (disjoint from the blocks training monitors and picks the
                             learning rate on; CI over blocks)
    grammar_rate             share of generated sentences that parse under the generating grammar
                             (CI over continuations); an unfinished last sentence cut by the token limit
                             is not graded
    completion_grammar_rate  share of continuations whose first sentence (the prompt's cut sentence plus
                             the model's words up to the sentence end) parses: "completes the split sentence"
    consistency_rate         share of checked references (pronouns, names, object colour/size, place) in
                             the continuations that agree with the story's planted facts
    cloze_accuracy[_<kind>]  accuracy of picking the true fact among same-class alternatives of equal token
                             length by summed log-prob (cloze.py; with cloze_chance = mean 1/k and
                             cloze_items_dropped, the items left with a single equal-length option)
    distinct_2, distinct_3   unique / total word n-grams over all continuations
    novelty_<n>              share of generated word n-grams absent from the training corpus (copying check)
    judge_<grade>            mean grade of an LLM judge, when one is configured
    words_per_continuation   mean length of the graded continuations

`--metrics loss_cloze` stops after the validation loss and the cloze probes (the learning-rate sweep's
models need nothing else). `--model reference` grades the generator's own held-out continuations
instead of a model: the ceiling of every exact metric (should be 1.0 for grammar and consistency).

CLI: python -m experiments.tinystories.evaluate --model dir:MODEL --model-id w64_l2_s0 --val val.npy \
        --prompts prompts.jsonl --cloze cloze.jsonl --train-corpus train.txt --eval-config '{...}' \
        --judge exact --scale mini --block-size 128 --out eval.csv --samples samples.jsonl
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from experiments.data.tokens import eval_blocks
from experiments.files import atomic_write_csv, atomic_write_text
from experiments.lm.build import count_params
from experiments.lm.devices import pick_device
from experiments.lm.load import load_model
from experiments.lm.sample import sample
from experiments.lm.score import block_losses
from experiments.lm.tokenizer import iter_documents
from experiments.stats import bootstrap_ci, ratio_ci
from experiments.tinystories import metrics
from experiments.tinystories.cloze import cloze_metrics, score_items
from experiments.tinystories.judge import ExactStoryWorldJudge, make_judge


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def model_info(model, model_id: str, scale: str, seed: int, lr: float) -> dict:
    cfg = model.config
    n = count_params(model)
    width = getattr(cfg, "n_embd", None) or getattr(cfg, "hidden_size")
    depth = getattr(cfg, "n_layer", None) or getattr(cfg, "num_layers")
    return dict(model_id=model_id, arch=cfg.model_type, width=width, depth=depth,
                n_heads=getattr(cfg, "n_head", None) or getattr(cfg, "num_heads"), seed=seed, lr=lr, scale=scale,
                **n)


def row(info: dict, metric: str, value: float, ci=(float("nan"), float("nan")), n: int = 0) -> dict:
    if not np.isfinite(value):
        raise FloatingPointError(f"{info['model_id']}: metric {metric} is {value}")
    return {**info, "metric": metric, "value": float(value), "ci_low": float(ci[0]), "ci_high": float(ci[1]),
            "n": int(n)}


def trim_unfinished(completion: str, finished: bool) -> str:
    """Drop a last sentence that the token limit cut off (a row that ended at EOS is graded whole)."""
    if finished:
        return completion
    ends = list(re.finditer(r'[.!?]"?', completion))
    return completion[: ends[-1].end()] if ends else completion


def exact_grades(prompts: list[dict], completions: list[str]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Per-sample exact StoryWorld grades, and per-sample count arrays for pooled rates."""
    judge = ExactStoryWorldJudge()
    grades = [judge.grade(p["prompt"], c, p.get("facts")) for p, c in zip(prompts, completions)]
    n_sent = np.asarray([g["n_sentences"] for g in grades], dtype=float)
    ok = np.asarray([round((g["grammar"] or 0.0) * g["n_sentences"]) for g in grades], dtype=float)
    per = {"sentences": n_sent, "grammatical": ok,
           "completes": np.asarray([g["completes_sentence"] for g in grades], dtype=float),
           "checks": np.asarray([g["n_checks"] for g in grades], dtype=float),
           "consistent": np.asarray([g["n_consistent"] for g in grades], dtype=float)}
    records = [{"grammar_rate": g["grammar"], "grammatical_sentences": int(k), "sentences": int(n),
                "completes_sentence": bool(g["completes_sentence"]), "checked_refs": g["n_checks"],
                "consistent_refs": g["n_consistent"]} for g, k, n in zip(grades, ok, n_sent)]
    return records, per


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model spec (dir:..., hub:...) or 'reference'")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--seed", type=int, default=0, help="training seed of the model (a column); also seeds sampling")
    ap.add_argument("--lr", type=float, default=float("nan"), help="peak learning rate the model was trained with "
                    "(a column; NaN for models trained elsewhere)")
    ap.add_argument("--val", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--cloze", required=True)
    ap.add_argument("--train-corpus", required=True)
    ap.add_argument("--eval-config", required=True)
    ap.add_argument("--metrics", default="all", choices=["all", "loss_cloze"],
                    help="loss_cloze: validation loss and cloze probes only (no sampling, no grades)")
    ap.add_argument("--judge", default="exact", choices=["exact", "none", "hf_local"])
    ap.add_argument("--judge-model", default="none")
    ap.add_argument("--judge-converted-dir", default=None)
    ap.add_argument("--scale", required=True)
    ap.add_argument("--block-size", type=int, default=None, help="validation block length (default: model context)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--samples", required=True)
    args = ap.parse_args(argv)
    cfg = json.loads(args.eval_config)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    t0 = time.time()
    prompts = read_jsonl(args.prompts, cfg["n_prompts"])
    reps = cfg["samples_per_prompt"]
    rows: list[dict] = []

    if args.model == "reference":
        model = tok = None
        info = dict(model_id="reference", arch="reference", width=0, depth=0, n_heads=0, seed=0, lr=float("nan"),
                    scale=args.scale, params_total=0, params_non_embedding=0)
        expanded = [p for p in prompts for _ in range(reps)]
        continuations = [p["reference"] for p in expanded]
        finished = [True] * len(continuations)
    else:
        model, tok = load_model(args.model, device=device)
        info = model_info(model, args.model_id, args.scale, args.seed, args.lr)
        print(f"{args.model_id}: {info['params_total']:,} params on {device}", flush=True)
        context = model.config.max_position_embeddings if hasattr(model.config, "max_position_embeddings") \
            else model.config.n_positions
        block = min(args.block_size or context, context)
        blocks = eval_blocks(np.load(args.val, mmap_mode="r"), block, cfg["val_blocks"], from_end=True)
        with torch.inference_mode():
            losses = block_losses(model, blocks.to(device))
        rows.append(row(info, "val_loss_nats", losses.mean(), bootstrap_ci(losses, cfg["bootstrap"]), len(losses)))
        print(f"val loss {losses.mean():.4f} over {len(losses)} blocks of {block}", flush=True)

        cloze = read_jsonl(args.cloze, cfg["n_cloze"]) if cfg["n_cloze"] else []
        if cloze:
            scored = score_items(model, tok, cloze, progress=True)
            rows += [row(info, m, v, ci, n) for m, v, ci, n in cloze_metrics(scored, len(cloze), cfg["bootstrap"])]

        if args.metrics == "loss_cloze":
            atomic_write_csv(pd.DataFrame(rows), args.out, allow_nan=["ci_low", "ci_high", "lr"])
            atomic_write_text(args.samples, "")
            print(pd.DataFrame(rows)[["metric", "value", "ci_low", "ci_high"]].to_string(index=False))
            print(f"done (loss and cloze only) in {time.time() - t0:.1f} s", flush=True)
            return

        expanded = [p for p in prompts for _ in range(reps)]
        longest = max(len(tok(p["prompt"])["input_ids"]) for p in prompts)
        room = context - longest - 1
        if room < 16:
            raise ValueError(f"the longest prompt has {longest} tokens and the model {context} positions: "
                             "raise the model context (tinystories.model.context) or shorten the prompts")
        continuations, finished = sample(
            model, tok, [p["prompt"] for p in expanded], max_new_tokens=min(cfg["max_new_tokens"], room),
            temperature=cfg["temperature"], top_k=cfg["top_k"], top_p=cfg["top_p"], seed=info["seed"],
            desc="sampling", return_finished=True)

    n_boot = cfg["bootstrap"]
    graded = [trim_unfinished(c, f) for c, f in zip(continuations, finished)]
    records: list[dict] = [{} for _ in continuations]
    if args.judge == "exact":
        records, per = exact_grades(expanded, graded)
        value, ci = ratio_ci(per["grammatical"], per["sentences"], n_boot)
        rows.append(row(info, "grammar_rate", value, ci, int(per["sentences"].sum())))
        comp = per["completes"]
        rows.append(row(info, "completion_grammar_rate", comp.mean(), bootstrap_ci(comp, n_boot), len(comp)))
        value, ci = ratio_ci(per["consistent"], per["checks"], n_boot)
        if np.isfinite(value):
            rows.append(row(info, "consistency_rate", value, ci, int(per["checks"].sum())))
    elif args.judge == "hf_local":
        judge = make_judge("hf_local", args.judge_model, converted_dir=args.judge_converted_dir, device=device)
        grades = judge.grade_many([p["prompt"] for p in expanded], graded)
        for key in ("grammar", "creativity", "consistency", "plot"):
            vals = np.asarray([g[key] for g in grades if g.get(key) is not None], dtype=float)
            if len(vals):
                rows.append(row(info, f"judge_{key}", vals.mean(), bootstrap_ci(vals, n_boot), len(vals)))
        parsed = np.asarray([g.get("grammar") is not None for g in grades], dtype=float)
        rows.append(row(info, "judge_parse_rate", parsed.mean(), n=len(parsed)))
        records = [{f"judge_{k}": v for k, v in g.items()} for g in grades]
    for rec, f in zip(records, finished):
        rec["ended_at_eos"] = f

    rows.append(row(info, "distinct_2", metrics.distinct_n(continuations, 2), n=len(continuations)))
    rows.append(row(info, "distinct_3", metrics.distinct_n(continuations, 3), n=len(continuations)))
    n = cfg["novelty_n"]
    train_ngrams = metrics.ngram_set(iter_documents(args.train_corpus), n)
    rows.append(row(info, f"novelty_{n}", metrics.novelty(continuations, train_ngrams, n), n=len(continuations)))
    words = np.asarray([len(c.split()) for c in continuations], dtype=float)
    rows.append(row(info, "words_per_continuation", words.mean(), bootstrap_ci(words, n_boot), len(words)))

    atomic_write_csv(pd.DataFrame(rows), args.out, allow_nan=["ci_low", "ci_high", "lr"])
    samples = []
    for i, (p, c, rec) in enumerate(zip(expanded, continuations, records)):
        samples.append({"model_id": info["model_id"], "prompt_index": i // reps, "sample_index": i % reps,
                        "story_id": p.get("story_id"), "prompt": p["prompt"], "completion": c, **rec})
    atomic_write_text(args.samples, "".join(json.dumps(s) + "\n" for s in samples))
    print(pd.DataFrame(rows)[["metric", "value", "ci_low", "ci_high"]].to_string(index=False))
    print(f"done in {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
