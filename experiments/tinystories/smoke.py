"""TinyStories (Eldan & Li 2023) smoke cases for `make smoke-paper` (experiments.smoke_paper, the runner):
training of the smallest and largest grid model through experiments.lm.train at the paper's shapes
(GPT-Neo, 16 heads, context 512, vocabulary 50257), their evaluation (val loss, sampling up to the paper's
max_new_tokens on GPU, novelty), and the evaluation of a released checkpoint's architecture
(roneneldan/TinyStories-33M). Token streams and the tokenizer are the runner's; the evaluation prompts and the
novelty corpus are StoryWorld's (make_corpus, built here once as a fixture)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from experiments.smoke_paper import EOT_ID, VOCAB, Smoke, case

# Budget per device (None = keep the paper value). ts_grad_accum: (smallest, largest grid model).
BUDGET = {
    "cpu": dict(ts_steps=1, ts_batch=1, ts_grad_accum=(2, 1), ts_eval_blocks=1, ts_val_blocks=2, ts_prompts=2,
                ts_samples=2, ts_max_new_tokens=16),
    "cuda": dict(ts_steps=2, ts_batch=None, ts_grad_accum=(1, 1), ts_eval_blocks=8, ts_val_blocks=32, ts_prompts=4,
                 ts_samples=8, ts_max_new_tokens=None),
}
# roneneldan/TinyStories-33M config.json: GPT-Neo, hidden 768, 4 layers, 16 heads, 2048 positions, window 256,
# alternating global/local attention (68,514,048 parameters). The other released sizes differ only in widths.
RELEASED = {"TinyStories-33M": dict(hidden_size=768, num_layers=4, num_heads=16, max_position_embeddings=2048,
                                    window_size=256)}


CORPUS_FILES = {"train": "train.txt", "val": "val.txt", "prompts": "prompts.jsonl", "cloze": "cloze.jsonl",
                "truth": "truth.csv"}


def _storyworld(s: Smoke) -> Path:
    """StoryWorld stories + prompts (make_corpus, as the mini ts_corpus rule writes them): the evaluation's
    prompts and novelty corpus (the paper's prompts need the hub)."""
    def build():
        from experiments.cli import out_file_args
        from experiments.tinystories import make_corpus
        out = s.work / "ts" / "corpus"
        s.cli(make_corpus.main, ["--source", "storyworld", "--seed", "0", "--n-train", "1500", "--n-val", "400",
                                 "--n-prompts", "64", "--n-cloze", "0", *out_file_args(out, CORPUS_FILES)])
        return out
    return s.fixture("storyworld corpus", build)


def _ts_grid(s: Smoke) -> tuple[tuple[int, int], tuple[int, int]]:
    m = s.paper["tinystories"]["model"]
    return (min(m["widths"]), min(m["depths"])), (max(m["widths"]), max(m["depths"]))


def _ts_train(s: Smoke, width: int, depth: int) -> dict:
    from experiments.lm import train as train_cli
    ts = s.paper["tinystories"]
    m, train = ts["model"], dict(ts["train"])
    train["batch_size"] = s.budget("ts_batch", train["batch_size"])
    train["grad_accum"] = s.budget("ts_grad_accum")[(width, depth) == _ts_grid(s)[1]]
    train["eval_blocks"] = s.budget("ts_eval_blocks")
    steps = s.budget("ts_steps")
    train["tokens"] = steps * train["batch_size"] * train["block_size"] * train["grad_accum"]
    train["checkpoint_every"] = steps
    st = s.streams()
    name = f"w{width}_l{depth}_s0"
    t0 = time.time()
    shape = {"d_model": width, "n_layers": depth, "n_heads": m["n_heads"], "context": m["context"]}
    s.cli(train_cli.main, ["--model-id", name, "--arch", m["arch"], "--shape", json.dumps(shape),
                             "--seed", 0, "--tokenizer", st["tokenizer"],
                             "--train", st["train"], "--val", st["val"], "--train-config", json.dumps(train),
                             "--checkpoint-dir", s.out("ts", "ckpt", name), "--out", s.out("ts", "models", name),
                             "--curve", s.out("ts", "curves", f"{name}.csv"), *s.common_args()])
    info = json.loads(Path(s.out("ts", "models", name, "training.json")).read_text())
    return {"params": info["params_total"],
            "shape": f"{m['arch']} d{width} L{depth} h{m['n_heads']} ctx{m['context']} V{VOCAB}; "
                     f"{steps} step x {train['batch_size']}x{train['block_size']} x accum {train['grad_accum']}",
            "tokens_per_s": train["tokens"] / max(time.time() - t0, 1e-9)}


def _ts_eval(s: Smoke, spec: str, model_id: str, grid: bool = False) -> dict:
    """As ts_eval (grid: with the grid's --lr) or ts_eval_released."""
    from experiments.tinystories import evaluate
    ts = s.paper["tinystories"]
    ev = dict(ts["eval"])
    ev.update(val_blocks=s.budget("ts_val_blocks"), n_prompts=s.budget("ts_prompts"),
              samples_per_prompt=s.budget("ts_samples"), bootstrap=s.budget("bootstrap"),
              max_new_tokens=s.budget("ts_max_new_tokens", ev["max_new_tokens"]))
    corpus, st = _storyworld(s), s.streams()
    cloze = Path(s.out("ts", "cloze.jsonl"))
    cloze.write_text("")  # n_cloze = 0 at paper scale (no planted facts in real TinyStories)
    s.cli(evaluate.main, ["--model", spec, "--model-id", model_id, "--seed", 0, "--val", st["val"],
                          "--prompts", corpus / "prompts.jsonl", "--cloze", cloze,
                          "--train-corpus", corpus / "train.txt", "--eval-config", json.dumps(ev),
                          "--judge", ts["judge"]["kind"], "--judge-model", "none", "--scale", "paper",
                          "--block-size", ts["train"]["block_size"], *s.common_args(),
                          "--out", s.out("ts", "eval", f"{model_id}.csv"),
                          "--samples", s.out("ts", "samples", f"{model_id}.jsonl"),
                          *(["--lr", ts["train"]["lr"]] if grid else [])])
    import pandas as pd
    rows = pd.read_csv(s.out("ts", "eval", f"{model_id}.csv"))
    n = len(rows)
    return {"params": int(rows["params_total"].iloc[0]),
            "shape": f"{ev['val_blocks']} val blocks x {ts['train']['block_size']}; "
                     f"{ev['n_prompts']}x{ev['samples_per_prompt']} samples <= {ev['max_new_tokens']} new tokens; "
                     f"{n} metric rows"}


def _ts_model_spec(s: Smoke, width: int, depth: int) -> str:
    return f"dir:{s.out('ts', 'models', f'w{width}_l{depth}_s0')}"


@case("ts_train_smallest", result="tinystories")
def _ts_train_smallest(s: Smoke) -> dict:
    return _ts_train(s, *_ts_grid(s)[0])


@case("ts_train_largest", result="tinystories")
def _ts_train_largest(s: Smoke) -> dict:
    return _ts_train(s, *_ts_grid(s)[1])


@case("ts_eval_smallest", result="tinystories", needs=("ts_train_smallest",))
def _ts_eval_smallest(s: Smoke) -> dict:
    w, d = _ts_grid(s)[0]
    return _ts_eval(s, _ts_model_spec(s, w, d), f"w{w}_l{d}_s0", grid=True)


@case("ts_eval_largest", result="tinystories", needs=("ts_train_largest",))
def _ts_eval_largest(s: Smoke) -> dict:
    w, d = _ts_grid(s)[1]
    return _ts_eval(s, _ts_model_spec(s, w, d), f"w{w}_l{d}_s0", grid=True)


@case("ts_eval_released_33m", result="tinystories")
def _ts_eval_released(s: Smoke) -> dict:
    """ts_eval_released on a random GPT-Neo with roneneldan/TinyStories-33M's config (2048 positions)."""
    import torch
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    from experiments.lm.tokenizer import load_tokenizer
    cfg = RELEASED["TinyStories-33M"]
    out = Path(s.out("models", "TinyStories-33M"))
    if not (out / "config.json").exists():
        torch.manual_seed(0)
        layers = [[["global", "local"], cfg["num_layers"] // 2]]
        model = GPTNeoForCausalLM(GPTNeoConfig(vocab_size=VOCAB, attention_types=layers, bos_token_id=EOT_ID,
                                               eos_token_id=EOT_ID, **cfg))
        model.save_pretrained(out)
        load_tokenizer(s.tokenizer()).save_pretrained(out)
    return _ts_eval(s, f"dir:{out}", "released--roneneldan--TinyStories-33M")
