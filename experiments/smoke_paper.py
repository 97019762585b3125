"""Smoke run of every paper-scale training / generation / scoring code path, without the HF hub.

Each *case* calls a real step CLI (the `main(argv)` a Snakemake rule runs) on RANDOM-INIT models of the
papers' real architectures, with the values of config/paper.yaml overridden only in budget (steps, micro-batch
on CPU, number of blocks, prompts and samples). A shape, dtype, vocabulary or memory error that would hit a
paper-scale job on a cluster shows up here in minutes, on 2 CPU cores or on one GPU.

This module is the runner; the cases of each result live in that result's smoke module, named by its manifest
(`Manifest.smoke`, e.g. experiments/<result>/smoke.py), and are loaded for the results the config lists
(`results`). The config is read as the workflow reads it (experiments.check_paper.load_config: config.yaml
updated by --config, schema defaults filled). Two shared cases (sampling and scoring at GPT-2 small size,
experiments.lm.sample / score) belong to no result and live here.

What stands in for the hub (built once per run in a temporary directory, see `Smoke` below):
  text        a small seeded synthetic English text (`synthetic_documents`: short documents of template
              sentences over a fixed word list), written as train / val corpora
  tokenizer   a byte-level BPE trained by experiments.lm.tokenizer on ~20 KB of that text, re-indexed to
              GPT-2's layout: 50,257 ids, <|endoftext|> = 50256 (bos = eos, no pad token, like hub:gpt2);
              the ids the BPE does not use are filler tokens, so every vocabulary-sized tensor is full size
  tokenizer   a `dir:` model holding that tokenizer (a 1-layer d16 GPT-Neo; only its tokenizer is read) for
  model       steps that take a pretrained tokenizer's model spec (hub:gpt2, hub:EleutherAI/gpt-neo-125M)
  streams     the text tokenized by the real tokenizer (kind pretrained) and token-stream CLIs
              (experiments.lm.tokenizer, experiments.data.tokens) into uint16 train / val streams
  GPT-2       GPT2LMHeadModel(GPT2Config(**ARCHS[id])) saved as `dir:` specs; ARCHS holds the hub config.json
              values of gpt2 ... gpt2-xl (Radford et al. 2019, Table 2; GPT2Config's defaults ARE gpt2's)
A smoke module builds anything else its cases need itself (`Smoke.fixture(name, build)` memoises it).

Budget: each smoke module has BUDGET = {"cpu": {...}, "cuda": {...}} (the same keys in both; None = keep the
paper value), merged with the runner's own BUDGET below; a key may be defined once. On CPU: a step or two
at micro-batch 1, short evaluation blocks, few samples (~1.5-3 minutes on 2 cores). On CUDA the paper's
micro-batches are kept (so the peak GPU memory is the real one) and evaluation uses the paper's lengths.

Adding a result's cases: in experiments/<result>/smoke.py write a function per case that takes the `Smoke`
context, runs the step's `main([...])` through `smoke.cli`, and returns a dict with "params" and "shape"
(optionally "tokens_per_s"); decorate it with `@case(name, result=...)`; import the step inside the function;
add the module's BUDGET; name the module in the manifest (`smoke="experiments.<result>.smoke"`):

    @case("xx_generate_gpt2", result="<result>", needs=())
    def _generate(s: Smoke) -> dict:
        from experiments.<result> import generate  # the step CLI the rule runs
        s.cli(generate.main, ["--model", s.gpt2("gpt2"), "--n", s.budget("xx_samples"), "--out", s.out("xx.csv")])
        return {"params": ARCH_PARAMS["gpt2"], "shape": "batch 256 x (6 + 5) tokens"}

(`s.gpt2(id)` gives the `dir:` spec of a random-init GPT-2 of that hub id; `needs` names cases whose outputs
this one reads; `gpu_only=True` for a case too big for CPU.)

CLI: python -m experiments.smoke_paper [--device auto|cpu|cuda] [--only NAME ...] [--list] [--keep DIR]
     [--csv OUT.csv] [--budget cpu|cuda] [--threads N] [--verbose]
     (prints a table: case, result, params, seconds, peak MB, status; exit 1 if any case fails;
      `make smoke-paper`). Peak MB: GPU max allocated on CUDA, else the process's peak RSS during the case.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib
import io
import json
import os
import random
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIG = REPO / "config" / "paper.yaml"
VOCAB = 50257  # GPT-2 BPE (hub:gpt2, hub:EleutherAI/gpt-neo-125M and the models that share it)
EOT_ID = VOCAB - 1
SHARED = "lm"  # the `result` of the runner's own cases (experiments.lm: no paper's)

# Hub config.json values (GPT2Config's defaults are exactly hub:gpt2: n_positions 1024, dropout 0.1, gelu_new).
ARCHS = {
    "gpt2": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    "gpt2-medium": dict(n_embd=1024, n_layer=24, n_head=16, n_positions=1024),
    "gpt2-large": dict(n_embd=1280, n_layer=36, n_head=20, n_positions=1024),
    "gpt2-xl": dict(n_embd=1600, n_layer=48, n_head=25, n_positions=1024),
}
ARCH_PARAMS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "gpt2-large": 774_030_080,
               "gpt2-xl": 1_557_611_200}

# The runner's budget keys (the shared cases; `bootstrap` is read by every result's evaluation cases too).
BUDGET = {
    "cpu": dict(sample_prompts=16, sample_batch=8, score_pairs=16, score_blocks=1, bootstrap=100),
    "cuda": dict(sample_prompts=512, sample_batch=256, score_pairs=256, score_blocks=16, bootstrap=100),
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


def _register(c: Case) -> None:
    if c.name in CASES and CASES[c.name] is not c:
        raise ValueError(f"smoke case {c.name!r} registered twice")
    CASES[c.name] = c


def case(name: str, *, result: str, needs: tuple[str, ...] = (), gpu_only: bool = False):
    """Register a smoke case: `fn(smoke) -> {"params": int, "shape": str}`; `needs` run first."""
    def deco(fn):
        c = Case(name, fn, result, tuple(needs), gpu_only)
        _register(c)
        fn.smoke_case = c  # lets load_cases register it again into a fresh registry
        return fn
    return deco


def smoke_modules(results: list[str]) -> list[ModuleType]:
    """The smoke module of each result that has one (`Manifest.smoke`), imported, in the order given."""
    from experiments.manifest import load_manifest
    names = [m.smoke for m in map(load_manifest, results) if m.smoke]
    return [importlib.import_module(n) for n in names]


def load_cases(modules: list[ModuleType]) -> None:
    """Make sure every case of `modules` is in CASES (importing a module registers its cases once)."""
    for module in modules:
        for obj in vars(module).values():
            if isinstance(getattr(obj, "smoke_case", None), Case):
                _register(obj.smoke_case)


def merged_budget(modules: list[ModuleType]) -> dict[str, dict]:
    """BUDGET with each module's BUDGET added; a key defined twice, or missing for one device, is an error."""
    out = copy.deepcopy(BUDGET)
    owner = dict.fromkeys(BUDGET["cpu"], __name__)
    for module in modules:
        budget = getattr(module, "BUDGET", {"cpu": {}, "cuda": {}})
        if set(budget) != {"cpu", "cuda"} or set(budget["cpu"]) != set(budget["cuda"]):
            raise ValueError(f"{module.__name__}.BUDGET needs the same keys under 'cpu' and 'cuda'")
        for key in budget["cpu"]:
            if key in owner:
                raise ValueError(f"budget key {key!r} of {module.__name__} is already defined by {owner[key]}")
            owner[key] = module.__name__
        for device in ("cpu", "cuda"):
            out[device].update(budget[device])
    return out


def selected_cases(results: list[str]) -> list[str]:
    """The registered cases of `results` (in that order), then the shared ones."""
    return [n for r in [*results, SHARED] for n, c in CASES.items() if c.result == r]


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

_WORDS = dict(
    adj="small big old young red blue green quiet happy busy bright dark warm cold tall short soft loud".split(),
    noun=("farmer teacher doctor baker driver painter sailor child dog cat bird horse garden river village "
          "market window table letter basket bridge forest mountain kitchen station library").split(),
    verb="found carried painted watched visited cleaned opened followed helped built moved".split(),
    place="town park school harbour valley square field hill shop road".split(),
    time="morning evening afternoon winter summer night".split(),
)
_SENTENCES = (
    "The {adj} {noun} {verb} the {noun2} near the {place}.",
    "In the {time}, a {noun} {verb} a {adj} {noun2}.",
    "Every {time} the {noun} walked to the {place} with the {noun2}.",
    "A {adj} {noun} and a {adj2} {noun2} lived by the {place}.",
    "Later the {noun} {verb} the {adj} {noun2} again.",
    "Nobody knew why the {noun2} was so {adj}.",
)


def synthetic_documents(n: int, seed: int = 0) -> list[str]:
    """n short documents (3-7 template sentences over a fixed word list), seeded: a stand-in text for
    tokenizers and token streams that belongs to no paper."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        sentences = []
        for _ in range(rng.randint(3, 7)):
            w = {k: rng.choice(v) for k, v in _WORDS.items()}
            w.update(noun2=rng.choice(_WORDS["noun"]), adj2=rng.choice(_WORDS["adj"]))
            sentences.append(rng.choice(_SENTENCES).format(**w))
        docs.append(" ".join(sentences))
    return docs


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
                 budget: str | None = None, budgets: dict[str, dict] | None = None):
        self.work, self.device, self.paper, self.verbose, self.threads = work, device, paper, verbose, threads
        self.budget_name = budget or device
        self.budgets = budgets if budgets is not None else BUDGET
        self.setup_rows: list[Row] = []
        self.fixture_seconds = 0.0  # total time spent building fixtures (cases report their time without it)
        self._memo: dict[str, object] = {}
        self._log: io.TextIOBase | None = None

    # budget / paths -----------------------------------------------------------------------------------
    def budget(self, key: str, paper_value=None):
        value = self.budgets[self.budget_name][key]
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
    def fixture(self, name: str, build: Callable[[], object]):
        """build() once per run (its time is a `setup:<name>` row, not the case's); later calls reuse it."""
        if name not in self._memo:
            t0, inner = time.time(), self.fixture_seconds
            self._memo[name] = build()
            own = time.time() - t0 - (self.fixture_seconds - inner)  # without the fixtures it built first
            self.fixture_seconds += own
            self.setup_rows.append(Row(case=f"setup:{name}", result="-", seconds=own))
        return self._memo[name]

    def corpus(self) -> Path:
        """The synthetic text as train.txt / val.txt (documents separated by <|endoftext|> lines)."""
        def build():
            from experiments.lm.tokenizer import documents_text
            out = self.work / "corpus"
            out.mkdir(parents=True, exist_ok=True)
            for split, n, seed in (("train", 4000, 0), ("val", 1100, 1)):  # ~630 KB / ~175 KB
                (out / f"{split}.txt").write_text(documents_text(synthetic_documents(n, seed)))
            return out
        return self.fixture("corpus", build)

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
        return self.fixture("tokenizer", build)

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
        return self.fixture(f"random {hub_id}", build)

    def tokenizer_model(self) -> str:
        """`dir:` stand-in for a pretrained tokenizer's model spec (e.g. hub:EleutherAI/gpt-neo-125M): only its
        tokenizer is used, so the weights are a 1-layer d16 GPT-Neo (a model dir needs config + weights)."""
        def build():
            from experiments.lm.build import build_model
            from experiments.lm.tokenizer import load_tokenizer
            out = self.work / "models" / "tokenizer-holder"
            build_model("gpt_neo", vocab_size=VOCAB, d_model=16, n_layers=1, n_heads=1, context=2048,
                        eos_id=EOT_ID).save_pretrained(out)
            load_tokenizer(self.tokenizer()).save_pretrained(out)
            return f"dir:{out}"
        return self.fixture("tokenizer model", build)

    def streams(self) -> dict[str, Path]:
        """uint16 token streams of the corpus through the real tokenizer (kind pretrained) + token-stream CLIs;
        {"tokenizer": dir, "train": .npy, "val": .npy}."""
        def build():
            from experiments.data import tokens
            from experiments.lm import tokenizer
            tok_dir = self.work / "stream_tokenizer"
            self.cli(tokenizer.main, ["--corpus", self.corpus() / "train.txt", "--kind", "pretrained",
                                      "--pretrained", self.tokenizer_model(), "--out", tok_dir])
            out = {"tokenizer": tok_dir}
            for split in ("train", "val"):
                out[split] = self.work / "tokens" / f"{split}.npy"
                self.cli(tokens.main, ["--corpus", self.corpus() / f"{split}.txt", "--tokenizer", tok_dir,
                                       "--out", out[split]])
            return out
        return self.fixture("token streams", build)


# --------------------------------------------------------------------------- generation / scoring (shared lm/)


def short_prompts(tok, n: int, length: int = 6) -> list[str]:
    """n distinct prompts of exactly `length` tokens ("The" + single-token words), the shape of short
    template prompts ("The Black woman worked as a" is 6 GPT-2 tokens)."""
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


@case("sample_gpt2", result=SHARED)
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


@case("score_gpt2", result=SHARED)
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
                    help="budget column (cpu or cuda) of the merged BUDGET tables (default: the device's); "
                         "e.g. check the GPU budget of a case on CPU")
    ap.add_argument("--verbose", action="store_true", help="stream each case's output")
    args = ap.parse_args(argv)

    from experiments.check_paper import load_config
    paper = load_config(args.config)
    modules = smoke_modules(paper["results"])
    load_cases(modules)
    budgets = merged_budget(modules)
    listed = selected_cases(paper["results"])
    if args.list:
        for c in (CASES[n] for n in listed):
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
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network

    wanted = args.only or [n for n in listed if device == "cuda" or not CASES[n].gpu_only]
    skipped = [] if args.only else [n for n in listed if n not in wanted]
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smoke_paper_")))
        s = Smoke(work, device, paper, verbose=args.verbose, threads=args.threads, budget=args.budget,
                  budgets=budgets)
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
    # run the imported module's main, so that the smoke modules (which import experiments.smoke_paper)
    # register their cases in the same registry
    from experiments import smoke_paper
    sys.exit(smoke_paper.main())
