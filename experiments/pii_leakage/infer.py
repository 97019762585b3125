"""Inference attack, one model (a target or the base): for each query and candidate-set size C and distractor
pool, the best-scoring candidate (experiments.pii_leakage.attacks). The candidate sets depend only on the query,
C, the pool and the seed, so the base model's run sees the same sets as every target's (the skip of "baseline
leakage" joins them in the aggregation).

CLI:
    python -m experiments.pii_leakage.infer --model dir:MODEL --queries queries.csv --identities identities.csv \\
        --sizes 10 100 --pools member nonmember --seed 0 --threads 1 --out-rows infer.csv
"""
from __future__ import annotations

import argparse

OUTPUTS = ["rows"]
POOLS = ("member", "nonmember")  # distractor pools: values of identities.pool


def main(argv: list[str] | None = None) -> None:
    import pandas as pd
    from tqdm import tqdm

    from experiments.cli import add_output_args, add_runtime_args, output_paths, setup_runtime
    from experiments.files import atomic_write_csv
    from experiments.lm.load import load_model
    from experiments.pii_leakage.attacks import argmax, candidate_scores, draw_candidates

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--identities", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", required=True)
    ap.add_argument("--pools", nargs="+", default=list(POOLS), choices=list(POOLS))
    ap.add_argument("--batch-size", type=int, default=128)
    add_runtime_args(ap)
    add_output_args(ap, OUTPUTS)
    args = ap.parse_args(argv)
    paths = output_paths(args, OUTPUTS)
    if min(args.sizes) < 2:
        ap.error("--sizes: a candidate set needs at least 2 candidates")
    device = setup_runtime(args)
    model, tok = load_model(args.model, device=device, attn_implementation="sdpa")
    queries = pd.read_csv(args.queries, keep_default_na=False).to_dict("records")
    ids = pd.read_csv(args.identities, keep_default_na=False)
    rows = []
    for pool in tqdm(args.pools, desc="pools"):
        names = list(ids.loc[ids["pool"] == pool, "name"])
        for size in args.sizes:
            cands = draw_candidates(queries, names, size, seed=args.seed)
            scores = candidate_scores(model, tok, queries, cands, batch_size=args.batch_size)
            for qi, (q, cs, sc) in enumerate(zip(queries, cands, scores)):
                pick = cs[argmax(sc)]
                rows.append({"query": qi, "record": q["record"], "identity": q["identity"], "dup": q["dup"],
                             "pool": pool, "size": size, "predicted": pick, "correct": pick == q["target"],
                             "target_logprob": sc[cs.index(q["target"])], "best_logprob": max(sc)})
    out = pd.DataFrame(rows)
    atomic_write_csv(out, paths["rows"])
    for (pool, size), g in out.groupby(["pool", "size"]):
        print(f"{args.model}: distractors {pool}, C={size}: accuracy {g['correct'].mean():.3f} "
              f"(chance {1 / size:.3f}, {len(g)} queries)")


if __name__ == "__main__":
    main()
