"""The attack table: counts, Wilson intervals, chance, and the original code's skip of the queries the base model
already gets right, on hand-made rows."""
import json

import pandas as pd
import pytest

from experiments.pii_leakage import summary as S
from experiments.stats import wilson


def infer_rows(correct, pool="member", size=10, predicted=None):
    predicted = predicted or [f"p{i}" for i in range(len(correct))]
    return pd.DataFrame([{"query": i, "pool": pool, "size": size, "correct": c, "predicted": p}
                         for i, (c, p) in enumerate(zip(correct, predicted))])


def test_inference_accuracy_and_the_base_skip_by_hand():
    base = infer_rows([True, False, False, False], predicted=["A", "x", "y", "z"])
    target = infer_rows([True, True, False, True], predicted=["A", "B", "y", "D"])
    rows = {r["metric"]: r for r in S.inference_rows("undefended", target, base)}
    acc, skip = rows["accuracy"], rows["accuracy_skip_base"]
    assert (acc["k"], acc["n"], acc["value"], acc["chance"]) == (3, 4, 0.75, 0.1)
    assert (acc["ci_low"], acc["ci_high"]) == pytest.approx(wilson(3, 4))
    # the base predicts what the target predicts on queries 0 (right) and 2 (wrong): both left out; of queries
    # 1 and 3 the target gets both right
    assert (skip["k"], skip["n"], skip["value"]) == (2, 2, 1.0)
    # the base itself has no skip row
    assert [r["metric"] for r in S.inference_rows("base", base, base)] == ["accuracy"]


def test_inference_rows_per_pool_and_size_and_csv_strings():
    target = pd.concat([infer_rows(["True", "False"], "member", 2), infer_rows(["False", "False"], "nonmember", 2),
                        infer_rows(["True", "True"], "member", 5)])
    rows = S.inference_rows("t", target, None)
    got = {(r["pool"], r["size"]): (r["k"], r["n"]) for r in rows}
    assert got == {("member", 2): (1, 2), ("nonmember", 2): (0, 2), ("member", 5): (2, 2)}


def test_inference_needs_the_base_rows_of_the_same_queries():
    with pytest.raises(ValueError, match="without a base-model row"):
        S.inference_rows("t", infer_rows([True, True, True]), infer_rows([True, False]))


def test_reconstruction_and_extraction_rows():
    rec = pd.DataFrame({"tab_correct": [True, False, False], "correct": [True, True, False],
                        "covered": [True, True, True]})
    got = {r["metric"]: (r["k"], r["n"]) for r in S.reconstruction_rows("u", rec)}
    assert got == {"tab": (1, 3), "ours": (2, 3), "coverage": (3, 3)}
    scores = pd.DataFrame([{"defense": "u", "n_hit": 4, "n_leaked": 8, "n_real_unique": 40, "n_real_mentions": 100}])
    got = {r["metric"]: (r["k"], r["n"], r["value"]) for r in S.extraction_rows(scores)}
    assert got == {"precision": (4, 8, 0.5), "recall_unique": (4, 40, 0.1), "recall_mentions": (4, 100, 0.04)}


def test_defense_row_reads_training_json(tmp_path):
    (tmp_path / "training.json").write_text(json.dumps({
        "n_records": 10, "steps": 4, "sample_rate": 0.5, "dp": True, "delta": 0.1, "noise_multiplier": 1.2,
        "target_epsilon": 8.0, "epsilon_rdp": 7.99, "epsilon_prv": 7.5, "record_tokens": 300, "seconds": 1.0,
        "train_config": {"epochs": 4, "batch_size": 64, "lr": 1e-3}}))
    r = S.defense_row("dp", str(tmp_path))
    got = (r["defense"], r["dp"], r["batch_size"], r["epsilon_rdp"], r["target_epsilon"])
    assert got == ("dp", True, 64, 7.99, 8.0)


def test_name_pairs_reject_a_value_without_a_name_or_path():
    from experiments.cli import name_pairs

    assert name_pairs(["a=x.csv", "b=y=z.csv", ""], "--infer") == {"a": "x.csv", "b": "y=z.csv"}
    for bad in ("x.csv", "=x.csv", "a="):
        with pytest.raises(SystemExit, match="--infer wants NAME=PATH"):
            name_pairs([bad], "--infer")
    with pytest.raises(SystemExit, match="--texts wants LANG=PATH"):
        name_pairs(["en"], "--texts", "LANG=PATH")


def test_auc_and_its_interval_by_hand():
    from experiments.pii_leakage.membership import auc, auc_ci

    assert auc([3, 4, 5], [1, 2]) == 1.0 and auc([1, 2], [3, 4]) == 0.0
    # pairs (2,1)=1, (2,2)=1/2, (3,1)=1, (3,2)=1: 3.5 / 4
    assert auc([2, 3], [1, 2]) == 0.875
    # Hanley-McNeil at A = 0.8, m = n = 50: Q1 = 0.8/1.2, Q2 = 1.28/1.8;
    # SE^2 = (0.16 + 49 (Q1 - 0.64) + 49 (Q2 - 0.64)) / 2500
    q1, q2 = 0.8 / 1.2, 1.28 / 1.8
    se = ((0.16 + 49 * (q1 - 0.64) + 49 * (q2 - 0.64)) / 2500) ** 0.5
    assert auc_ci(0.8, 50, 50) == pytest.approx((0.8 - 1.959964 * se, 0.8 + 1.959964 * se), abs=1e-6)


def test_membership_rows_score_lower_loss_as_member():
    mia = pd.DataFrame({"member": [True, True, False, False], "loss_target": [1.0, 2.0, 3.0, 4.0],
                        "ratio": [0.9, 1.1, 1.0, 0.8]})
    rows = {r["metric"]: r for r in S.membership_rows("u", mia)}
    assert rows["auc_loss"]["value"] == 1.0  # every member's loss below every non-member's
    # ratio: members 0.9, 1.1 vs non-members 1.0, 0.8: lower is member; pairs (0.9<1.0) 1, (0.9<0.8) 0,
    # (1.1<1.0) 0, (1.1<0.8) 0: 1/4
    assert rows["auc_loss_ratio"]["value"] == 0.25
    assert (rows["auc_loss"]["k"], rows["auc_loss"]["n"], rows["auc_loss"]["chance"]) == (2, 4, 0.5)
