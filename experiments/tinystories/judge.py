"""Pluggable story judges: one interface for the exact offline judge and LLM judges.

`Judge.grade(prompt, completion, facts)` returns
  {grammar, consistency, creativity, plot, age_group, raw_text, judge_id}
with None where a judge cannot grade.  Scales differ by judge and are NOT interchangeable:
LLM judges grade 1-10 (GPT-Eval rubric below); ExactStoryWorldJudge reports raw
fractions in [0, 1].  Every result row should carry judge_id.
"""
from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from experiments.tinystories.grammar import check_consistency, is_grammatical, split_sentences
from experiments.tinystories.metrics import first_sentence_completion, prompt_tail

# GPT-Eval rubric (Eldan & Li 2023), two turns, as quoted in the research notes
# (tinystories_ln.md A3, from two independent reproductions).  The "…" are gaps in that
# quotation and the "(1–10 each)" wording is the notes' summary: re-read the paper's
# exact text before a paper-scale (cluster) run.  Placeholders: {prompt}, {completion}.
RUBRIC_TURN_1 = (
    "the student is given a beginning of a story … needs to complete it … The symbol *** marks "
    "the separator between the prescribed beginning and the student's completion: "
    "{prompt}***{completion}. Please provide your general assessment about the part written by "
    "the student … Is it grammatically correct? Is it consistent with the beginning of the story? "
    "Pay special attention to whether the student manages to complete the sentence which is split "
    "in the middle by the separator ***."
)
RUBRIC_TURN_2 = (
    "Now, grade the student's completion in terms of grammar, creativity, consistency with the "
    "story's beginning and whether the plot makes sense (1–10 each). Also give your "
    "best guess of what the age of the student might be … A: 3 or under. B: 4-5. C: 6-7. "
    "D: 8-9. E: 10-12. F: 13-16."
)
AGE_GROUPS = {"A": "3 or under", "B": "4-5", "C": "6-7", "D": "8-9", "E": "10-12", "F": "13-16"}
GRADE_KEYS = ("grammar", "creativity", "consistency", "plot")

_GRADE_RE = {
    key: re.compile(rf"(?i)\b{key}\b[^0-9\n]{{0,40}}?(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*10\b")
    for key in GRADE_KEYS
}
_AGE_RE = re.compile(r"(?i:\bage(?:\s+group)?\b)[^\n]{0,60}?(?<![A-Za-z])([A-F])(?![A-Za-z])")


def format_turn_1(prompt: str, completion: str) -> str:
    return RUBRIC_TURN_1.format(prompt=prompt, completion=completion)


def parse_grades(reply: str) -> dict[str, Any]:
    """Extract "Grammar: 7/10"-style grades (first match per key, as float) and the age
    group letter A-F from a judge reply; None for anything missing or out of 1..10."""
    out: dict[str, Any] = {}
    for key, rx in _GRADE_RE.items():
        m = rx.search(reply)
        val = float(m.group(1)) if m else None
        out[key] = val if val is not None and 1.0 <= val <= 10.0 else None
    m = _AGE_RE.search(reply)
    out["age_group"] = m.group(1) if m else None
    return out


@runtime_checkable
class Judge(Protocol):
    judge_id: str

    def grade(self, prompt: str, completion: str, facts: dict | None = None) -> dict[str, Any]:
        ...


class ExactStoryWorldJudge:
    """Grades with the exact StoryWorld metrics; raw fractions in [0, 1], not 1-10.

    grammar      fraction of grammatical sentences in (prompt's unfinished sentence +
                 completion), i.e. the split sentence counts once, completed;
    consistency  n_consistent / n_checks over the same text (None without facts or checks);
    creativity, plot, age_group: None (not measurable exactly).
    Extra keys: completes_sentence, n_sentences, n_checks, n_consistent.
    """

    def __init__(self, judge_id: str = "storyworld-exact-v1"):
        self.judge_id = judge_id

    def grade(self, prompt: str, completion: str, facts: dict | None = None) -> dict[str, Any]:
        text = prompt_tail(prompt) + completion
        sentences = split_sentences(text)
        n_ok = sum(is_grammatical(s) for s in sentences)
        result: dict[str, Any] = {
            "grammar": n_ok / len(sentences) if sentences else None,
            "consistency": None, "creativity": None, "plot": None, "age_group": None,
            "completes_sentence": first_sentence_completion(prompt, completion),
            "n_sentences": len(sentences), "n_checks": 0, "n_consistent": 0,
        }
        if facts is not None:
            cons = check_consistency(facts, text)
            result.update(n_checks=cons.n_checks, n_consistent=cons.n_consistent,
                          consistency=cons.rate if cons.n_checks else None)
        result["raw_text"] = json.dumps({k: result[k] for k in sorted(result)}, sort_keys=True)
        result["judge_id"] = self.judge_id
        return result


class HFLocalJudge:
    """GPT-Eval with a local instruction-tuned causal LM (any hub:/dir:/gguf: spec) instead of GPT-4.

    Two chat turns as in the paper (general assessment, then grades), greedy decoding, grades parsed
    with parse_grades. A small local model is a WEAK judge: report its judge_id with every grade and do
    not compare its numbers with the paper's GPT-4 grades.
    """

    def __init__(self, spec: str, *, converted_dir: str | None = None, device=None, max_new_tokens: int = 160,
                 batch_size: int = 8):
        from experiments.lm.load import load_model

        self.model, self.tok = load_model(spec, device=device, converted_dir=converted_dir)
        if getattr(self.tok, "chat_template", None) is None:
            raise ValueError(f"judge model {spec} has no chat template; use an instruction-tuned model")
        self.judge_id = f"hf_local:{spec}"
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def _chat(self, conversations: list[list[dict]]) -> list[str]:
        from experiments.lm.sample import sample

        texts = [self.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        return sample(self.model, self.tok, texts, max_new_tokens=self.max_new_tokens, greedy=True,
                      batch_size=self.batch_size, desc="judging")

    def grade_many(self, prompts: list[str], completions: list[str]) -> list[dict[str, Any]]:
        first = [[{"role": "user", "content": format_turn_1(p, c)}] for p, c in zip(prompts, completions)]
        replies_1 = self._chat(first)
        second = [conv + [{"role": "assistant", "content": r}, {"role": "user", "content": RUBRIC_TURN_2}]
                  for conv, r in zip(first, replies_1)]
        replies_2 = self._chat(second)
        out = []
        for r1, r2 in zip(replies_1, replies_2):
            grades = parse_grades(r2)
            out.append({**grades, "raw_text": json.dumps({"turn_1": r1, "turn_2": r2}), "judge_id": self.judge_id})
        return out

    def grade(self, prompt: str, completion: str, facts: dict | None = None) -> dict[str, Any]:
        return self.grade_many([prompt], [completion])[0]


def make_judge(kind: str, model: str | None = None, **kwargs) -> Judge:
    """exact -> ExactStoryWorldJudge; hf_local -> HFLocalJudge(model)."""
    if kind == "exact":
        return ExactStoryWorldJudge()
    if kind == "hf_local":
        if not model or model == "none":
            raise ValueError("judge kind hf_local needs a model spec (config tinystories.judge.model)")
        return HFLocalJudge(model, **kwargs)
    raise ValueError(f"unknown judge kind {kind!r}; known: exact, hf_local (or none: no judge)")
