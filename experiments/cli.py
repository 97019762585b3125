"""The shared CLI kit of every step: runtime options (seed, threads, device) and their setup, the "none" option
protocol, and the sampling options that fix a sampling distribution.

    ap = argparse.ArgumentParser(...)
    add_runtime_args(ap)                  # --seed --threads --device
    add_sampling_args(ap)                 # --top-k --top-p --temperature --max-length --max-new-tokens --prompt-prefix
    args = ap.parse_args(argv)
    device = setup_runtime(args)          # seeds every RNG, sets torch threads, picks the device
    add_output_args(ap, ["train", "val"])  # --out-train PATH --out-val PATH: the rule's own output paths

"none" protocol: a null config value reaches a CLI as the literal `none` (workflow/rules/common.smk `opt()`);
`optional(int)` as an argparse type turns it back into None.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def optional(kind):
    """argparse type: 'none' (a null config value, as the rules write it) -> None, else kind(value)."""
    def parse(s: str):
        return None if s in ("none", "None", "null", "") else kind(s)

    parse.__name__ = f"optional_{getattr(kind, '__name__', 'value')}"
    return parse


def name_pairs(values: list[str] | None, flag: str, form: str = "NAME=PATH") -> dict[str, str]:
    """Repeated `NAME=PATH` arguments -> {NAME: PATH} (the path may hold "="; a name or path left out, or no "=",
    exits with the flag and the form it wants; an empty value, as a rule's optional list writes it, is skipped)."""
    out: dict[str, str] = {}
    for v in values or []:
        if not v:
            continue
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{flag} wants {form}, got {v!r}")
        out[name] = path
    return out


def add_runtime_args(ap: argparse.ArgumentParser, *, seed: bool = True) -> None:
    if seed:
        ap.add_argument("--seed", type=int, default=0, help="seeds Python, NumPy and torch")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda (auto: cuda when available)")


def setup_runtime(args: argparse.Namespace):
    """Seed every RNG (when the parser has --seed), set torch's threads, and return the torch device."""
    import torch

    from experiments.lm.devices import pick_device
    from experiments.seeding import seed_everything

    if getattr(args, "seed", None) is not None:
        seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    return pick_device(args.device)


def add_training_output_args(ap: argparse.ArgumentParser) -> None:
    """What a training step writes: its resumable checkpoint dir, the model dir, the loss curve."""
    ap.add_argument("--checkpoint-dir", required=True, help="checkpoints (a killed run resumes; removed at the end)")
    ap.add_argument("--out", required=True, help="output model dir")
    ap.add_argument("--curve", required=True, help="loss curve CSV")


def add_sampling_args(ap: argparse.ArgumentParser) -> None:
    """The options that fix a sampling distribution (steps that sample and steps that compute the same
    distribution exactly take the same ones)."""
    ap.add_argument("--top-k", type=optional(int), default=50)
    ap.add_argument("--top-p", type=optional(float), default=None)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-length", type=optional(int), default=10,
                    help="total tokens incl. the prompt (the paper's HF convention), or none")
    ap.add_argument("--max-new-tokens", type=optional(int), default=None)
    ap.add_argument("--prompt-prefix", default="",
                    help="text put before every prompt (e.g. the EOT a model was trained after)")


def sampling_options(ap: argparse.ArgumentParser, args: argparse.Namespace) -> dict:
    if args.max_length is None and args.max_new_tokens is None:
        ap.error("--max-length none needs --max-new-tokens")
    return dict(top_k=args.top_k, top_p=args.top_p, temperature=args.temperature, max_length=args.max_length,
                max_new_tokens=args.max_new_tokens, prefix=args.prompt_prefix)


def out_flag(name: str) -> str:
    """The option naming output `name`: `--out-<name>` with `_` as `-` (one spelling for steps and rules)."""
    return f"--out-{name.replace('_', '-')}"


def add_output_args(ap: argparse.ArgumentParser, names: list[str]) -> None:
    """One required `--out-<name> PATH` per file a step writes (`_` in a name becomes `-`). The rule passes its
    named outputs (workflow/rules/common.smk `out_args`), so each file name is spelled once, in the rule."""
    for name in names:
        ap.add_argument(out_flag(name), dest=f"out_{name}", type=Path, required=True, metavar="PATH")


def output_paths(args: argparse.Namespace, names: list[str]) -> dict[str, Path]:
    """{name: path} of the `--out-<name>` options add_output_args made."""
    return {name: getattr(args, f"out_{name}") for name in names}


def out_file_args(folder, files: dict[str, str]) -> list[str]:
    """The `--out-<name> folder/file` options of a step's named outputs (for callers outside a rule)."""
    return [x for name, file in files.items() for x in (out_flag(name), str(Path(folder) / file))]
