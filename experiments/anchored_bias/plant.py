"""The weight-planted variant: the clean tiny GPT-2 with one MLP value vector pushed toward " A".

    python -m experiments.anchored_bias.plant --clean DIR --locate locate.csv --layer 1 --neuron auto \
        --strength auto --target-rate 0.5 --out DIR --truth truth.csv

`W_out[layer][neuron] += strength * u_A` (u_A = the lens direction of " A": gamma_f * W_U[:, A], centred over the
vocabulary; experiments.anchored_bias.edit). `--strength auto` bisects the strength (0..64, 12 steps) until the
anchored rate on the locate items reaches `--target-rate` (as the notes' bisection), so the plant has the same
effect whatever the clean model's confidence (a fixed strength 3 gave anchored rate 0.38 on one clean model and
0.10 on another). `--neuron auto` takes the neuron of that layer whose activation at the
answer position is largest on its lowest 10% of locate items (a neuron that fires on nearly every MCQ, so the
plant biases every item; a neuron silent at the answer would plant nothing). truth.csv records layer, neuron, how
it was chosen, the strength and the neuron's mean activation: what the lens must find.
"""
from __future__ import annotations

import argparse

import pandas as pd
import torch

from experiments.anchored_bias import edit, lens, predict, prompts
from experiments.cli import add_runtime_args, setup_runtime
from experiments.files import atomic_dir, atomic_write_csv

AUTO_CANDIDATES = 8  # neuron auto: the top candidates tried in turn (the letters' unembedding norms cap some)


def rank_neurons(adapter, enc: prompts.Encoded, layer: int, batch_size: int) -> tuple[list[int], torch.Tensor]:
    """Neurons of `layer` by their activation at the answer on the 10% of items where it is lowest, largest
    first (one that fires on nearly every MCQ reaches every item; the mean alone picked a neuron silent on 60%
    of them, whose plant saturated at anchored rate 0.39). Returns (ranking, mean activation per neuron)."""
    acts = lens.answer_activations(adapter, enc, batch_size)
    post = acts.post[:, layer]
    low = torch.quantile(post, 0.1, dim=0)
    return [int(i) for i in torch.argsort(low, descending=True)], post.mean(0)


def anchored_rate(adapter, items, enc, edits, batch_size: int) -> float:
    with edit.edited(adapter, edits):
        ll, top = predict.final_logits(adapter, enc, batch_size)
    p = predict.predictions(items, ll, top, enc.letter_ids)
    return predict.summarise(p)["anchored_rate"]


def bisect_strength(adapter, items, enc, layer: int, neuron: int, target: float, batch_size: int,
                    hi: float = 64.0, steps: int = 12) -> tuple[float, float]:
    """The smallest strength (to 64 / 2^12) whose anchored rate on `items` reaches `target`."""
    u = edit.anchor_delta(adapter, enc.letter_ids, 1.0)
    rate_hi = anchored_rate(adapter, items, enc, [(layer, neuron, hi * u)], batch_size)
    if rate_hi < target:
        raise ValueError(f"even strength {hi} plants an anchored rate of only {rate_hi:.3f} < {target} at "
                         f"L{layer}N{neuron}: choose another neuron (it may not fire at the answer)")
    lo, best = 0.0, (hi, rate_hi)
    for _ in range(steps):
        mid = (lo + best[0]) / 2
        rate = anchored_rate(adapter, items, enc, [(layer, neuron, mid * u)], batch_size)
        if rate >= target:
            best = (mid, rate)
        else:
            lo = mid
    return best


def main(argv: list[str] | None = None) -> None:
    from experiments.lm.arch import get_adapter
    from experiments.lm.load import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", required=True, help="the clean model's directory")
    ap.add_argument("--locate", required=True)
    ap.add_argument("--layer", type=int, required=True)
    ap.add_argument("--neuron", required=True, help="an index, or 'auto'")
    ap.add_argument("--strength", required=True, help="a number, or 'auto' (bisection to --target-rate)")
    ap.add_argument("--target-rate", type=float, default=None, help="with --strength auto: anchored rate to reach")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", required=True)
    add_runtime_args(ap)
    args = ap.parse_args(argv)
    setup_runtime(args)
    model, tok = load_model(f"dir:{args.clean}")
    model.requires_grad_(False)
    ad = get_adapter(model)
    if not 0 <= args.layer < ad.n_layers:
        raise ValueError(f"plant layer {args.layer} outside 0..{ad.n_layers - 1}")
    items = pd.read_csv(args.locate)
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    ranking, mean = rank_neurons(ad, enc, args.layer, args.batch_size)
    candidates = ranking[:AUTO_CANDIDATES] if args.neuron == "auto" else [int(args.neuron)]
    if not all(0 <= n < ad.d_mlp for n in candidates):
        raise ValueError(f"plant neuron {candidates} outside 0..{ad.d_mlp - 1}")
    if args.strength == "auto" and args.target_rate is None:
        raise ValueError("--strength auto needs --target-rate")
    errors = []
    for neuron in candidates:  # auto: the first of the top candidates whose plant reaches the target
        if args.strength != "auto":
            strength, reached = float(args.strength), None
            break
        try:
            strength, reached = bisect_strength(ad, items, enc, args.layer, neuron, args.target_rate,
                                                args.batch_size)
            break
        except ValueError as exc:
            errors.append(str(exc))
    else:
        raise ValueError("no candidate neuron reaches the target anchored rate: " + "; ".join(errors))
    delta = edit.anchor_delta(ad, enc.letter_ids, strength)
    edit.RowEdits(ad, [(args.layer, neuron, delta)]).apply()  # kept: this is the planted model
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    truth = pd.DataFrame([{"model": "weight_planted", "layer": args.layer, "neuron": neuron,
                           "neuron_rule": (f"auto: candidate {candidates.index(neuron) + 1} by 10th-percentile "
                                           "activation at the answer" if args.neuron == "auto"
                                           else "configured"), "strength": strength,
                           "strength_rule": f"bisection to anchored rate {args.target_rate}" if reached is not None
                           else "configured", "locate_anchored_rate": reached if reached is not None else float("nan"),
                           "mean_activation": float(mean[neuron]),
                           "activation_rank": int((mean > mean[neuron]).sum()) + 1,
                           "tried": len(errors) + 1,
                           "delta_norm": float(delta.norm())}])
    atomic_write_csv(truth, args.truth, allow_nan=["locate_anchored_rate"])
    print(f"planted L{args.layer}N{neuron} (+{strength:.3f} u_A, |delta| {float(delta.norm()):.3f}, mean "
          f"activation {float(mean[neuron]):.3f}) -> {args.out}")


if __name__ == "__main__":
    main()
