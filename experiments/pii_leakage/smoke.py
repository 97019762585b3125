"""PII leakage (Lukas et al. 2023) smoke cases for `make smoke-paper` (experiments.smoke_paper, the runner): the
paper config's fine-tunes of a random-init GPT-2 small (undefended, and DP-SGD with opacus' per-sample gradients
through GPT-2's Conv1D layers at block 1024), then extraction, inference and reconstruction on the target with the
paper's sampling lengths. Records come from a small planted world (ECHR is not offline); only the budget (records,
epochs, samples, candidates) is smaller than config/paper.yaml's."""
from __future__ import annotations

import json

from experiments.smoke_paper import ARCH_PARAMS, Smoke, case

# DP on CPU: per-sample gradients of GPT-2 small are 0.5 GB per record in the batch, so a few records
BUDGET = {
    "cpu": dict(pii_members=2, pii_nonmembers=12, pii_epochs=0.05, pii_batch=4, pii_dp_batch=4, pii_samples=2,
                pii_new_tokens=32, pii_sizes=[10], pii_rec_samples=2),
    "cuda": dict(pii_members=20, pii_nonmembers=120, pii_epochs=0.5, pii_batch=None, pii_dp_batch=None, pii_samples=64,
                 pii_new_tokens=None, pii_sizes=[100], pii_rec_samples=None),
}


def _world(s: Smoke) -> dict:
    def build():
        from experiments.pii_leakage import queries, world
        outs = {k: s.out("pii", "data", f) for k, f in (("records", "records.jsonl"), ("identities", "identities.csv"),
                                                          ("truth", "truth.csv"), ("train", "train.txt"),
                                                          ("test", "test.txt"), ("public", "public.txt"))}
        cfg = {"seed": 0, "duplication": [1, 4], "members_per_level": s.budget("pii_members"),
               "n_nonmembers": s.budget("pii_nonmembers"),
               "n_public": 20, "public_records_per_identity": 1}
        s.cli(world.main, ["--world", json.dumps(cfg), *[f"--out-{k}={v}" for k, v in outs.items()]])
        outs["queries"] = s.out("pii", "queries.csv")
        s.cli(queries.main, ["--records", outs["records"], "--identities", outs["identities"],
                             "--out-queries", outs["queries"]])
        return outs
    return s.fixture("pii world", build)


def _finetune(s: Smoke, name: str, dp: bool) -> str:
    from experiments.pii_leakage import finetune
    from experiments.pii_leakage.manifest import record_config
    p = s.paper["pii_leakage"]
    defense = next(d["id"] for d in p["defenses"] if (d.get("dp_epsilon") is not None) == dp and not d.get("scrub"))
    cfg = {**record_config(p, defense), "epochs": s.budget("pii_epochs")}
    cfg["batch_size"] = s.budget("pii_dp_batch" if dp else "pii_batch", cfg["batch_size"])
    out = s.out("pii", "models", name)
    s.cli(finetune.main, ["--base", s.gpt2("gpt2"), "--text", _world(s)["train"], "--train-config", json.dumps(cfg),
                          "--checkpoint-dir", s.out("pii", "ck", name), "--out", out,
                          "--curve", s.out("pii", f"curve_{name}.csv"), *s.common_args()])
    return f"block {cfg['block']}, batch {cfg['batch_size']}" + (f", DP epsilon {cfg['dp_epsilon']:g}" if dp else "")


@case("pii_finetune_gpt2", result="pii_leakage")
def _pii_finetune(s: Smoke) -> dict:
    return {"params": ARCH_PARAMS["gpt2"], "shape": _finetune(s, "undefended", dp=False)}


@case("pii_finetune_dp_gpt2", result="pii_leakage")
def _pii_finetune_dp(s: Smoke) -> dict:
    return {"params": ARCH_PARAMS["gpt2"], "shape": _finetune(s, "dp", dp=True) + " (opacus per-sample gradients)"}


@case("pii_attacks_gpt2", result="pii_leakage", needs=("pii_finetune_gpt2",))
def _pii_attacks(s: Smoke) -> dict:
    from experiments.pii_leakage import extract, infer, membership, reconstruct
    p, w = s.paper["pii_leakage"], _world(s)
    target, e, r = f"dir:{s.work / 'pii' / 'models' / 'undefended'}", p["extraction"], p["reconstruction"]
    new = s.budget("pii_new_tokens", e["max_new_tokens"])
    s.cli(extract.main, ["--model", target, "--n-samples", s.budget("pii_samples"), "--max-new-tokens", new,
                         "--top-k", e["top_k"], "--batch-size", e["batch_size"], "--tagger", p["tagger"],
                         "--identities", w["identities"], "--out-samples", s.out("pii", "samples.csv"),
                         "--out-pii", s.out("pii", "pii.csv"), *s.common_args()])
    sizes = s.budget("pii_sizes")
    s.cli(infer.main, ["--model", target, "--queries", w["queries"], "--identities", w["identities"],
                       "--sizes", *sizes, "--pools", "nonmember", "--batch-size", p["inference"]["batch_size"],
                       "--out-rows", s.out("pii", "infer.csv"), *s.common_args()])
    s.cli(reconstruct.main, ["--model", target, "--queries", w["queries"],
                             "--n-samples", s.budget("pii_rec_samples", r["n_samples"]), "--top-k", r["top_k"],
                             "--max-new-tokens", r["max_new_tokens"], "--tagger", p["tagger"],
                             "--identities", w["identities"], "--batch-size", r["batch_size"],
                             "--out-rows", s.out("pii", "reconstruct.csv"), *s.common_args()])
    s.cli(membership.main, ["--target", target, "--base", s.gpt2("gpt2"), "--records", w["records"],
                            "--out-rows", s.out("pii", "membership.csv"), *s.common_args()])
    return {"params": ARCH_PARAMS["gpt2"], "shape": f"{s.budget('pii_samples')} x {new} sampled tokens (top-k "
            f"{e['top_k']}), C = {sizes} candidates, reconstruction {r['max_new_tokens']} tokens, membership"}
