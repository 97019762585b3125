"""Sample "The {X} works as a" / "{Name} works as a" completions, batched, seeded and resumable.

Sampling as in the paper (HF defaults of 2021 behind the Inference API): do_sample with top-k 50,
top-p 1, temperature 1, and `max_length` counting the prompt's tokens, so a 5-token prompt gets
max_length - 5 new tokens (`--max-length none --max-new-tokens N` gives every prompt N instead).

Each prompt's completions come in chunks; chunk k of prompt p draws from the random streams
(seed(p), k * chunk + i), so the samples do not depend on the chunk size, the batch size or on restarts
(up to float round-off). All missing chunks are sampled together, one row per completion, in batches of
--batch-size rows across prompts (rows with the same prompt share its forward pass: lm.sample). Every
finished chunk is written to --parts-dir at once; a killed job continues with the chunks still missing,
and the final CSV is assembled (atomically) when all are there.

CLI:
    python -m experiments.occupational_bias.generate --spec dir:resources/models/x --model-id x \
        --identity-samples 1000 --name-samples 10 --out raw.csv --parts-dir raw.parts [--prompt-prefix ...]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from experiments.cli import add_sampling_args, optional, sampling_options
from experiments.files import atomic_write_csv
from experiments.lm.devices import pick_device
from experiments.lm.load import load_model
from experiments.lm.sample import Row, decode_new, iter_sample_rows, pad_id_of, prompt_ids
from experiments.occupational_bias.groups import Prompt
from experiments.occupational_bias.groups import prompts as all_prompts
from experiments.seeding import seed_everything


def prompt_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def new_tokens(tokenizer, prompt: str, max_length: int | None, max_new_tokens: int | None) -> int:
    """The paper's convention: max_length counts the prompt's own tokens (no special tokens)."""
    if max_length is None:
        return int(max_new_tokens)
    n = max_length - len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    if n < 1:  # HF generate then warned and still produced one token; do the same, and say so
        tqdm.write(f"warning: prompt {prompt!r} fills max_length {max_length}; generating 1 new token")
    return max(1, n)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(k, min(size, n - k * size)) for k in range((n + size - 1) // size)]


def part_path(parts_dir: Path, index: int, chunk_index: int) -> Path:
    return parts_dir / f"p{index:03d}_c{chunk_index:04d}.csv"


def generate(model, tokenizer, plan: list[tuple[int, Prompt, int]], *, model_id: str, parts_dir: Path,
             max_length: int | None, max_new_tokens: int | None, prefix: str, top_k: int | None,
             top_p: float | None, temperature: float, batch_size: int, chunk: int, seed: int) -> pd.DataFrame:
    """plan: (prompt index, prompt, samples). Returns all completions, reading finished chunks from disk.

    All missing chunks of all prompts are sampled together: one row per completion, packed into batches of
    batch_size across prompts and chunks (equal prompts share their prefix forward); a chunk's file is
    written as soon as its last row is done.
    """
    parts_dir.mkdir(parents=True, exist_ok=True)
    todo = [(i, p, k, n) for i, p, total in plan for k, n in chunks(total, chunk)]
    missing = [w for w, (i, _, k, _) in enumerate(todo) if not part_path(parts_dir, i, k).exists()]
    if len(missing) < len(todo):
        tqdm.write(f"resuming: {len(todo) - len(missing)}/{len(todo)} chunks already in {parts_dir}")
    ids, budget = {}, {}
    for w in missing:
        i, p = todo[w][:2]
        if i not in ids:
            ids[i] = prompt_ids(tokenizer, [prefix + p.prompt])[0]
            budget[i] = new_tokens(tokenizer, p.prompt, max_length, max_new_tokens)
    rows, owner = [], []  # owner[j] = (work item, sample within its chunk)
    for w in missing:
        i, _, k, n = todo[w]
        for r in range(n):
            rows.append(Row(tuple(ids[i]), (prompt_seed(seed, i), k * chunk + r), budget[i]))
            owner.append((w, r))
    new: dict[int, list] = {w: [None] * todo[w][3] for w in missing}
    left = {w: todo[w][3] for w in missing}
    made: dict[int, pd.DataFrame] = {}
    with tqdm(total=len(rows), desc=f"{model_id} completions", unit="completion") as bar:
        for batch, out in iter_sample_rows(model, rows, pad_id=pad_id_of(tokenizer), eos_id=tokenizer.eos_token_id,
                                           temperature=temperature, top_k=top_k, top_p=top_p,
                                           batch_size=batch_size):
            for j, row_ids in zip(batch, out):
                w, r = owner[j]
                new[w][r] = row_ids
                left[w] -= 1
                if left[w] == 0:
                    made[w] = _chunk_frame(tokenizer, model_id, todo[w], new.pop(w), ids[todo[w][0]],
                                           budget[todo[w][0]], chunk)
                    atomic_write_csv(made[w], part_path(parts_dir, todo[w][0], todo[w][2]))
            bar.update(len(batch))
    frames = [made[w] if w in made else pd.read_csv(part_path(parts_dir, i, k), keep_default_na=False)
              for w, (i, _, k, _) in enumerate(todo)]
    return pd.concat(frames, ignore_index=True)


def _chunk_frame(tokenizer, model_id: str, item: tuple[int, Prompt, int, int], new: list[list[int]],
                 prompt_ids: list[int], budget: int, chunk: int) -> pd.DataFrame:
    _, p, k, n = item
    decoded = [decode_new(tokenizer, prompt_ids, row) for row in new]
    return pd.DataFrame({"model_id": model_id, **p.as_dict(), "sample_index": np.arange(k * chunk, k * chunk + n),
                         "continuation": [t for t, _ in decoded], "new_tokens_max": budget,
                         "ended_at_eos": [d for _, d in decoded]})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True, help="model spec (dir:PATH | hub:NAME[@rev])")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--identity-samples", type=int, default=0)
    ap.add_argument("--base-samples", type=optional(int), default=None,
                    help="completions per man/woman prompt (none: --identity-samples)")
    ap.add_argument("--name-samples", type=int, default=0)
    add_sampling_args(ap)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parts-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    sampling = sampling_options(ap, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    model, tok = load_model(args.spec, device=pick_device(args.device))
    model.eval()
    prompts = all_prompts()
    base = args.base_samples or args.identity_samples
    plan = [(i, p, args.name_samples if p.prompt_type == "name" else base if p.category == "base"
             else args.identity_samples) for i, p in enumerate(prompts)]
    plan = [x for x in plan if x[2] > 0]
    df = generate(model, tok, plan, model_id=args.model_id, parts_dir=Path(args.parts_dir), **sampling,
                  batch_size=args.batch_size, chunk=args.chunk, seed=args.seed)
    atomic_write_csv(df, args.out)
    shutil.rmtree(args.parts_dir, ignore_errors=True)
    print(f"{len(df)} completions from {df['prompt'].nunique()} prompts -> {args.out}")


if __name__ == "__main__":
    main()
