"""The LLM judge's plumbing: two chat turns per item, grades parsed from the second reply, judge id kept.

A random tiny Llama cannot grade, so its grades must come back as None (never invented); a stub model whose
second reply holds grades must have them parsed."""
import pytest

from experiments.lm.arch import tiny_model
from experiments.lm.tokenizer import train_bpe
from experiments.tinystories import judge as judge_mod
from experiments.tinystories.judge import HFLocalJudge, make_judge

TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("judge")
    tok = train_bpe(["Grammar: 7/10. Creativity: 5/10. The student wrote a story."] * 50, vocab_size=300)
    tok.chat_template = TEMPLATE
    model = tiny_model("llama", vocab_size=len(tok), n_ctx=4096)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_random_judge_yields_no_invented_grades(judge_dir):
    j = make_judge("hf_local", f"dir:{judge_dir}", max_new_tokens=8)
    out = j.grade_many(["Once upon a time, Lily"], [" went home."])
    assert out[0]["judge_id"] == f"hf_local:dir:{judge_dir}"
    assert all(out[0][k] is None for k in ("grammar", "creativity", "consistency", "plot"))
    assert "turn_1" in out[0]["raw_text"]


def test_grades_parsed_from_second_turn(judge_dir, monkeypatch):
    j = HFLocalJudge(f"dir:{judge_dir}", max_new_tokens=4)
    replies = iter([["It is fine."], ["Grammar: 8/10, Creativity: 6/10, Consistency: 9/10, Plot: 7/10. Age: B"]])
    seen = []

    def fake_chat(conversations):
        seen.append(conversations)
        return next(replies)

    monkeypatch.setattr(j, "_chat", fake_chat)
    g = j.grade("Once upon a time, Lily", " went home.")
    assert (g["grammar"], g["creativity"], g["consistency"], g["plot"], g["age_group"]) == (8, 6, 9, 7, "B")
    assert len(seen[1][0]) == 3 and seen[1][0][1]["content"] == "It is fine."  # turn 2 carries turn 1's reply
    assert seen[1][0][2]["content"] == judge_mod.RUBRIC_TURN_2


def test_make_judge_needs_a_model():
    with pytest.raises(ValueError, match="needs a model"):
        make_judge("hf_local", None)
