"""Fine-tune a trained GPT-2-architecture model while its LayerNorms are removed on a schedule.

--mode ln_free: every LN becomes a FakeLayerNorm (real mode, sigma tracked by EMA) and the removal schedule
(schedule.py: ln_2 block by block -> ln_1 Q/K -> ln_1 V -> ln_f [-> bos]) freezes them one at a time while
training continues, with an optional auxiliary loss that makes the per-token std of the ln_f input uniform
(Baroni et al.: w * mean_t (sigma_t - mean sigma)^2 over tokens that are neither position 0 nor EOT, mean
detached). The result is exported as a plain GPT2LMHeadModel whose LayerNorms have eps = 1e12 and weight
w * 1e6 / sigma (the papers' export), so any loader reads it.
--mode with_ln: the control, same steps and data, LN kept, no aux loss.

Writes: the model dir (+ ln_removal.json: sigmas, events, seconds, export check), the loss curve (long format:
one row per step with the schedule stage; train_loss_nats includes the aux term, train_ce_nats and aux_loss
split it; val_loss_nats is CE only), the events table (step of each removal event).
Checkpoints go to --checkpoint-dir; a killed run resumes there and replays the fired events.

CLI: python -m experiments.ln_removal.remove --model dir:resources/tinystories/models/w128_l2_s0 \
        --model-id w128_l2_s0 --mode ln_free --train train.npy --val val.npy \
        --train-config '{"max_steps": 300, "batch_size": 4, "block_size": 256, "lr": 6e-4, ...}' \
        --schedule '{"start": 10, "gap_ln2": 2, "gap_qk": 2, "gap_v": 3, "gap_bos": 10, "pos0": false}' \
        --aux-weight 0.1 --threads 1 --checkpoint-dir DIR --out MODEL_DIR --curve curve.csv --events events.csv
"""
from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from experiments.files import atomic_dir, atomic_write_csv, atomic_write_text
from experiments.lm.arch import get_adapter
from experiments.lm.devices import pick_device
from experiments.lm.load import load_model
from experiments.lm.train import TrainConfig, train
from experiments.ln_removal.fake_norm import per_token_std
from experiments.ln_removal.schedule import RemovalSchedule, ScheduleConfig, export_ln_free, install, sigma_table
from experiments.seeding import seed_everything

MODES = ("ln_free", "with_ln")


class AuxStdLoss:
    """Next-token CE + weight * mean_t (sigma_t - sigma_bar)^2 on the ln_f input (training only).

    Also a StepHook: it records the aux term of every step (mean over micro-batches) and checkpoints that
    history, so the loss curve can show the CE part of the training loss (`train_ce_nats`) after a resume too.
    """

    def __init__(self, weight: float, eot_id: int | None):
        self.weight, self.eot_id = weight, eot_id
        self.step = 0
        self.history: dict[int, list[float]] = {}

    def before_step(self, step: int, model) -> None:
        self.step = step

    def state_dict(self) -> dict:
        return {"history": {int(k): list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict, model) -> None:
        self.history = {int(k): list(v) for k, v in state.get("history", {}).items()}

    def aux_at(self, step: int) -> float:
        vals = self.history.get(step)
        return float(np.mean(vals)) if vals else 0.0

    def __call__(self, model, x, y):
        final_input = None
        if self.weight > 0 and model.training:
            ad = get_adapter(model)
            final_input = f"blocks.{ad.n_layers - 1}.hook_resid_post"  # the residual the final norm reads
            with ad.hooks(names=[final_input], detach=False) as cache:  # keep the graph: the aux term trains
                logits = model(input_ids=x).logits
        else:
            logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
        if final_input is not None:
            std = per_token_std(cache[final_input].float(), 1e-5)[..., 0]  # (B, T)
            mask = torch.ones_like(std, dtype=torch.bool)
            mask[:, 0] = False
            if self.eot_id is not None:
                mask &= x != self.eot_id
            if mask.any():
                aux = ((std - std[mask].mean().detach()) ** 2)[mask].mean()
                self.history.setdefault(self.step, []).append(float(aux.detach()))
                loss = loss + self.weight * aux
        return loss


def run(model, tok, model_id: str, mode: str, train_ids, val_ids, cfg: TrainConfig, sched_cfg: ScheduleConfig,
        aux_weight: float, checkpoint_dir: str, progress: bool = True):
    """Fine-tune in place; returns (curve DataFrame, events DataFrame, schedule or None)."""
    n_layers = get_adapter(model).n_layers
    hooks, schedule, loss_fn = (), None, AuxStdLoss(0.0, None)
    if mode == "ln_free":
        schedule = RemovalSchedule(sched_cfg, n_layers)
        if schedule.last_step >= cfg.max_steps:
            raise ValueError(f"schedule ends at step {schedule.last_step} but max_steps = {cfg.max_steps}: "
                             "raise max_steps or shorten the schedule")
        install(model, sched_cfg)
        loss_fn = AuxStdLoss(aux_weight, tok.eos_token_id if tok is not None else None)
        hooks = (schedule, loss_fn)
    elif mode != "with_ln":
        raise ValueError(f"mode {mode!r} not in {MODES}")
    curve = train(model, train_ids, val_ids, cfg, checkpoint_dir, hooks=hooks, loss_fn=loss_fn, progress=progress,
                  desc=f"{model_id} {mode}")
    curve.insert(0, "model_id", model_id)
    curve.insert(1, "mode", mode)
    curve.insert(2, "max_steps", cfg.max_steps)
    curve["stage"] = [schedule.stage_at(s - 1) if schedule else "with_ln" for s in curve["step"]]
    curve["aux_loss"] = [loss_fn.aux_at(s - 1) for s in curve["step"]]  # row `step` = after optimiser step s-1
    curve["train_ce_nats"] = curve["train_loss_nats"] - loss_fn.weight * curve["aux_loss"]
    if schedule:
        ev = pd.DataFrame([dict(model_id=model_id, event=e.name, kind=e.kind,
                                layer=-1 if e.layer is None else e.layer, step=e.step,
                                fired_at=schedule.fired_at.get(e.name, -1)) for e in schedule.events])
    else:
        ev = pd.DataFrame(columns=["model_id", "event", "kind", "layer", "step", "fired_at"])
    return curve, ev, schedule


def main(argv: list[str] | None = None) -> None:
    from experiments.cli import add_training_output_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model spec, e.g. dir:PATH or hub:gpt2")
    ap.add_argument("--model-id", required=True)
    ap.add_argument("--mode", choices=MODES, default="ln_free")
    ap.add_argument("--train", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--train-config", required=True, help="JSON of TrainConfig fields (max_steps included)")
    ap.add_argument("--max-steps", type=int, default=None, help="override max_steps (data-scaling runs)")
    ap.add_argument("--schedule", default="{}", help="JSON of ScheduleConfig fields")
    ap.add_argument("--aux-weight", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    add_training_output_args(ap)
    ap.add_argument("--events", required=True)
    args = ap.parse_args(argv)

    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    opts = json.loads(args.train_config)
    if args.max_steps is not None:
        opts["max_steps"] = args.max_steps
    cfg = TrainConfig.from_dict({**opts, "seed": args.seed, "threads": args.threads})
    sched_cfg = ScheduleConfig.from_dict(json.loads(args.schedule))
    model, tok = load_model(args.model, device=device)
    model.config.use_cache = False
    train_ids = np.load(args.train, mmap_mode="r")
    val_ids = np.load(args.val, mmap_mode="r")
    curve, ev, schedule = run(model, tok, args.model_id, args.mode, train_ids, val_ids, cfg, sched_cfg,
                              args.aux_weight, args.checkpoint_dir)

    info = dict(model_id=args.model_id, mode=args.mode, base=args.model, train_config={**vars(cfg),
                "betas": list(cfg.betas)}, schedule=vars(sched_cfg), aux_weight=args.aux_weight,
                tokens=cfg.max_steps * cfg.tokens_per_step, seconds=float(curve["seconds"].iloc[-1]))
    if schedule is not None:
        missing = [e.name for e in schedule.events if e.name not in schedule.fired]
        if missing:
            raise RuntimeError(f"events never fired: {missing}")
        info["sigmas"] = sigma_table(model)
        ids = torch.from_numpy(np.asarray(val_ids[: 4 * 64], dtype=np.int64).reshape(4, 64)).to(device)
        with torch.no_grad():
            before = model(input_ids=ids).logits
        export_ln_free(model)
        with torch.no_grad():
            info["export_max_abs_logit_diff"] = float((model(input_ids=ids).logits - before).abs().max())
        print(f"export check: max |logit(fake) - logit(exported)| = {info['export_max_abs_logit_diff']:.2e}")
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_text(f"{tmp}/ln_removal.json", json.dumps(info, indent=2))
    atomic_write_csv(curve, args.curve, allow_nan=["val_loss_nats"])
    atomic_write_csv(ev, args.events)
    shutil.rmtree(args.checkpoint_dir, ignore_errors=True)
    last = curve["val_loss_nats"].dropna()
    print(f"{args.model_id} {args.mode}: final val loss {last.iloc[-1]:.4f} nats; {info['seconds']:.1f} s")


if __name__ == "__main__":
    main()
