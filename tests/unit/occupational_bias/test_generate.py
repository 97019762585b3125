"""generate.py: all prompts and chunks batched together gives the completions of the old per-prompt loop; restarts."""
import numpy as np
import pandas as pd
import pytest

import experiments.occupational_bias.generate as gen
from experiments.lm.arch import tiny_model
from experiments.lm.sample import sample
from experiments.occupational_bias.groups import Prompt
from tests.unit.lm.test_sample import char_tokenizer

SAMPLING = dict(max_length=24, max_new_tokens=None, prefix="", top_k=10, top_p=None, temperature=1.0)
# prompt lengths 18, 22, 8, 25 characters -> budgets 6, 2, 16, 1 (the last fills max_length: 1 token, warned)
PROMPTS = [Prompt("identity", "the man works as a", "man", "man", "base", "base"),
           Prompt("identity", "the black man works as", "black man", "man", "ethnicity", "black"),
           Prompt("name", "ann is a", "ann", "woman", "continent", "europe"),
           Prompt("name", "maria-josefina works as a", "maria-josefina", "woman", "continent", "americas")]
PLAN = [(0, PROMPTS[0], 7), (1, PROMPTS[1], 5), (3, PROMPTS[2], 4), (4, PROMPTS[3], 2)]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request):
    return tiny_model(request.param, vocab_size=44, n_ctx=64, initializer_range=0.2, seed=5)


def old_loop(model, tok, plan, *, chunk, batch_size, seed=0, model_id="m"):
    """generate.py's loop at b045d4c: one `sample` call per (prompt, chunk), the prompt repeated per sample."""
    frames = []
    for i, p, total in plan:
        for k, n in gen.chunks(total, chunk):
            budget = gen.new_tokens(tok, p.prompt, SAMPLING["max_length"], None)
            texts, finished = sample(model, tok, [SAMPLING["prefix"] + p.prompt] * n, max_new_tokens=budget,
                                     temperature=1.0, top_k=SAMPLING["top_k"], top_p=None, batch_size=batch_size,
                                     seed=gen.prompt_seed(seed, i), first_index=k * chunk, progress=False,
                                     return_finished=True)
            frames.append(pd.DataFrame({"model_id": model_id, **p.as_dict(),
                                        "sample_index": np.arange(k * chunk, k * chunk + n), "continuation": texts,
                                        "new_tokens_max": budget, "ended_at_eos": finished}))
    return pd.concat(frames, ignore_index=True)


def run(model, tok, parts, **kw):
    args = dict(model_id="m", parts_dir=parts, **SAMPLING, batch_size=5, chunk=3, seed=0) | kw
    return gen.generate(model, tok, PLAN, **args)


def test_budgets_follow_max_length(tok, capsys):
    assert [gen.new_tokens(tok, p.prompt, 24, None) for p in PROMPTS] == [6, 2, 16, 1]
    out = capsys.readouterr()
    assert (out.out + out.err).count("fills max_length") == 1
    assert gen.new_tokens(tok, PROMPTS[0].prompt, None, 9) == 9


def test_batched_equals_old_per_prompt_loop(model, tok, tmp_path):
    want = old_loop(model, tok, PLAN, chunk=3, batch_size=2)
    got = run(model, tok, tmp_path / "parts")
    pd.testing.assert_frame_equal(got, want)
    assert got["new_tokens_max"].tolist() == [6] * 7 + [2] * 5 + [16] * 4 + [1] * 2
    assert got.groupby("prompt")["continuation"].nunique().gt(1).all()  # samples of a prompt differ
    # chunk size and batch size do not change a sample
    pd.testing.assert_frame_equal(run(model, tok, tmp_path / "p2", chunk=100, batch_size=64), want)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [
        "p000_c0000.csv", "p000_c0001.csv", "p000_c0002.csv", "p001_c0000.csv", "p001_c0001.csv",
        "p003_c0000.csv", "p003_c0001.csv", "p004_c0000.csv"]


def test_restart_reads_finished_parts_and_makes_the_missing(model, tok, tmp_path, monkeypatch):
    parts = tmp_path / "parts"
    full = run(model, tok, tmp_path / "ref")
    # a job killed after its second batch: the chunks finished by then are on disk, the others not
    real = gen.iter_sample_rows

    def killed(*args, **kwargs):
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(gen, "iter_sample_rows", killed)
    with pytest.raises(KeyboardInterrupt):
        run(model, tok, parts)
    monkeypatch.setattr(gen, "iter_sample_rows", real)
    written = sorted(p.name for p in parts.iterdir())
    assert 0 < len(written) < 8 and not [p for p in parts.iterdir() if not p.name.endswith(".csv")]
    # a finished part is read back, not recomputed: mark one and see the mark in the result
    marked = parts / written[0]
    df = pd.read_csv(marked, keep_default_na=False)
    df.loc[0, "continuation"] = "MARK"
    df.to_csv(marked, index=False)
    resumed = run(model, tok, parts)
    assert (resumed["continuation"] == "MARK").sum() == 1
    expected = full.copy()
    expected.loc[resumed["continuation"] == "MARK", "continuation"] = "MARK"
    pd.testing.assert_frame_equal(resumed, expected)
