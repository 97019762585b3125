"""LayerNorm removal (Heimersheim 2024; Baroni et al. 2025) smoke cases for `make smoke-paper`
(experiments.smoke_paper, the runner): removal of GPT-2 small (LN-free with the real schedule code, and the
control), its evaluation (CE, float64 DLA, confidence neurons) and the CE-only scaling evaluation; GPT-2 medium
removal + evaluation (GPU only). Models are the runner's random-init GPT-2s, text its token streams
(OpenWebText stands aside)."""
from __future__ import annotations

import json
import time

from experiments.ln_removal.external import model_opt
from experiments.smoke_paper import ARCH_PARAMS, ARCHS, Smoke, case

# Budget per device (None = keep the paper value). Models in lnr_paper_schedule run the paper's removal schedule
# to its end (GPT-2 small: ln_f at step 104); the others a compressed one that still passes through every stage,
# the mixed one included (Q/K path fake, V path real: ln_1 returns width 2d): start 1, ln_2 all at 1, ln_1 Q/K
# one layer per step, V and ln_f together after the last Q/K (n_layers + 2 steps). lnr_block: training block
# length (CPU: 128, so the 14 steps fit the budget; the 1024-token path is exercised by score_gpt2 and on GPU).
BUDGET = {
    "cpu": dict(lnr_block=128, lnr_control_steps=1, lnr_batch=1, lnr_eval_blocks=1, lnr_paper_schedule=(),
                lnr_eval_block=32, lnr_n_blocks=4, lnr_dla_blocks=2, lnr_neurons=1),
    "cuda": dict(lnr_block=None, lnr_control_steps=3, lnr_batch=None, lnr_eval_blocks=4,
                 lnr_paper_schedule=("gpt2",), lnr_eval_block=None, lnr_n_blocks=16, lnr_dla_blocks=None,
                 lnr_neurons=None),
}


def _opt(s: Smoke, model_id: str, key: str):
    """A config block for one model: the shared block updated by its per_model override (as lnr_opt in the .smk)."""
    return model_opt(s.paper["ln_removal"], model_id, key)


def _lnr_remove(s: Smoke, model_id: str, mode: str) -> dict:
    from experiments.ln_removal import remove
    from experiments.ln_removal.schedule import ScheduleConfig, events
    train, sched = dict(_opt(s, model_id, "train")), dict(_opt(s, model_id, "schedule"))
    n_layers = ARCHS[model_id]["n_layer"]
    if model_id not in s.budget("lnr_paper_schedule"):
        sched.update(start=1, gap_ln2=0, gap_qk=1, gap_v=0)  # compressed, every stage (see BUDGET)
    last = events(ScheduleConfig.from_dict(sched), n_layers)[-1].step
    steps = last + 1 if mode == "ln_free" else s.budget("lnr_control_steps")
    train.update(max_steps=steps, batch_size=s.budget("lnr_batch", train["batch_size"]), grad_accum=1,
                 block_size=s.budget("lnr_block", train["block_size"]), eval_blocks=s.budget("lnr_eval_blocks"),
                 checkpoint_every=steps)
    st = s.streams()
    t0 = time.time()
    s.cli(remove.main, ["--model", s.gpt2(model_id), "--model-id", model_id, "--mode", mode,
                        "--train", st["train"], "--val", st["val"], "--train-config", json.dumps(train),
                        "--max-steps", steps, "--schedule", json.dumps(sched),
                        "--aux-weight", _opt(s, model_id, "aux_weight"), "--seed", s.paper["ln_removal"]["seed"],
                        *s.common_args(), "--checkpoint-dir", s.out("lnr", "ckpt", model_id, mode),
                        "--out", s.out("lnr", "models", model_id, mode),
                        "--curve", s.out("lnr", "curves", model_id, f"{mode}.csv"),
                        "--events", s.out("lnr", "events", model_id, f"{mode}.csv")])
    tokens = steps * train["batch_size"] * train["block_size"]
    fired = f"; schedule events at steps <= {last}" if mode == "ln_free" else ""
    return {"params": ARCH_PARAMS[model_id],
            "shape": f"{steps} steps x {train['batch_size']}x{train['block_size']}{fired}",
            "tokens_per_s": tokens / max(time.time() - t0, 1e-9)}


def _lnr_evaluate(s: Smoke, model_id: str, ce_only: bool = False) -> dict:
    from experiments.ln_removal import evaluate
    ev = s.paper["ln_removal"]["eval"]
    block = s.budget("lnr_eval_block", _opt(s, model_id, "train")["block_size"])
    dla_blocks, neurons = s.budget("lnr_dla_blocks", ev["dla_blocks"]), s.budget("lnr_neurons", ev["n_neurons"])
    models = {m: f"dir:{s.out('lnr', 'models', model_id, m)}" for m in ("ln_free", "with_ln")}
    tag = "scaling" if ce_only else "eval"
    argv = ["--model-id", model_id, "--original", s.gpt2(model_id), "--ln-free", models["ln_free"],
            "--control", models["with_ln"], "--val", s.streams()["val"], "--block-size", block,
            "--n-blocks", s.budget("lnr_n_blocks"), "--dla-blocks", dla_blocks, "--n-neurons", neurons,
            "--bootstrap", s.budget("bootstrap"), "--tokens", 0, *s.common_args(),
            "--out-ce", s.out("lnr", tag, model_id, "ce.csv")]
    if ce_only:
        argv.append("--ce-only")
    else:
        argv += ["--out-dla", s.out("lnr", tag, model_id, "dla.csv"),
                 "--out-neurons", s.out("lnr", tag, model_id, "neurons.csv")]
    s.cli(evaluate.main, argv)
    shape = f"3 models; CE {s.budget('lnr_n_blocks')} blocks x {block}"
    if not ce_only:
        import pandas as pd
        dla = pd.read_csv(s.out("lnr", tag, model_id, "dla.csv"))
        err = dla[dla.metric == "max_abs_sum_error"].set_index("variant")["value"]
        shape += (f"; float64 DLA {dla_blocks}x{block} (max err LN-free {err.get('ln_free', float('nan')):.1e}, "
                  f"original {err.get('original', float('nan')):.1e}); {neurons} neurons")
    return {"params": ARCH_PARAMS[model_id], "shape": shape}


@case("lnr_remove_gpt2_ln_free", result="ln_removal")
def _lnr_free(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2", "ln_free")


@case("lnr_remove_gpt2_with_ln", result="ln_removal")
def _lnr_ctrl(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2", "with_ln")


@case("lnr_evaluate_gpt2", result="ln_removal", needs=("lnr_remove_gpt2_ln_free", "lnr_remove_gpt2_with_ln"))
def _lnr_eval(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2")


@case("lnr_scaling_eval_gpt2", result="ln_removal", needs=("lnr_remove_gpt2_ln_free", "lnr_remove_gpt2_with_ln"))
def _lnr_scaling(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2", ce_only=True)


@case("lnr_remove_gpt2-medium_ln_free", result="ln_removal", gpu_only=True)
def _lnr_free_medium(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2-medium", "ln_free")


@case("lnr_remove_gpt2-medium_with_ln", result="ln_removal", gpu_only=True)
def _lnr_ctrl_medium(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2-medium", "with_ln")


@case("lnr_evaluate_gpt2-medium", result="ln_removal", gpu_only=True,
      needs=("lnr_remove_gpt2-medium_ln_free", "lnr_remove_gpt2-medium_with_ln"))
def _lnr_eval_medium(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2-medium")
