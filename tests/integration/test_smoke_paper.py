"""smoke_paper: the case registry (list, needs, failure -> exit 1), the GPT-2-shaped stand-in tokenizer, and
one real paper-scale case (TinyStories training of the smallest grid model: GPT-Neo d64, 16 heads, context
512, vocabulary 50257) through the real training CLI (experiments.lm.train). About 10 s on 2 cores."""
import pandas as pd
import pytest

from experiments import smoke_paper as sp


def test_list_shows_every_case(capsys):
    assert sp.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ("ts_train_largest", "lnr_remove_gpt2_ln_free", "lnr_evaluate_gpt2", "sample_gpt2", "score_gpt2"):
        assert name in out
    assert "[GPU only]" in out


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


def test_gpt2_shaped_tokenizer():
    texts = ["The girl named Lily liked to play in the park. The little dog liked the ball."] * 20
    tok = sp.gpt2_shaped_tokenizer(texts, bpe_vocab=300)
    assert len(tok) == sp.VOCAB and tok.eos_token_id == sp.EOT_ID and tok.pad_token is None
    ids = tok("The girl liked the park")["input_ids"]
    assert max(ids) < sp.VOCAB and tok.decode(ids) == "The girl liked the park"
    assert tok.convert_tokens_to_ids("<|endoftext|>") == sp.EOT_ID
    assert sp.short_prompts(tok, 3, length=4) and all(len(tok(p)["input_ids"]) == 4
                                                      for p in sp.short_prompts(tok, 3, length=4))


def test_smallest_tinystories_model_trains_at_paper_shapes(tmp_path):
    csv = tmp_path / "smoke.csv"
    assert sp.main(["--only", "ts_train_smallest", "--device", "cpu", "--keep", str(tmp_path / "w"),
                    "--csv", str(csv)]) == 0
    row = pd.read_csv(csv).set_index("case").loc["ts_train_smallest"]
    assert row["status"] == "ok" and "ctx512 V50257" in row["shape"]
    assert row["params"] == 64 * 50257 + 512 * 64 + (12 * 64 * 64 + 10 * 64) + 2 * 64  # GPT-Neo d64 x 1 layer
