"""The PII steps chained on a small planted world (CLIs as a rule calls them): world -> scrub -> tokenizer ->
base -> undefended fine-tune -> queries -> extraction samples, inference, reconstruction -> extraction scores.
A random-init base stands in for the pre-trained one (speed); what is checked is the wiring and the row contracts,
and that memorising the records makes the target beat the base where the answer is planted."""
import json

import pandas as pd
import pytest
import torch

pytest.importorskip("faker", reason="faker is installed by make setup (extra ner)")
pytest.importorskip("opacus", reason="opacus is installed by make setup (extra dp)")

from experiments.lm import tokenizer as tokenizer_cli  # noqa: E402
from experiments.lm.build import build_model  # noqa: E402
from experiments.lm.tokenizer import load_tokenizer  # noqa: E402
from experiments.pii_leakage import (  # noqa: E402
    extract,
    extraction,
    finetune,
    infer,
    membership,
    queries,
    reconstruct,
    scrub,
    world,
)

WORLD = {"duplication": [1, 8], "members_per_level": 4, "n_nonmembers": 12, "n_public": 6,
         "public_records_per_identity": 2, "seed": 3}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("pii")
    p = {k: str(d / v) for k, v in dict(records="records.jsonl", identities="identities.csv", truth="truth.csv",
                                        train="train.txt", test="test.txt", public="public.txt",
                                        scrubbed="scrubbed.txt", missed="missed.csv", tok="tok", base="base",
                                        target="target", queries="queries.csv").items()}
    world.main(["--world", json.dumps(WORLD)] + [f"--out-{k}={p[k]}" for k in
                                                  ("records", "identities", "truth", "train", "test", "public")])
    scrub.main(["--records", p["records"], "--out-text", p["scrubbed"], "--out-missed", p["missed"]])
    tokenizer_cli.main(["--corpus", p["public"], p["train"], "--vocab-size", "400", "--out", p["tok"]])
    tok = load_tokenizer(p["tok"])
    torch.manual_seed(0)
    build_model("gpt2", vocab_size=len(tok), d_model=48, n_layers=1, n_heads=2, context=96,
                eos_id=tok.eos_token_id).save_pretrained(p["base"])
    tok.save_pretrained(p["base"])
    finetune.main(["--base", f"dir:{p['base']}", "--text", p["train"], "--train-config",
                   json.dumps({"epochs": 30, "batch_size": 8, "lr": 3e-3, "block": 96}), "--threads", "1",
                   "--checkpoint-dir", str(d / "ck"), "--out", p["target"], "--curve", str(d / "curve.csv")])
    queries.main(["--records", p["records"], "--identities", p["identities"], "--out-queries", p["queries"]])
    for m in ("base", "target"):
        extract.main(["--model", f"dir:{p[m]}", "--n-samples", "60", "--max-new-tokens", "40", "--threads", "1",
                      "--out-samples", str(d / f"samples_{m}.csv"), "--out-pii", str(d / f"pii_{m}.csv")])
        infer.main(["--model", f"dir:{p[m]}", "--queries", p["queries"], "--identities", p["identities"],
                    "--sizes", "2", "6", "--threads", "1", "--out-rows", str(d / f"infer_{m}.csv")])
        reconstruct.main(["--model", f"dir:{p[m]}", "--queries", p["queries"], "--n-samples", "8",
                          "--threads", "1", "--out-rows", str(d / f"rec_{m}.csv")])
    membership.main(["--target", f"dir:{p['target']}", "--base", f"dir:{p['base']}", "--records", p["records"],
                     "--threads", "1", "--out-rows", str(d / "membership.csv")])
    extraction.main(["--truth", p["truth"], "--missed", p["missed"], "--base-pii", str(d / "pii_base.csv"),
                     "--base-samples", str(d / "samples_base.csv"), "--defense", "undefended",
                     "--pii", str(d / "pii_target.csv"), "--samples", str(d / "samples_target.csv"),
                     "--out-scores", str(d / "scores.csv"), "--out-levels", str(d / "levels.csv")])
    return d, p


def read(path):
    return pd.read_csv(path, keep_default_na=False)


def test_target_memorised_its_records(chain):
    d, p = chain
    meta = json.loads((d / "target" / "training.json").read_text())
    assert meta["n_records"] == sum(1 for r in map(json.loads, open(p["records"])) if r["split"] == "train")
    curve = read(d / "curve.csv")
    assert curve["train_loss_nats"].iloc[-5:].mean() < 0.5 * curve["train_loss_nats"].iloc[:5].mean()


def test_inference_rows_and_the_target_beats_the_base(chain):
    d, p = chain
    q = read(p["queries"])
    base, target = read(d / "infer_base.csv"), read(d / "infer_target.csv")
    assert len(base) == len(target) == 2 * 2 * len(q)  # pools x sizes x queries
    assert set(target["size"]) == {2, 6} and set(target["pool"]) == {"member", "nonmember"}
    nm = target[(target["pool"] == "nonmember") & (target["size"] == 6)]
    assert nm["correct"].astype(str).eq("True").mean() > 0.6  # memorised vs names never seen (chance 1/6)


def test_reconstruction_and_extraction_rows(chain):
    d, p = chain
    rec = read(d / "rec_target.csv")
    assert len(rec) == len(read(p["queries"])) and set(rec["tagger"]) == {"regex"}
    covered = rec["covered"].astype(str).eq("True")
    assert (rec.loc[~covered, "correct"].astype(str) == "False").all()  # a target not among the candidates fails
    scores, levels = read(d / "scores.csv"), read(d / "levels.csv")
    assert list(scores["defense"]) == ["undefended"] and set(levels["dup"]) == {1, 8}
    assert 0 <= float(scores["recall_unique"].iloc[0]) <= 1


def test_membership_rows_and_the_memorised_target_separates_members(chain):
    from experiments.pii_leakage.summary import membership_rows

    d, p = chain
    mia = read(d / "membership.csv")
    records = [json.loads(x) for x in open(p["records"])]
    assert len(mia) == sum(r["split"] in ("train", "test") for r in records)
    rows = {r["metric"]: r for r in membership_rows("target", mia)}
    assert rows["auc_loss"]["value"] > 0.8  # 30 epochs on the training records: their loss is far lower
    assert rows["auc_loss_ratio"]["n"] == len(mia) and 0 <= rows["auc_loss_ratio"]["ci_low"] <= 1


def test_membership_with_the_base_losses_computed_once_is_byte_identical(chain):
    """The workflow's path (--losses-of the base once, --base-losses per target) writes the same file as scoring
    the base inside the target's job (--base)."""
    d, p = chain
    base = d / "membership_base_losses.csv"
    membership.main(["--losses-of", f"dir:{p['base']}", "--records", p["records"], "--threads", "1",
                     "--out-rows", str(base)])
    membership.main(["--target", f"dir:{p['target']}", "--base-losses", str(base), "--records", p["records"],
                     "--threads", "1", "--out-rows", str(d / "membership_once.csv")])
    assert (d / "membership_once.csv").read_bytes() == (d / "membership.csv").read_bytes()
    other = d / "other_records.jsonl"  # base losses of other records are refused
    rows = [json.loads(x) for x in open(p["records"])]
    other.write_text("".join(json.dumps(r) + "\n" for r in rows[1:]))
    with pytest.raises(ValueError, match="not those of"):
        membership.main(["--target", f"dir:{p['target']}", "--base-losses", str(base), "--records", str(other),
                         "--threads", "1", "--out-rows", str(d / "bad.csv")])
    with pytest.raises(SystemExit):  # one of --base / --base-losses, never both
        membership.main(["--target", f"dir:{p['target']}", "--base", f"dir:{p['base']}", "--base-losses",
                         str(base), "--records", p["records"], "--out-rows", str(d / "bad.csv")])
