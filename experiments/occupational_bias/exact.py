"""Exact probability, under the model and the sampler's filtering, that a completion starts with each job.

"Leading job" = the canonical job of the title that starts the continuation (the gazetteer's longest
match at word 0). For a prompt, walk the trie of the title token sequences (" " + title): at node v
(the continuation starts with tokens v) the next-token distribution q_v is the one `sample` draws from
(temperature, top-k, top-p). A title t ending at node v is the leading title when the next token
starts a new word (space, punctuation, EOS) or the token budget is used up, minus the mass of word
starts that go on to complete a longer title:

    L(v)  = sum_child q_v(c) L(c)  +  [v is a title] * (B(v) - sum_{word-start child c} q_v(c) M(c))
    M(c)  = total mass of L(c) (a longer title completed below c),  B(v) = mass of word-start tokens

Nodes whose probability falls below `min_prob` are not expanded; their mass is reported as
`pruned_mass` (an upper bound on what the exact numbers miss). A continuation that spells a title
with a non-canonical tokenization or in capitals is not counted (the sampled side uses the same
lowercasing extractor, so such cases show up as a small excess of sampled over exact mass).
"""
from __future__ import annotations

from collections import defaultdict

import torch

from experiments.lm.sample import sampling_probs


def title_trie(tokenizer, titles: dict[str, str]) -> tuple[dict, dict]:
    """children: prefix tuple -> set of next token ids; terminal: token tuple -> canonical job."""
    children, terminal = defaultdict(set), {}
    for title, canon in titles.items():
        ids = tuple(tokenizer(" " + title, add_special_tokens=False)["input_ids"])
        if not ids:
            continue
        terminal.setdefault(ids, canon)
        for d in range(len(ids)):
            children[ids[:d]].add(ids[d])
    return children, terminal


def word_start_mask(tokenizer) -> torch.Tensor:
    """True for tokens that start a new word: their text begins with a non-letter (or is empty / special)."""
    n = len(tokenizer)
    mask = torch.ones(n, dtype=torch.bool)
    for i in range(n):
        text = tokenizer.decode([i])
        mask[i] = not (text[:1].isalpha())
    return mask


@torch.inference_mode()
def next_token_probs(model, prompt_ids: list[int], prefixes: list[tuple], *, temperature: float, top_k, top_p,
                     batch_size: int = 256) -> torch.Tensor:
    """q_v for each prefix v (rows), computed by batched forward passes of prompt + v (right padded)."""
    out = []
    for s in range(0, len(prefixes), batch_size):
        rows = [prompt_ids + list(v) for v in prefixes[s:s + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        last = torch.tensor([len(r) - 1 for r in rows], device=logits.device)
        step = logits[torch.arange(len(rows), device=logits.device), last]
        out.append(sampling_probs(step, temperature, top_k, top_p).cpu())
    return torch.cat(out)


def leading_job_probs(model, tokenizer, prompt_ids: list[int], children: dict, terminal: dict,
                      word_start: torch.Tensor, *, max_new_tokens: int, temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None, min_prob: float = 1e-5,
                      eos_id: int | None = None) -> tuple[dict[str, float], float]:
    """({canonical job: exact probability of being the leading job}, pruned mass)."""
    prob = {(): 1.0}
    q: dict[tuple, torch.Tensor] = {}
    frontier, pruned = [()], 0.0
    depth = 0
    while frontier:
        expand = [v for v in frontier if prob[v] >= min_prob and depth < max_new_tokens]
        pruned += sum(prob[v] for v in frontier if prob[v] < min_prob and (v in children or v in terminal))
        if expand:
            for v, row in zip(expand, next_token_probs(model, prompt_ids, expand, temperature=temperature,
                                                       top_k=top_k, top_p=top_p)):
                q[v] = row
        nxt = []
        for v in expand:
            for c in children.get(v, ()):
                p = prob[v] * float(q[v][c])
                if p > 0:
                    prob[v + (c,)] = p
                    nxt.append(v + (c,))
        frontier, depth = nxt, depth + 1

    ws = word_start.clone()
    if eos_id is not None:
        ws[eos_id] = True
    memo: dict[tuple, dict[str, float]] = {}

    def leading(v: tuple) -> dict[str, float]:
        """Distribution of the leading title given the continuation starts with v (conditional on v)."""
        if v in memo:
            return memo[v]
        dist: dict[str, float] = defaultdict(float)
        if v not in q:  # budget used up (the text ends here) or pruned
            if v in terminal and len(v) >= max_new_tokens:
                dist[terminal[v]] += 1.0
            memo[v] = dist
            return dist
        longer = 0.0
        for c in children.get(v, ()):
            qc = float(q[v][c])
            if qc <= 0 or v + (c,) not in prob:
                continue
            sub = leading(v + (c,))
            for job, p in sub.items():
                dist[job] += qc * p
            if ws[c]:
                longer += qc * sum(sub.values())
        if v in terminal:
            boundary = float(q[v][ws].sum())
            dist[terminal[v]] += max(0.0, boundary - longer)
        memo[v] = dist
        return dist

    return dict(leading(())), pruned


def main(argv: list[str] | None = None) -> None:
    """CLI: exact leading-job probabilities per identity prompt next to the sampled frequencies.

    python -m experiments.occupational_bias.exact --spec dir:M --model-id X --completions completions.csv \
        --out exact.csv [--top-k 50 --max-length 10 --prompt-prefix ... --min-prob 1e-5]
    """
    import argparse

    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from experiments.cli import add_sampling_args, sampling_options
    from experiments.files import atomic_write_csv
    from experiments.lm.devices import pick_device
    from experiments.lm.load import load_model
    from experiments.occupational_bias.extract import GazetteerExtractor, load_title_table
    from experiments.occupational_bias.generate import new_tokens

    ap = argparse.ArgumentParser(description=main.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--completions", required=True, help="completions CSV of this model (sampled side)")
    add_sampling_args(ap)
    ap.add_argument("--min-prob", type=float, default=1e-5)
    ap.add_argument("--titles", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    sampling = sampling_options(ap, args)
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tok = load_model(args.spec, device=pick_device(args.device))
    model.eval()
    table = load_title_table(args.titles)
    extractor = GazetteerExtractor(table)
    children, terminal = title_trie(tok, table)
    ws = word_start_mask(tok)
    comp = pd.read_csv(args.completions, keep_default_na=False)
    comp = comp[comp["prompt_type"] == "identity"]
    comp = comp.assign(leading=[extractor.leading_job(c) for c in comp["continuation"]])
    rows = []
    keys = ["prompt_type", "prompt", "group", "gender", "category", "category_value"]
    for key, g in tqdm(list(comp.groupby(keys, sort=False)), desc=f"{args.model_id} exact job probabilities"):
        meta = dict(zip(keys, key))
        prompt_ids = tok(sampling["prefix"] + meta["prompt"])["input_ids"]
        budget = new_tokens(tok, meta["prompt"], sampling["max_length"], sampling["max_new_tokens"])
        exact, pruned = leading_job_probs(model, tok, prompt_ids, children, terminal, ws, max_new_tokens=budget,
                                          temperature=sampling["temperature"], top_k=sampling["top_k"],
                                          top_p=sampling["top_p"],
                                          min_prob=args.min_prob, eos_id=tok.eos_token_id)
        counts = g["leading"].value_counts()
        n = len(g)
        for job in sorted(set(exact) | set(counts.index) - {""}):
            p = exact.get(job, 0.0)
            k = int(counts.get(job, 0))
            se = np.sqrt(max(p * (1 - p), 1e-12) / n)
            rows.append({"model_id": args.model_id, **meta, "job": job, "exact_prob": p, "sampled_count": k,
                         "n": n, "sampled_share": k / n, "z": (k / n - p) / se, "pruned_mass": pruned})
        p_none = max(0.0, 1.0 - sum(exact.values()) - pruned)
        k = int(counts.get("", 0))
        rows.append({"model_id": args.model_id, **meta, "job": "", "exact_prob": p_none, "sampled_count": k, "n": n,
                     "sampled_share": k / n, "z": (k / n - p_none) / np.sqrt(max(p_none * (1 - p_none), 1e-12) / n),
                     "pruned_mass": pruned})
    out = pd.DataFrame(rows)
    atomic_write_csv(out, args.out)
    big = out[(out["exact_prob"] * out["n"] >= 5) & (out["job"] != "")]
    print(f"{len(out)} prompt x job cells; |z| > 1.96 in {(big['z'].abs() > 1.96).mean():.1%} of {len(big)} cells "
          f"with n p >= 5; max pruned mass {out['pruned_mass'].max():.2e} -> {args.out}")


if __name__ == "__main__":
    main()
