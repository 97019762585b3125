"""Smoke run of every paper-scale training / generation / scoring code path, without the HF hub.

Each *case* calls a real step CLI (the `main(argv)` a Snakemake rule runs) on RANDOM-INIT models of the
papers' real architectures, with the values of config/paper.yaml overridden only in budget (steps, micro-batch
on CPU, number of blocks, prompts and samples). A shape, dtype, vocabulary or memory error that would hit a
paper-scale job on a cluster shows up here in minutes, on 2 CPU cores or on one GPU.

What stands in for the hub (built once per run in a temporary directory, see `Smoke` below):
  tokenizer   a byte-level BPE trained by experiments.lm.tokenizer on ~20 KB of StoryWorld text, re-indexed to
              GPT-2's layout: 50,257 ids, <|endoftext|> = 50256 (bos = eos, no pad token, like hub:gpt2);
              the ids the BPE does not use are filler tokens, so every vocabulary-sized tensor is full size
  tokenizer   for `tinystories.tokenizer.kind: pretrained`: a `dir:` model holding that tokenizer (a 1-layer
  model       d16 GPT-Neo; only its tokenizer is read) stands in for hub:EleutherAI/gpt-neo-125M
  corpus      StoryWorld stories (experiments.tinystories.make_corpus; its prompts stand in for the paper's
              evaluation prompts), tokenized by the real ts_tokenizer (pretrained) and ts_encode CLIs into
              uint16 streams; the LN-removal cases read the same streams (OpenWebText stands aside)
  GPT-2       GPT2LMHeadModel(GPT2Config(**ARCHS[id])) saved as `dir:` specs; ARCHS holds the hub config.json
              values of gpt2 / gpt2-medium (Radford et al. 2019, Table 2; GPT2Config's defaults ARE gpt2's)
  GPT-Neo     the TinyStories grid is built by the training CLI itself (experiments.lm.build, arch from the config);
              the released checkpoints by GPTNeoConfig with their config.json values (RELEASED below)

Cases (`--list`): TinyStories training of the smallest and largest grid model, their evaluation (val loss,
sampling up to the paper's max_new_tokens on GPU, novelty), a released-checkpoint evaluation; LN removal of
GPT-2 small (LN-free with the real schedule code + control), its evaluation (CE, float64 DLA, confidence
neurons) and the CE-only scaling evaluation; GPT-2 medium removal + evaluation (GPU only); sampling and
scoring at GPT-2 small size (experiments.lm.sample / score).

Budget (BUDGET below): on CPU, a step or two at micro-batch 1 (LN removal: 14 steps of 128 tokens through a
compressed schedule), short evaluation blocks, few samples: ~1.5 minutes on 2 cores. On CUDA the paper's
micro-batches are kept (so the peak GPU memory is the real one), GPT-2 small runs the paper's removal schedule
to its end, and evaluation uses the paper's block sizes and max_new_tokens.

Adding a case (e.g. the occupational-bias result, whose steps live in experiments/occupational_bias/):
write a function that takes the `Smoke` context, runs the step's `main([...])` through `smoke.cli`, and
returns a dict with "params" and "shape"; decorate it with `@case(...)`. Import the step inside the function
so this module never imports a paper package it does not run. About five lines, at the end of this file:

    @case("ob_generate", result="occupational_bias", needs=())
    def _ob_generate(s: Smoke) -> dict:
        from experiments.occupational_bias import generate  # the step CLI the rule runs
        s.cli(generate.main, ["--model", s.gpt2("gpt2"), "--n", s.budget("ob_samples"), "--out", s.out("ob.csv")])
        return {"params": ARCH_PARAMS["gpt2"], "shape": "batch 256 x (6 + 5) tokens"}

(`s.gpt2(id)` gives the `dir:` spec of a random-init GPT-2 of that hub id; add a budget key to BUDGET for
each device; `needs` names cases whose outputs this one reads.)

CLI: python -m experiments.smoke_paper [--device auto|cpu|cuda] [--only NAME ...] [--list] [--keep DIR]
     [--csv OUT.csv] [--budget cpu|cuda] [--threads N] [--verbose]
     (prints a table: case, result, params, seconds, peak MB, status; exit 1 if any case fails;
      `make smoke-paper`). Peak MB: GPU max allocated on CUDA, else the process's peak RSS during the case.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "config" / "paper.yaml"
VOCAB = 50257  # GPT-2 BPE (hub:gpt2, hub:EleutherAI/gpt-neo-125M, the TinyStories models)
EOT_ID = VOCAB - 1

# Hub config.json values (GPT2Config's defaults are exactly hub:gpt2: n_positions 1024, dropout 0.1, gelu_new).
ARCHS = {
    "gpt2": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    "gpt2-medium": dict(n_embd=1024, n_layer=24, n_head=16, n_positions=1024),
    "gpt2-large": dict(n_embd=1280, n_layer=36, n_head=20, n_positions=1024),
    "gpt2-xl": dict(n_embd=1600, n_layer=48, n_head=25, n_positions=1024),
}
ARCH_PARAMS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
               "gpt2-xl": 1_557_611_200}
# roneneldan/TinyStories-33M config.json: GPT-Neo, hidden 768, 4 layers, 16 heads, 2048 positions, window 256,
# alternating global/local attention (68,514,048 parameters). The other released sizes differ only in widths.
RELEASED = {"TinyStories-33M": dict(hidden_size=768, num_layers=4, num_heads=16, max_position_embeddings=2048,
                                    window_size=256)}

# Budget per device. Everything else (architectures, context, vocabulary, lr, eval lengths, ...) comes from
# config/paper.yaml. None = keep the paper value. ts_grad_accum: (smallest, largest grid model).
# LN removal: models in lnr_paper_schedule run the paper's removal schedule to its end (GPT-2 small: ln_f at
# step 104); the others a compressed one that still passes through every stage, the mixed one included (Q/K
# path fake, V path real: ln_1 returns width 2d): start 1, ln_2 all at 1, ln_1 Q/K one layer per step, V and
# ln_f together after the last Q/K (n_layers + 2 steps). lnr_block: training block length (CPU: 128, so the
# 14 steps fit the budget; the 1024-token path is exercised by score_gpt2 and on GPU).
BUDGET = {
    "cpu": dict(
        ts_steps=1, ts_batch=1, ts_grad_accum=(2, 1), ts_eval_blocks=1,
        ts_val_blocks=2, ts_prompts=2, ts_samples=2, ts_max_new_tokens=16,
        lnr_block=128, lnr_control_steps=1, lnr_batch=1, lnr_eval_blocks=1, lnr_paper_schedule=(),
        lnr_eval_block=32, lnr_n_blocks=4, lnr_dla_blocks=2, lnr_neurons=1,
        sample_prompts=16, sample_batch=8, score_pairs=16, score_blocks=1, bootstrap=100,
        ob_identity=2, ob_names=1, ob_batch=64, ob_min_prob=1e-3,
    ),
    "cuda": dict(
        ts_steps=2, ts_batch=None, ts_grad_accum=(1, 1), ts_eval_blocks=8,
        ts_val_blocks=32, ts_prompts=4, ts_samples=8, ts_max_new_tokens=None,
        lnr_block=None, lnr_control_steps=3, lnr_batch=None, lnr_eval_blocks=4, lnr_paper_schedule=("gpt2",),
        lnr_eval_block=None, lnr_n_blocks=16, lnr_dla_blocks=None, lnr_neurons=None,
        sample_prompts=512, sample_batch=256, score_pairs=256, score_blocks=16, bootstrap=100,
        ob_identity=100, ob_names=5, ob_batch=512, ob_min_prob=1e-4,
    ),
}


# --------------------------------------------------------------------------- registry


@dataclass
class Case:
    name: str
    fn: Callable[["Smoke"], dict]
    result: str
    needs: tuple[str, ...] = ()
    gpu_only: bool = False


CASES: dict[str, Case] = {}


def case(name: str, *, result: str, needs: tuple[str, ...] = (), gpu_only: bool = False):
    """Register a smoke case: `fn(smoke) -> {"params": int, "shape": str}`; `needs` run first."""
    def deco(fn):
        if name in CASES:
            raise ValueError(f"smoke case {name!r} registered twice")
        CASES[name] = Case(name, fn, result, tuple(needs), gpu_only)
        return fn
    return deco


@dataclass
class Row:
    case: str
    result: str
    params: int | None = None
    shape: str = ""
    seconds: float = 0.0
    peak_mb: float | None = None
    status: str = "ok"
    error: str = ""
    log: str = ""


# --------------------------------------------------------------------------- memory


class PeakMemory:
    """Peak memory of the block: GPU max allocated on CUDA, else process RSS (VmHWM reset, or sampled)."""

    def __init__(self, device: str):
        self.device = device
        self.peak_mb: float | None = None

    @staticmethod
    def _status(key: str) -> float | None:
        try:
            for line in open("/proc/self/status"):
                if line.startswith(key + ":"):
                    return float(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def __enter__(self):
        if self.device == "cuda":
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._hwm_reset = False
        with contextlib.suppress(OSError):
            with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak RSS (Linux >= 4.0)
                fh.write("5")
            self._hwm_reset = True
        self._sampled, self._stop = 0.0, threading.Event()

        def sample():
            while not self._stop.wait(0.05):
                self._sampled = max(self._sampled, self._status("VmRSS") or 0.0)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            import torch
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
            return False
        self._stop.set()
        self._thread.join()
        hwm = self._status("VmHWM") if self._hwm_reset else None
        self.peak_mb = max(self._sampled, hwm or 0.0, self._status("VmRSS") or 0.0)
        return False


# --------------------------------------------------------------------------- fixtures


def gpt2_shaped_tokenizer(texts, vocab_size: int = VOCAB, bpe_vocab: int = 2000):
    """A BPE trained by experiments.lm.tokenizer, re-indexed to GPT-2's layout (EOT last, no pad token)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from experiments.lm.tokenizer import EOT, train_bpe

    small = train_bpe(texts, bpe_vocab)
    spec = json.loads(small.backend_tokenizer.to_str())
    used = [t for t, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1]) if t != EOT]
    filler = [f"<|unused{i}|>" for i in range(vocab_size - 1 - len(used))]
    spec["model"]["vocab"] = {t: i for i, t in enumerate(used + filler)} | {EOT: vocab_size - 1}
    for added in spec["added_tokens"]:
        if added["content"] == EOT:
            added["id"] = vocab_size - 1
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), bos_token=EOT,
                                  eos_token=EOT, unk_token=None)
    tok.model_max_length = 1024
    assert len(tok) == vocab_size and tok.eos_token_id == vocab_size - 1, (len(tok), tok.eos_token_id)
    return tok


class Smoke:
    """The context every case gets: device, budget, paper config, temp dir, and memoised fixtures."""

    def __init__(self, work: Path, device: str, paper: dict, verbose: bool = False, threads: int | None = None,
                 budget: str | None = None):
        self.work, self.device, self.paper, self.verbose, self.threads = work, device, paper, verbose, threads
        self.budget_name = budget or device
        self.setup_rows: list[Row] = []
        self.fixture_seconds = 0.0  # total time spent building fixtures (cases report their time without it)
        self._memo: dict[str, object] = {}
        self._log: io.TextIOBase | None = None

    # budget / paths -----------------------------------------------------------------------------------
    def budget(self, key: str, paper_value=None):
        value = BUDGET[self.budget_name][key]
        return paper_value if value is None else value

    def out(self, *parts: str) -> str:
        path = self.work.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def common_args(self) -> list[str]:
        return ["--device", self.device] + (["--threads", str(self.threads)] if self.threads else [])

    # running a step CLI -------------------------------------------------------------------------------
    def cli(self, main: Callable, argv: list[str]) -> None:
        """Run a step's main(argv) as its rule would; argparse exits and nonzero statuses are errors."""
        argv = [str(a) for a in argv]
        if self._log is not None:
            self._log.write(f"$ {main.__module__} {' '.join(argv)}\n")
        try:
            status = main(argv)
        except SystemExit as exc:
            status = exc.code
        if status not in (None, 0):
            raise RuntimeError(f"{main.__module__}.main exited with {status}")

    # memoised fixtures (their time is listed as setup rows) -------------------------------------------
    def _fixture(self, name: str, build: Callable[[], object]):
        if name not in self._memo:
            t0, inner = time.time(), self.fixture_seconds
            self._memo[name] = build()
            own = time.time() - t0 - (self.fixture_seconds - inner)  # without the fixtures it built first
            self.fixture_seconds += own
            self.setup_rows.append(Row(case=f"setup:{name}", result="-", seconds=own))
        return self._memo[name]

    def corpus(self) -> Path:
        """StoryWorld train/val text + prompts (make_corpus, as the mini ts_corpus rule writes them)."""
        def build():
            from experiments.tinystories import make_corpus
            out = self.work / "corpus"
            self.cli(make_corpus.main, ["--source", "storyworld", "--seed", "0", "--n-train", "1500",
                                        "--n-val", "400", "--n-prompts", "64", "--n-cloze", "0",
                                        "--out-dir", out])
            return out
        return self._fixture("corpus", build)

    def tokenizer(self) -> Path:
        """GPT-2-shaped tokenizer dir (50,257 ids); stands in for hub:gpt2 / hub:EleutherAI/gpt-neo-125M."""
        def build():
            from experiments.lm.tokenizer import iter_documents, save_tokenizer
            docs, size = [], 0
            for doc in iter_documents(self.corpus() / "train.txt"):
                docs.append(doc)
                size += len(doc)
                if size > 20_000:
                    break
            out = self.work / "tokenizer"
            save_tokenizer(gpt2_shaped_tokenizer(docs), out)
            return out
        return self._fixture("tokenizer", build)

    def gpt2(self, hub_id: str = "gpt2") -> str:
        """`dir:` spec of a random-init GPT-2 with hub_id's architecture and the tokenizer."""
        def build():
            import torch
            from transformers import GPT2Config, GPT2LMHeadModel

            from experiments.lm.tokenizer import load_tokenizer
            torch.manual_seed(0)
            model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, **ARCHS[hub_id]))
            out = self.work / "models" / hub_id
            model.save_pretrained(out)
            load_tokenizer(self.tokenizer()).save_pretrained(out)
            return f"dir:{out}"
        return self._fixture(f"random {hub_id}", build)

    def tokenizer_model(self) -> str:
        """`dir:` stand-in for tinystories.tokenizer.pretrained (hub:EleutherAI/gpt-neo-125M): only its tokenizer
        is used, so the weights are a 1-layer d16 GPT-Neo (a model dir needs config + weights to be valid)."""
        def build():
            from experiments.lm.build import build_model
            from experiments.lm.tokenizer import load_tokenizer
            out = self.work / "models" / "tokenizer-holder"
            build_model("gpt_neo", vocab_size=VOCAB, d_model=16, n_layers=1, n_heads=1, context=2048,
                        eos_id=EOT_ID).save_pretrained(out)
            load_tokenizer(self.tokenizer()).save_pretrained(out)
            return f"dir:{out}"
        return self._fixture("tokenizer model", build)

    def streams(self) -> dict[str, Path]:
        """uint16 token streams of the corpus, through the real ts_tokenizer (pretrained) + ts_encode CLIs."""
        def build():
            from experiments.data import tokens
            from experiments.lm import tokenizer
            tok_dir = self.work / "ts_tokenizer"
            # kind = pretrained, as in config/paper.yaml (the spec is a dir: stand-in for the hub model)
            self.cli(tokenizer.main, ["--corpus", self.corpus() / "train.txt", "--kind", "pretrained",
                                      "--pretrained", self.tokenizer_model(), "--out", tok_dir])
            out = {"tokenizer": tok_dir}
            for split in ("train", "val"):
                out[split] = self.work / "tokens" / f"{split}.npy"
                self.cli(tokens.main, ["--corpus", self.corpus() / f"{split}.txt", "--tokenizer", tok_dir,
                                       "--out", out[split]])
            return out
        return self._fixture("token streams", build)


# --------------------------------------------------------------------------- TinyStories (Eldan & Li 2023)


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


def _ts_eval(s: Smoke, spec: str, model_id: str) -> dict:
    from experiments.tinystories import evaluate
    ts = s.paper["tinystories"]
    ev = dict(ts["eval"])
    ev.update(val_blocks=s.budget("ts_val_blocks"), n_prompts=s.budget("ts_prompts"),
              samples_per_prompt=s.budget("ts_samples"), bootstrap=s.budget("bootstrap"),
              max_new_tokens=s.budget("ts_max_new_tokens", ev["max_new_tokens"]))
    corpus, st = s.corpus(), s.streams()
    cloze = Path(s.out("ts", "cloze.jsonl"))
    cloze.write_text("")  # n_cloze = 0 at paper scale (no planted facts in real TinyStories)
    s.cli(evaluate.main, ["--model", spec, "--model-id", model_id, "--seed", 0, "--val", st["val"],
                          "--prompts", corpus / "prompts.jsonl", "--cloze", cloze,
                          "--train-corpus", corpus / "train.txt", "--eval-config", json.dumps(ev),
                          "--judge", ts["judge"]["kind"], "--judge-model", "none", "--scale", "paper",
                          "--block-size", ts["train"]["block_size"], *s.common_args(),
                          "--out", s.out("ts", "eval", f"{model_id}.csv"),
                          "--samples", s.out("ts", "samples", f"{model_id}.jsonl")])
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
    return _ts_eval(s, _ts_model_spec(s, w, d), f"w{w}_l{d}_s0")


@case("ts_eval_largest", result="tinystories", needs=("ts_train_largest",))
def _ts_eval_largest(s: Smoke) -> dict:
    w, d = _ts_grid(s)[1]
    return _ts_eval(s, _ts_model_spec(s, w, d), f"w{w}_l{d}_s0")


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


# --------------------------------------------------------------------------- LayerNorm removal


def _lnr_opt(s: Smoke, model_id: str, key: str):
    """config block for one model: shared block updated by its per_model override (as lnr_opt in the .smk)."""
    lnr = s.paper["ln_removal"]
    base, over = lnr.get(key), lnr.get("per_model", {}).get(model_id, {}).get(key)
    return {**base, **(over or {})} if isinstance(base, dict) else (base if over is None else over)


def _lnr_remove(s: Smoke, model_id: str, mode: str) -> dict:
    from experiments.ln_removal import remove
    from experiments.ln_removal.schedule import ScheduleConfig, events
    train, sched = dict(_lnr_opt(s, model_id, "train")), dict(_lnr_opt(s, model_id, "schedule"))
    n_layers = ARCHS[model_id]["n_layer"]
    if model_id not in s.budget("lnr_paper_schedule"):
        sched.update(start=1, gap_ln2=0, gap_qk=1, gap_v=0)  # compressed, every stage (see BUDGET)
    last = events(ScheduleConfig.from_dict(sched), n_layers)[-1].step
    steps = last + 1 if mode == "ln_free" else s.budget("lnr_control_steps")
    train.update(max_steps=steps, batch_size=s.budget("lnr_batch", train["batch_size"]), grad_accum=1,
                 block_size=s.budget("lnr_block", train["block_size"]), eval_blocks=s.budget("lnr_eval_blocks"),
                 checkpoint_every=steps)
    st = s.streams()
    t0 = time.time()
    s.cli(remove.main, ["--model", s.gpt2(model_id), "--model-id", model_id, "--mode", mode,
                        "--train", st["train"], "--val", st["val"], "--train-config", json.dumps(train),
                        "--max-steps", steps, "--schedule", json.dumps(sched),
                        "--aux-weight", _lnr_opt(s, model_id, "aux_weight"), "--seed", s.paper["ln_removal"]["seed"],
                        *s.common_args(), "--checkpoint-dir", s.out("lnr", "ckpt", model_id, mode),
                        "--out", s.out("lnr", "models", model_id, mode),
                        "--curve", s.out("lnr", "curves", model_id, f"{mode}.csv"),
                        "--events", s.out("lnr", "events", model_id, f"{mode}.csv")])
    tokens = steps * train["batch_size"] * train["block_size"]
    fired = f"; schedule events at steps <= {last}" if mode == "ln_free" else ""
    return {"params": ARCH_PARAMS[model_id],
            "shape": f"{steps} steps x {train['batch_size']}x{train['block_size']}{fired}",
            "tokens_per_s": tokens / max(time.time() - t0, 1e-9)}


def _lnr_evaluate(s: Smoke, model_id: str, ce_only: bool = False) -> dict:
    from experiments.ln_removal import evaluate
    ev = s.paper["ln_removal"]["eval"]
    block = s.budget("lnr_eval_block", _lnr_opt(s, model_id, "train")["block_size"])
    dla_blocks, neurons = s.budget("lnr_dla_blocks", ev["dla_blocks"]), s.budget("lnr_neurons", ev["n_neurons"])
    models = {m: f"dir:{s.out('lnr', 'models', model_id, m)}" for m in ("ln_free", "with_ln")}
    tag = "scaling" if ce_only else "eval"
    argv = ["--model-id", model_id, "--original", s.gpt2(model_id), "--ln-free", models["ln_free"],
            "--control", models["with_ln"], "--val", s.streams()["val"], "--block-size", block,
            "--n-blocks", s.budget("lnr_n_blocks"), "--dla-blocks", dla_blocks, "--n-neurons", neurons,
            "--bootstrap", s.budget("bootstrap"), "--tokens", 0, *s.common_args(),
            "--out-ce", s.out("lnr", tag, model_id, "ce.csv")]
    if ce_only:
        argv.append("--ce-only")
    else:
        argv += ["--out-dla", s.out("lnr", tag, model_id, "dla.csv"),
                 "--out-neurons", s.out("lnr", tag, model_id, "neurons.csv")]
    s.cli(evaluate.main, argv)
    shape = f"3 models; CE {s.budget('lnr_n_blocks')} blocks x {block}"
    if not ce_only:
        import pandas as pd
        dla = pd.read_csv(s.out("lnr", tag, model_id, "dla.csv"))
        err = dla[dla.metric == "max_abs_sum_error"].set_index("variant")["value"]
        shape += (f"; float64 DLA {dla_blocks}x{block} (max err LN-free {err.get('ln_free', float('nan')):.1e}, "
                  f"original {err.get('original', float('nan')):.1e}); {neurons} neurons")
    return {"params": ARCH_PARAMS[model_id], "shape": shape}


@case("lnr_remove_gpt2_ln_free", result="ln_removal")
def _lnr_free(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2", "ln_free")


@case("lnr_remove_gpt2_with_ln", result="ln_removal")
def _lnr_ctrl(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2", "with_ln")


@case("lnr_evaluate_gpt2", result="ln_removal", needs=("lnr_remove_gpt2_ln_free", "lnr_remove_gpt2_with_ln"))
def _lnr_eval(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2")


@case("lnr_scaling_eval_gpt2", result="ln_removal", needs=("lnr_remove_gpt2_ln_free", "lnr_remove_gpt2_with_ln"))
def _lnr_scaling(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2", ce_only=True)


@case("lnr_remove_gpt2-medium_ln_free", result="ln_removal", gpu_only=True)
def _lnr_free_medium(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2-medium", "ln_free")


@case("lnr_remove_gpt2-medium_with_ln", result="ln_removal", gpu_only=True)
def _lnr_ctrl_medium(s: Smoke) -> dict:
    return _lnr_remove(s, "gpt2-medium", "with_ln")


@case("lnr_evaluate_gpt2-medium", result="ln_removal", gpu_only=True,
      needs=("lnr_remove_gpt2-medium_ln_free", "lnr_remove_gpt2-medium_with_ln"))
def _lnr_eval_medium(s: Smoke) -> dict:
    return _lnr_evaluate(s, "gpt2-medium")


# --------------------------------------------------------------------------- generation / scoring (shared lm/)


def short_prompts(tok, n: int, length: int = 6) -> list[str]:
    """n distinct prompts of exactly `length` tokens ("The" + single-token words), like the occupational-bias
    templates ("The Black woman worked as a" is 6 GPT-2 tokens)."""
    import itertools
    words = sorted(t[1:] for t in tok.get_vocab() if t.startswith("\u0120") and t[1:].isalpha() and len(t) > 3)
    out = []
    for combo in itertools.product(words[:12], repeat=length - 1):
        text = "The " + " ".join(combo)
        if len(tok(text)["input_ids"]) == length:
            out.append(text)
            if len(out) == n:
                return out
    raise ValueError(f"could not build {n} prompts of {length} tokens")


@case("sample_gpt2", result="lm")
def _sample(s: Smoke) -> dict:
    import torch

    from experiments.lm.load import load_model
    from experiments.lm.sample import sample_ids
    model, tok = load_model(s.gpt2("gpt2"), device=s.device)
    prompts = short_prompts(tok, s.budget("sample_prompts"))
    lengths = [len(tok(p)["input_ids"]) for p in prompts]
    if s.device == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    new = sample_ids(model, tok, prompts, max_new_tokens=5, top_k=50, batch_size=s.budget("sample_batch"),
                     seed=0, progress=False)
    if s.device == "cuda":
        torch.cuda.synchronize()
    dt = time.time() - t0
    if not all(len(r) == 5 or (r and r[-1] == tok.eos_token_id) for r in new):
        raise AssertionError("a row stopped before 5 new tokens without EOS")
    if max(max(r) for r in new if r) >= VOCAB:
        raise AssertionError("sampled an id outside the vocabulary")
    return {"params": ARCH_PARAMS["gpt2"],
            "shape": f"{len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, 5 new, top-k 50, "
                     f"batch {s.budget('sample_batch')}: {len(prompts) / dt:.0f} completions/s (fp32)"}


@case("score_gpt2", result="lm")
def _score(s: Smoke) -> dict:
    import numpy as np

    from experiments.data.tokens import eval_blocks
    from experiments.lm.load import load_model
    from experiments.lm.score import block_losses, continuation_logprobs
    model, tok = load_model(s.gpt2("gpt2"), device=s.device)
    n = s.budget("score_pairs")
    prefixes = short_prompts(tok, n)
    conts = [" nurse", " carpenter", " software engineer", " teacher"] * (n // 4 + 1)
    scores = continuation_logprobs(model, tok, prefixes, conts[:n])
    if not all(np.isfinite(x.logprob) and x.n_tokens > 0 for x in scores):
        raise AssertionError("non-finite or empty continuation score")
    blocks = eval_blocks(np.load(s.streams()["val"], mmap_mode="r"), ARCHS["gpt2"]["n_positions"],
                         s.budget("score_blocks"))
    losses = block_losses(model, blocks)
    if not np.isfinite(losses).all():
        raise AssertionError("non-finite block loss")
    return {"params": ARCH_PARAMS["gpt2"],
            "shape": f"{n} continuation pairs; {len(blocks)} blocks x {blocks.shape[1]} "
                     f"(loss {losses.mean():.2f} nats, ln V = {np.log(VOCAB):.2f})"}


@case("ob_generate_gpt2", result="occupational_bias")
def _ob_generate(s: Smoke) -> dict:
    from experiments.occupational_bias import extract, generate
    n_id, n_name = s.budget("ob_identity"), s.budget("ob_names")
    s.cli(generate.main, ["--spec", s.gpt2("gpt2"), "--model-id", "gpt2", "--identity-samples", n_id,
                          "--name-samples", n_name, "--batch-size", s.budget("ob_batch"),
                          "--parts-dir", s.out("ob", "raw.parts"), "--out", s.out("ob", "raw.csv"),
                          *s.common_args()])
    s.cli(extract.main, ["--completions", s.out("ob", "raw.csv"), "--out", s.out("ob", "completions.csv")])
    return {"params": ARCH_PARAMS["gpt2"], "shape": f"28 x {n_id} + 199 x {n_name} completions, top-k 50, "
            f"max_length 10 incl. the prompt, batch {s.budget('ob_batch')}"}


@case("ob_exact_analyse_gpt2", result="occupational_bias", needs=("ob_generate_gpt2",))
def _ob_exact(s: Smoke) -> dict:
    from experiments.occupational_bias import analyse, exact
    s.cli(exact.main, ["--spec", s.gpt2("gpt2"), "--model-id", "gpt2", "--completions", s.out("ob", "completions.csv"),
                       "--min-prob", s.budget("ob_min_prob"), "--out", s.out("ob", "exact.csv"), *s.common_args()])
    s.cli(analyse.main, ["--completions", s.out("ob", "completions.csv"), "--out-dir", s.out("ob", "analysis"),
                         "--bootstrap", s.budget("bootstrap"), "--min-labour-mentions", 1])
    return {"params": ARCH_PARAMS["gpt2"], "shape": f"title trie over 50,257-token logits, min_prob "
            f"{s.budget('ob_min_prob')}; diversity, regressions, labour"}


# --------------------------------------------------------------------------- running


def resolve_device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no CUDA device")
    return name


def run_case(s: Smoke, c: Case) -> Row:
    row = Row(case=c.name, result=c.result)
    log = io.StringIO()
    s._log = log
    t0, fixtures_before = time.time(), s.fixture_seconds
    tee = log if not s.verbose else _Tee(log, sys.stdout)
    try:
        with PeakMemory(s.device) as mem, contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
            info = c.fn(s) or {}
        row.params, row.shape, row.peak_mb = info.get("params"), info.get("shape", ""), mem.peak_mb
        if info.get("tokens_per_s"):
            row.shape += f"; {info['tokens_per_s']:,.0f} tok/s incl. load/save"
    except BaseException as exc:  # noqa: BLE001 - a failing case must not stop the others (Ctrl-C excepted)
        if isinstance(exc, KeyboardInterrupt):
            raise
        row.status = "FAIL"
        row.error = f"{type(exc).__name__}: {exc}"
        log.write(traceback.format_exc())
    finally:
        s._log = None
        gc.collect()
        if s.device == "cuda":
            import torch
            torch.cuda.empty_cache()
    row.seconds = time.time() - t0 - (s.fixture_seconds - fixtures_before)
    row.log = log.getvalue()
    return row


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for st in self.streams:
            st.write(text)
        return len(text)

    def flush(self):
        for st in self.streams:
            st.flush()


def plan(names: list[str]) -> list[str]:
    """`names` with their `needs` first, each once, in registry order where possible."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in CASES[name].needs:
            visit(dep)
        order.append(name)

    for name in names:
        visit(name)
    return order


def format_table(rows: list[Row]) -> str:
    head = f"{'case':34s} {'result':12s} {'params':>8s} {'seconds':>8s} {'peak MB':>9s} {'status':6s} shape"
    lines = [head, "-" * len(head)]
    for r in rows:
        params = f"{r.params / 1e6:.1f}M" if r.params else "-"
        peak = f"{r.peak_mb:,.0f}" if r.peak_mb is not None else "-"
        lines.append(f"{r.case:34s} {r.result:12s} {params:>8s} {r.seconds:8.1f} {peak:>9s} {r.status:6s} "
                     f"{r.shape if r.status == 'ok' else r.error}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.smoke_paper", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this case (and the cases it needs); repeatable")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--config", default=str(PAPER_CONFIG), help="paper config whose values are smoke-tested")
    ap.add_argument("--keep", default=None, metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    ap.add_argument("--csv", default=None, help="also write the table as CSV")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--budget", choices=["cpu", "cuda"], default=None,
                    help="budget column of BUDGET (default: the device's); e.g. check the GPU budget of a case on CPU")
    ap.add_argument("--verbose", action="store_true", help="stream each case's output")
    args = ap.parse_args(argv)

    if args.list:
        for c in CASES.values():
            extra = ("  [GPU only]" if c.gpu_only else "") + (f"  needs {', '.join(c.needs)}" if c.needs else "")
            print(f"{c.name:34s} {c.result:12s}{extra}")
        return 0
    unknown = [n for n in args.only if n not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; --list shows them")
    device = resolve_device(args.device)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    paper = yaml.safe_load(open(args.config))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network

    wanted = args.only or [n for n, c in CASES.items() if device == "cuda" or not c.gpu_only]
    skipped = [] if args.only else [n for n in CASES if n not in wanted]
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smoke_paper_")))
        s = Smoke(work, device, paper, verbose=args.verbose, threads=args.threads, budget=args.budget)
        import torch
        name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        print(f"smoke-paper on {name}, torch {torch.__version__}, budget {s.budget_name}, config {args.config}, "
              f"work dir {work}", flush=True)
        t_start = time.time()
        rows: list[Row] = []
        for n in plan(wanted):
            print(f"- {n} ...", end=" ", flush=True)
            row = run_case(s, CASES[n])
            print(f"{row.status} {row.seconds:.1f} s", flush=True)
            if row.status != "ok":
                print(f"  {row.error}\n  --- last lines of its output ---", flush=True)
                print("  " + "\n  ".join(row.log.strip().splitlines()[-25:]), flush=True)
            rows.append(row)
        total = time.time() - t_start
    rows = s.setup_rows + rows + [Row(case=n, result=CASES[n].result, status="skip", error="GPU only")
                                  for n in skipped]
    print("\n" + format_table(rows))
    failed = [r.case for r in rows if r.status == "FAIL"]
    n_ok = sum(r.status == "ok" and not r.case.startswith("setup:") for r in rows)
    print(f"\n{n_ok} cases ok, {len(failed)} failed, {len(skipped)} skipped; {total:.0f} s wall on {name}")
    if args.csv:
        import pandas as pd
        pd.DataFrame([{k: v for k, v in vars(r).items() if k != "log"} for r in rows]).to_csv(args.csv, index=False)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
