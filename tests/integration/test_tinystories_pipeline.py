"""Every TinyStories step, by its CLI, on a tiny budget: corpus -> tokenizer -> tokens -> 2 grid models + 1 lr-sweep
model -> evaluation (+ reference, n-gram cloze chance) -> sweep + fit -> claims -> figures -> report. About a minute
on 2 cores."""
import json

import numpy as np
import pandas as pd
import pytest

from experiments.cli import out_file_args
from experiments.data import tokens
from experiments.lm import tokenizer, train
from experiments.report import collect, plot, write
from experiments.report.claims import VERDICTS
from experiments.tinystories import aggregate, claims, cloze, evaluate, make_corpus, samples_table

CORPUS_FILES = {"train": "train.txt", "val": "val.txt", "prompts": "prompts.jsonl", "cloze": "cloze.jsonl",
                "truth": "truth.csv"}

WORLD = {"templates_per_category": 2, "free_words_per_class": 3, "n_names": 6, "n_objects": 4, "n_colours": 3,
         "n_places": 3, "n_animals": 3}
EVAL = {"val_blocks": 20, "n_prompts": 12, "samples_per_prompt": 1, "max_new_tokens": 24, "temperature": 1.0,
        "top_k": None, "top_p": None, "n_cloze": 30, "novelty_n": 8, "bootstrap": 100}
THRESHOLDS = {"grammar_ok": 0.9, "consistency_ok": 0.9, "iso_param_tol": 0.15, "fit_form": "a*N^-alpha"}
TRAIN = {"tokens": 40000, "batch_size": 4, "block_size": 128, "lr": 4e-3, "min_lr": 3e-4, "warmup_steps": 5,
         "eval_every": 5, "eval_blocks": 4, "checkpoint_every": 5}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("ts")
    c = d / "corpus"
    make_corpus.main(["--source", "storyworld", "--seed", "0", "--n-train", "400", "--n-val", "60",
                      "--n-prompts", str(EVAL["n_prompts"]), "--n-cloze", str(EVAL["n_cloze"]),
                      "--world", json.dumps(WORLD), *out_file_args(c, CORPUS_FILES)])
    tokenizer.main(["--corpus", str(c / "train.txt"), "--kind", "bpe", "--vocab-size", "512", "--out", str(d / "tok")])
    for split in ("train", "val"):
        tokens.main(["--corpus", str(c / f"{split}.txt"), "--tokenizer", str(d / "tok"),
                     "--out", str(d / f"{split}.npy")])
    evals, curves, samples = [], [], []
    for width, depth, lr in ((16, 1, TRAIN["lr"]), (32, 2, TRAIN["lr"]), (16, 1, 8e-3)):
        mid = f"w{width}_l{depth}_s0" + ("" if lr == TRAIN["lr"] else f"_lr{lr:g}")
        train.main(["--model-id", mid, "--arch", "gpt2", "--shape", json.dumps(
                        {"d_model": width, "n_layers": depth, "n_heads": 2, "context": 256}),
                    "--tokenizer", str(d / "tok"), "--train", str(d / "train.npy"),
                    "--val", str(d / "val.npy"), "--train-config", json.dumps({**TRAIN, "lr": lr}), "--threads", "1",
                    "--checkpoint-dir", str(d / "ckpt" / mid), "--out", str(d / "models" / mid),
                    "--curve", str(d / "curves" / f"{mid}.csv")])
        curves.append(str(d / "curves" / f"{mid}.csv"))
    for mid, spec, extra in [("w16_l1_s0", f"dir:{d}/models/w16_l1_s0", ["--lr", str(TRAIN["lr"])]),
                             ("w32_l2_s0", f"dir:{d}/models/w32_l2_s0", ["--lr", str(TRAIN["lr"])]),
                             ("w16_l1_s0_lr0.008", f"dir:{d}/models/w16_l1_s0_lr0.008",
                              ["--lr", "0.008", "--metrics", "loss_cloze"]),
                             ("reference", "reference", [])]:
        evaluate.main(["--model", spec, "--model-id", mid, *extra, "--val", str(d / "val.npy"), "--prompts",
                       str(c / "prompts.jsonl"), "--cloze", str(c / "cloze.jsonl"), "--train-corpus",
                       str(c / "train.txt"), "--eval-config", json.dumps(EVAL), "--judge", "exact", "--scale", "mini",
                       "--block-size", "128", "--threads", "1", "--out", str(d / f"{mid}.csv"),
                       "--samples", str(d / f"{mid}.jsonl")])
        evals.append(str(d / f"{mid}.csv"))
        samples.append(str(d / f"{mid}.jsonl"))
    cloze.main(["--tokenizer", str(d / "tok"), "--train-tokens", str(d / "train.npy"), "--cloze",
                str(c / "cloze.jsonl"), "--eval-config", json.dumps(EVAL), "--scale", "mini",
                "--out", str(d / "chance.csv")])
    evals.append(str(d / "chance.csv"))
    aggregate.main(["--evals", *evals, "--curves", *curves, "--bootstrap", "50", "--grid-lr", str(TRAIN["lr"]),
                    "--out", str(d / "sweep.csv"),
                    "--fit-out", str(d / "fit.csv"), "--curves-out", str(d / "curves.csv")])
    samples_table.main(["--samples", *samples[:2], "--out", str(d / "samples.csv")])
    claims.main(["--sweep", str(d / "sweep.csv"), "--fit", str(d / "fit.csv"), "--samples", str(d / "samples.csv"),
                 "--curves", str(d / "curves.csv"), "--thresholds", json.dumps(THRESHOLDS), "--judge", "exact",
                 "--grid-lr", str(TRAIN["lr"]), "--lr-sweep", json.dumps({"lrs": [TRAIN["lr"], 8e-3],
                                                                          "shapes": [[16, 1]]}),
                 "--train-tokens", str(TRAIN["tokens"]),
                 "--scale", "mini", "--out", str(d / "tinystories" / "claims.csv"),
                 "--sanity", str(d / "tinystories" / "sanity.csv"),
                 "--section", str(d / "tinystories" / "report_section.md")])
    figs = []
    for name, inp in (("loss_vs_params", ["sweep.csv", "fit.csv"]), ("quality_heatmap", ["sweep.csv"]),
                      ("loss_curves", ["curves.csv"]), ("samples", ["samples.csv"])):
        out = d / "figures" / f"tinystories__{name}.png"
        plot.main(["--result", "tinystories", "--figure", name, "--inp", *(str(d / x) for x in inp), "--out", str(out)])
        figs.append(str(out))
    collect.main(["--claims", str(d / "tinystories" / "claims.csv"), "--sanity", str(d / "tinystories" / "sanity.csv"),
                  "--out", str(d / "claims.csv"), "--out-sanity", str(d / "sanity.csv")])
    write.main(["--claims", str(d / "claims.csv"), "--sanity", str(d / "sanity.csv"), "--results", "tinystories",
                "--sections",
                str(d / "tinystories" / "report_section.md"), "--figures", *figs, "--scale", "mini",
                "--out", str(d / "report.md")])
    return d


def test_corpus_prompts_and_truth(run):
    prompts = [json.loads(x) for x in (run / "corpus" / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == EVAL["n_prompts"] and all(p["facts"] for p in prompts)
    truth = pd.read_csv(run / "corpus" / "truth.csv")
    assert {"main.name", "object.colour", "place"} <= set(truth.columns)


def test_metrics_are_sane(run):
    sweep = pd.read_csv(run / "sweep.csv")
    ref = sweep[sweep.model_id == "reference"].set_index("metric").value
    assert ref["grammar_rate"] == 1.0 and ref["consistency_rate"] == 1.0  # the grader's ceiling is exact
    light = sweep[sweep.model_id == "w16_l1_s0_lr0.008"]
    assert set(light.metric) >= {"val_loss_nats", "cloze_accuracy"} and "grammar_rate" not in set(light.metric)
    assert (light.lr == 0.008).all()
    chance = sweep[sweep.arch == "ngram"].pivot_table(index="model_id", columns="metric", values="value")
    assert set(chance.index) == {"unigram", "bigram"} and (chance.cloze_accuracy <= 1).all()
    small = sweep[sweep.model_id == "w16_l1_s0"].set_index("metric").value
    assert 0 < small["val_loss_nats"] < np.log(512)  # learned something, below the uniform baseline
    assert 0 <= small["grammar_rate"] <= 1 and 0 <= small["cloze_accuracy"] <= 1
    curve = pd.read_csv(run / "curves.csv")
    assert curve.groupby("model_id").tokens.max().eq(78 * 512).all()  # same budget: round(40000 / 512) steps for all


def test_claims_report_and_figures(run):
    c = pd.read_csv(run / "claims.csv")
    assert set(c.verdict) <= set(VERDICTS) and c.verdict.notna().all()
    assert "depth_lowers_loss" in set(c.claim_id) and "exact_metrics_recover_truth" not in set(c.claim_id)
    sanity = pd.read_csv(run / "sanity.csv")
    assert {"exact_grader_ceiling", "cloze_options_carry_no_frequency_cue"} <= set(sanity.check_id)
    assert sanity.set_index("check_id").loc["exact_grader_ceiling", "passed"]
    text = (run / "report.md").read_text()
    assert "## TinyStories" in text and "tinystories__loss_vs_params.png" in text
    for name in ("loss_vs_params", "quality_heatmap", "loss_curves", "samples"):
        png = run / "figures" / f"tinystories__{name}.png"
        assert png.stat().st_size > 5000 and png.with_suffix(".pdf").exists()
