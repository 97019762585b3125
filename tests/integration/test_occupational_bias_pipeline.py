"""The occupational-bias chain on tiny inputs: plant -> tokenizer -> train -> generate -> extract -> exact ->
analyse -> truth check -> claims, each through its CLI (as the rules call them)."""
import json

import pandas as pd

from experiments.cli import out_file_args
from experiments.data import tokens
from experiments.lm import tokenizer, train
from experiments.occupational_bias import (
    analyse,
    claims,
    exact,
    extract,
    extraction_check,
    generate,
    plant,
    truth_check,
)
from tests.helpers import mini_section

PLANT_FILES = {"truth": "truth.csv", "terms": "terms.csv", "interactions": "interactions.csv",
               "labelled": "labelled.csv", "train": "train.txt", "val": "val.txt"}

JOBS = ["babysitter", "secretary", "nurse", "teacher", "writer", "manager", "lawyer", "mechanic", "carpenter",
        "taxi driver"]


def test_planted_chain_end_to_end(tmp_path):
    w = tmp_path / "world"
    plant.main(["--config", json.dumps({"jobs": JOBS, "zipf": 0.6, "interaction_min_rate": 0.01,
                                        "interactions_per_value": 1, "train_per_prompt": 60, "val_per_prompt": 20}),
                *out_file_args(w, PLANT_FILES)])
    tokenizer.main(["--corpus", str(w / "train.txt"), "--vocab-size", "600", "--out", str(tmp_path / "tok")])
    for s in ("train", "val"):
        tokens.main(["--corpus", str(w / f"{s}.txt"), "--tokenizer", str(tmp_path / "tok"),
                     "--out", str(tmp_path / f"{s}.npy")])
    train.main(["--model-id", "planted", "--arch", "gpt2", "--tokenizer", str(tmp_path / "tok"),
                "--train", str(tmp_path / "train.npy"), "--val", str(tmp_path / "val.npy"),
                "--shape", '{"d_model": 32, "n_layers": 1, "n_heads": 2, "context": 32}',
                "--train-config", '{"max_steps": 30, "batch_size": 8, "block_size": 16, "lr": 0.005, '
                '"warmup_steps": 5, "eval_every": 30, "eval_blocks": 4, "checkpoint_every": 30}',
                "--threads", "1", "--checkpoint-dir", str(tmp_path / "ckpt"), "--out", str(tmp_path / "m"),
                "--curve", str(tmp_path / "curve.csv")])
    spec, raw, comp, ex = f"dir:{tmp_path / 'm'}", tmp_path / "raw.csv", tmp_path / "c.csv", tmp_path / "e.csv"
    common = ["--prompt-prefix", "<|endoftext|>", "--threads", "1"]
    generate.main(["--spec", spec, "--model-id", "planted", "--identity-samples", "30", "--chunk", "20",
                   "--parts-dir", str(tmp_path / "parts"), "--out", str(raw), *common])
    df = pd.read_csv(raw, keep_default_na=False)
    assert len(df) == 28 * 30 and df["new_tokens_max"].between(1, 5).all()
    extract.main(["--completions", str(raw), "--out", str(comp)])
    exact.main(["--spec", spec, "--model-id", "planted", "--completions", str(comp), "--out", str(ex), *common])
    e = pd.read_csv(ex, keep_default_na=False)
    # per prompt the exact probabilities (jobs + no leading job) sum to 1 - pruned mass
    sums = e.groupby("group")["exact_prob"].sum() + e.groupby("group")["pruned_mass"].first()
    assert ((sums - 1).abs() < 1e-6).all()
    out = tmp_path / "out"
    analyse.main(["--completions", str(comp), *out_file_args(out, {n: f"{n}.csv" for n in analyse.OUTPUTS}),
                  "--bootstrap", "50",
                  "--min-labour-mentions", "1", "--min-base-mentions", "1"])
    truth_check.main(["--models", "planted", "--exact", str(ex), "--completions", str(comp),
                      "--regressions", str(out / "regressions.csv"), "--diversity", str(out / "diversity.csv"),
                      "--labour", str(out / "labour.csv"), "--labour-summary", str(out / "labour_summary.csv"),
                      "--truth", str(w / "truth.csv"), "--terms", str(w / "terms.csv"),
                      "--interactions", str(w / "interactions.csv"), "--labelled", str(w / "labelled.csv"),
                      "--out", str(tmp_path / "truth.csv"), "--interactions-out", str(tmp_path / "ti.csv")])
    t = pd.read_csv(tmp_path / "truth.csv")
    assert t.loc[t["metric"] == "agreement", "value"].iloc[0] == 1.0  # the extractor recovers every planted job
    ti = pd.read_csv(tmp_path / "ti.csv")
    assert len(ti) == 13  # every planted interaction, in a regression or not
    extraction_check.main(["--out", str(tmp_path / "ext.csv")])
    claims.main(["--diversity", str(out / "diversity.csv"), "--regressions", str(out / "regressions.csv"),
                 "--gender-tests", str(out / "gender_tests.csv"), "--labour-summary", str(out / "labour_summary.csv"),
                 "--extraction", str(tmp_path / "ext.csv"), "--truth", str(tmp_path / "truth.csv"),
                 "--truth-interactions", str(tmp_path / "ti.csv"),
                 "--models", '{"planted": {"kind": "planted", "spec": "x", "label": "tiny GPT-2"}}',
                 "--alpha", "0.05", "--thresholds", json.dumps(mini_section("occupational_bias")["claims"]),
                 "--scale", "mini", "--out", str(tmp_path / "claims.csv"), "--sanity", str(tmp_path / "sanity.csv"),
                 "--section", str(tmp_path / "section.md")])
    c = pd.read_csv(tmp_path / "claims.csv")
    planted = c[c["source_status"] == "planted"]
    assert len(planted) == 7 and set(planted["verdict"]) <= {"planted_recovered", "planted_missed",
                                                             "not_testable_at_scale"}
    assert (c["model"] == "planted (tiny GPT-2)").sum() == 7
    s = pd.read_csv(tmp_path / "sanity.csv")
    assert s.set_index("check_id").loc["planted_extraction", "passed"]  # a sanity check now, not a claim
