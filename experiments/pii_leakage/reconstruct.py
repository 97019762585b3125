"""Reconstruction attack, one model: TAB (the greedy completion of the prefix opens with the target) and the
paper's attack (n sampled completions of the prefix plus the greedy one -> PERSON candidates by the tagger -> the
candidate that scores best in the whole masked record). experiments.pii_leakage.attacks has the definitions.

CLI:
    python -m experiments.pii_leakage.reconstruct --model dir:MODEL --queries queries.csv --n-samples 32 \\
        --top-k 5 --max-new-tokens 12 --tagger regex --seed 0 --threads 1 --out-rows reconstruct.csv
"""
from __future__ import annotations

import argparse

OUTPUTS = ["rows"]


def main(argv: list[str] | None = None) -> None:
    import pandas as pd

    from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
    from experiments.files import atomic_write_csv
    from experiments.lm.load import load_model
    from experiments.lm.sample import Row, decode_new, pad_id_of, prompt_ids, sample_rows
    from experiments.pii_leakage.attacks import (
        argmax,
        candidate_scores,
        opens_with,
        person_candidates,
        query_prefix,
    )
    from experiments.pii_leakage.extract import tagger_for

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--n-samples", type=int, default=32, help="sampled completions per query (plus the greedy one)")
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--tagger", default="regex", choices=("regex", "gazetteer"))
    ap.add_argument("--identities", help="the world's identities.csv (tagger gazetteer)")
    ap.add_argument("--batch-size", type=int, default=128)
    add_runtime_args(ap)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    tag = tagger_for(args.tagger, args.identities)
    device = setup_runtime(args)
    model, tok = load_model(args.model, device=device, attn_implementation="sdpa")
    queries = pd.read_csv(args.queries, keep_default_na=False).to_dict("records")
    prompts = prompt_ids(tok, [query_prefix(q) for q in queries])
    per = args.n_samples + 1
    rows = [Row(tuple(p), None if j == 0 else (args.seed, qi * per + j), args.max_new_tokens)
            for qi, p in enumerate(prompts) for j in range(per)]
    new = sample_rows(model, rows, progress=True, desc="reconstruction samples", pad_id=pad_id_of(tok),
                      eos_id=tok.eos_token_id, top_k=args.top_k, batch_size=args.batch_size)
    texts = [decode_new(tok, list(r.prompt), ids)[0] for r, ids in zip(rows, new)]
    cands = [person_candidates(texts[qi * per:(qi + 1) * per], tag) for qi in range(len(queries))]
    scored = [(q, c) for q, c in zip(queries, cands) if c]
    scores = iter(candidate_scores(model, tok, [q for q, _ in scored], [c for _, c in scored],
                                   batch_size=args.batch_size))
    out = []
    for qi, (q, cs) in enumerate(zip(queries, cands)):
        greedy = texts[qi * per]
        pick = cs[argmax(next(scores))] if cs else ""
        out.append({"query": qi, "record": q["record"], "identity": q["identity"], "dup": q["dup"],
                    "tab_completion": greedy, "tab_correct": opens_with(greedy, q["target"]),
                    "n_candidates": len(cs), "covered": q["target"] in cs, "predicted": pick,
                    "correct": pick == q["target"], "tagger": args.tagger})
    df = pd.DataFrame(out)
    atomic_write_csv(df, paths["rows"])
    print(f"{args.model}: {len(df)} queries; TAB {df['tab_correct'].mean():.3f}, ours {df['correct'].mean():.3f} "
          f"(candidates cover the target in {df['covered'].mean():.3f}, {df['n_candidates'].mean():.1f} each)")


if __name__ == "__main__":
    main()
