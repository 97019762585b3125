"""smoke_paper: the case registry (list, needs, failure -> exit 1), smoke modules found through the manifests
(a dummy result's cases and budget keys show up), the budget merge, the GPT-2-shaped stand-in tokenizer on the
runner's synthetic text, and one real paper-scale case (TinyStories training of the smallest grid model:
GPT-Neo d64, 16 heads, context 512, vocabulary 50257) through the real training CLI (experiments.lm.train).
About 15 s on 2 cores."""
import sys
import types

import pandas as pd
import pytest

from experiments import manifest as manifests
from experiments import smoke_paper as sp
from experiments.manifest import Manifest


def test_list_shows_every_case(capsys):
    assert sp.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("ts_train_largest", "lnr_remove_gpt2_ln_free", "lnr_evaluate_gpt2", "ob_generate_gpt2",
                 "sample_gpt2", "score_gpt2"):
        assert name in out
    assert "[GPU only]" in out
    rows = [line.split()[:2] for line in out.splitlines()]
    assert [r for _, r in rows][-2:] == [sp.SHARED, sp.SHARED]  # the shared cases after the results'


def test_registry_runs_needs_first_and_fails_loudly(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(sp, "CASES", {})

    @sp.case("base", result="demo")
    def _base(s):
        ran.append("base")
        return {"params": 10, "shape": "tiny"}

    @sp.case("broken", result="demo", needs=("base",))
    def _broken(s):
        ran.append("broken")
        print("something useful before the error")
        raise ValueError("shape mismatch (1, 2) vs (2, 1)")

    with pytest.raises(ValueError, match="registered twice"):
        sp.case("base", result="demo")(lambda s: {})
    csv = tmp_path / "t.csv"
    assert sp.main(["--only", "broken", "--device", "cpu", "--csv", str(csv)]) == 1
    assert ran == ["base", "broken"]
    out = capsys.readouterr()
    assert "shape mismatch" in out.out and "something useful before the error" in out.out
    assert "FAILED: broken" in out.err
    table = pd.read_csv(csv).set_index("case")
    assert table.loc["base", "status"] == "ok" and table.loc["broken", "status"] == "FAIL"
    with pytest.raises(SystemExit):
        sp.main(["--only", "no_such_case"])


@pytest.fixture
def dummy_result(monkeypatch, tmp_path):
    """A result whose manifest names a smoke module with one case and one budget key; a config selecting it."""
    module = types.ModuleType("dummy_result_smoke")
    module.BUDGET = {"cpu": {"dummy_n": 3}, "cuda": {"dummy_n": 30}}

    @sp.case("dummy_count", result="dummy_result")
    def _count(s):
        return {"params": 1, "shape": f"{s.budget('dummy_n')} items on {s.device}"}

    module._count = _count
    sp.CASES.pop("dummy_count")  # as if the module were imported by the runner only
    monkeypatch.setitem(sys.modules, "dummy_result_smoke", module)
    monkeypatch.setattr(sp, "CASES", dict(sp.CASES))
    real = manifests.load_manifest
    monkeypatch.setattr(manifests, "load_manifest", lambda r: Manifest(
        result=r, title="A dummy", paper="nobody", smoke="dummy_result_smoke") if r == "dummy_result" else real(r))
    cfg = tmp_path / "dummy.yaml"
    cfg.write_text("results: [dummy_result]\n")
    return module, cfg


def test_a_dummy_results_cases_come_through_its_manifest(dummy_result, tmp_path, capsys):
    module, cfg = dummy_result
    assert sp.main(["--config", str(cfg), "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ["dummy_count", "sample_gpt2", "score_gpt2"]  # only the selected result's, then shared
    csv = tmp_path / "d.csv"
    assert sp.main(["--config", str(cfg), "--only", "dummy_count", "--device", "cpu", "--budget", "cuda",
                    "--csv", str(csv)]) == 0
    row = pd.read_csv(csv).set_index("case").loc["dummy_count"]
    assert row["status"] == "ok" and row["shape"] == "30 items on cpu"


def test_budget_keys_are_merged_once(dummy_result):
    module, _ = dummy_result
    merged = sp.merged_budget(sp.smoke_modules(["tinystories", "ln_removal"]) + [module])
    assert merged["cpu"]["dummy_n"] == 3 and merged["cuda"]["dummy_n"] == 30
    assert {"ts_steps", "lnr_block", "sample_batch", "bootstrap"} <= set(merged["cpu"])
    assert set(merged["cpu"]) == set(merged["cuda"])
    twice = types.ModuleType("twice")
    twice.BUDGET = {"cpu": {"bootstrap": 1}, "cuda": {"bootstrap": 1}}
    with pytest.raises(ValueError, match="'bootstrap' of twice is already defined"):
        sp.merged_budget([twice])
    lopsided = types.ModuleType("lopsided")
    lopsided.BUDGET = {"cpu": {"x": 1}, "cuda": {}}
    with pytest.raises(ValueError, match="same keys"):
        sp.merged_budget([lopsided])


def test_gpt2_shaped_tokenizer():
    texts = sp.synthetic_documents(40)
    assert texts == sp.synthetic_documents(40) and texts != sp.synthetic_documents(40, seed=1)
    tok = sp.gpt2_shaped_tokenizer(texts, bpe_vocab=400)
    assert len(tok) == sp.VOCAB and tok.eos_token_id == sp.EOT_ID and tok.pad_token is None
    ids = tok("The old farmer found the basket")["input_ids"]
    assert max(ids) < sp.VOCAB and tok.decode(ids) == "The old farmer found the basket"
    assert tok.convert_tokens_to_ids("<|endoftext|>") == sp.EOT_ID
    prompts = sp.short_prompts(tok, 3, length=4)
    assert len(prompts) == 3 and all(len(tok(p)["input_ids"]) == 4 for p in prompts)


def test_smallest_tinystories_model_trains_at_paper_shapes(tmp_path):
    csv = tmp_path / "smoke.csv"
    assert sp.main(["--only", "ts_train_smallest", "--device", "cpu", "--keep", str(tmp_path / "w"),
                    "--csv", str(csv)]) == 0
    row = pd.read_csv(csv).set_index("case").loc["ts_train_smallest"]
    assert row["status"] == "ok" and "ctx512 V50257" in row["shape"]
    assert row["params"] == 64 * 50257 + 512 * 64 + (12 * 64 * 64 + 10 * 64) + 2 * 64  # GPT-Neo d64 x 1 layer
