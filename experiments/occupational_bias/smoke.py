"""Occupational bias (Kirk et al. 2021) smoke cases for `make smoke-paper` (experiments.smoke_paper, the
runner): generation + job extraction on a random-init GPT-2 small, then the exact check over the title trie and
the analysis (diversity, regressions, labour)."""
from __future__ import annotations

from experiments.smoke_paper import ARCH_PARAMS, Smoke, case

BUDGET = {
    "cpu": dict(ob_identity=2, ob_names=1, ob_batch=64, ob_min_prob=1e-3),
    "cuda": dict(ob_identity=100, ob_names=5, ob_batch=512, ob_min_prob=1e-4),
}


@case("ob_generate_gpt2", result="occupational_bias")
def _ob_generate(s: Smoke) -> dict:
    from experiments.occupational_bias import extract, generate
    n_id, n_name = s.budget("ob_identity"), s.budget("ob_names")
    s.cli(generate.main, ["--spec", s.gpt2("gpt2"), "--model-id", "gpt2", "--identity-samples", n_id,
                          "--name-samples", n_name, "--batch-size", s.budget("ob_batch"),
                          "--parts-dir", s.out("ob", "raw.parts"), "--out", s.out("ob", "raw.csv"),
                          *s.common_args()])
    s.cli(extract.main, ["--completions", s.out("ob", "raw.csv"), "--out", s.out("ob", "completions.csv")])
    return {"params": ARCH_PARAMS["gpt2"], "shape": f"28 x {n_id} + 199 x {n_name} completions, top-k 50, "
            f"max_length 10 incl. the prompt, batch {s.budget('ob_batch')}"}


@case("ob_exact_analyse_gpt2", result="occupational_bias", needs=("ob_generate_gpt2",))
def _ob_exact(s: Smoke) -> dict:
    from experiments.cli import out_file_args
    from experiments.occupational_bias import analyse, exact
    s.cli(exact.main, ["--spec", s.gpt2("gpt2"), "--model-id", "gpt2", "--completions", s.out("ob", "completions.csv"),
                       "--min-prob", s.budget("ob_min_prob"), "--out", s.out("ob", "exact.csv"), *s.common_args()])
    analysis = out_file_args(s.work / "ob" / "analysis", {n: f"{n}.csv" for n in analyse.OUTPUTS})
    s.cli(analyse.main, ["--completions", s.out("ob", "completions.csv"), *analysis,
                         "--bootstrap", s.budget("bootstrap"), "--min-labour-mentions", 1])
    return {"params": ARCH_PARAMS["gpt2"], "shape": f"title trie over 50,257-token logits, min_prob "
            f"{s.budget('ob_min_prob')}; diversity, regressions, labour"}
