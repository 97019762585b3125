"""Fine-tune a target model on the training records: undefended, scrubbed or DP (the paper's four defenses are
this step on two inputs x two privacy settings).

Input is an EOT-separated text file of records, one record per document: the world's train.txt (undefended, DP)
or experiments.pii_leakage.scrub's output (scrubbed, DP + scrubbed). Each record is tokenised on its own by the
base model's tokenizer and trained as one row after a BOS, ending with EOS (experiments.lm.finetune_records: the
unit of privacy is a record). The target's input and output embeddings are untied for every defense: opacus'
per-sample gradients need unshared parameters, and an undefended target with tied embeddings would differ from its
DP twin in more than DP. The paper's schedule: AdamW, lr linear decay, 4 epochs, batch 32 (DP 64), delta 1/N.

Writes the model dir (weights, tokenizer, training.json: the train config, steps, sigma, epsilon spent by the RDP
and PRV accountants, the number of records and of record tokens) and the loss curve (one row per step). A killed
run resumes from its checkpoint dir (removed at the end).

CLI:
    python -m experiments.pii_leakage.finetune --base dir:resources/pii_leakage/base --text train.txt \\
        --train-config '{"epochs": 4, "batch_size": 32, "lr": 5e-4, "dp_epsilon": null}' --seed 0 --threads 1 \\
        --checkpoint-dir DIR --out MODEL_DIR --curve curve.csv
"""
from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import asdict, fields

import torch

from experiments.lm.finetune_records import RecordTrainConfig
from experiments.options import check_known


def config_from_json(text: str, seed: int) -> RecordTrainConfig:
    d = json.loads(text)
    check_known(RecordTrainConfig, d, "record fine-tuning")
    return RecordTrainConfig(**{**d, "seed": seed})


def untie_embeddings(model) -> None:
    """Give the LM head its own copy of the token embedding (a no-op for a model already untied)."""
    head, emb = model.get_output_embeddings(), model.get_input_embeddings()
    if head.weight.data_ptr() == emb.weight.data_ptr():
        head.weight = torch.nn.Parameter(emb.weight.detach().clone())
    model.config.tie_word_embeddings = False


def encode_records(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each record's tokens followed by EOS (the model learns where a record ends: an extraction sample started
    from BOS is then one record)."""
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    empty = [i for i, r in enumerate(ids) if not r]
    if empty:
        raise ValueError(f"records {empty[:5]} encode to no tokens")
    return [r + [tokenizer.eos_token_id] for r in ids]


def main(argv: list[str] | None = None) -> None:
    from experiments.cli import add_runtime_args, add_training_output_args, setup_runtime
    from experiments.files import atomic_dir, atomic_write_csv, atomic_write_text
    from experiments.lm.finetune_records import finetune_records
    from experiments.lm.load import load_model
    from experiments.lm.sample import pad_id_of
    from experiments.lm.tokenizer import iter_documents

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="model spec of the public base model, e.g. dir:PATH")
    ap.add_argument("--text", required=True, help="EOT-separated records (experiments.lm.tokenizer.iter_documents)")
    ap.add_argument("--train-config", required=True,
                    help=f"JSON of RecordTrainConfig fields: {[f.name for f in fields(RecordTrainConfig)]}")
    add_runtime_args(ap)
    add_training_output_args(ap)
    args = ap.parse_args(argv)
    device = setup_runtime(args)
    cfg = config_from_json(args.train_config, args.seed)
    model, tok = load_model(args.base, device=device, attn_implementation="sdpa")
    untie_embeddings(model)
    texts = [t for t in iter_documents(args.text) if t.strip()]
    records = encode_records(tok, texts)
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    kind = "DP epsilon %g" % cfg.dp_epsilon if cfg.dp_epsilon is not None else "no DP"
    print(f"fine-tuning {args.base} on {len(records)} records ({sum(map(len, records))} tokens with EOS), {kind}, "
          f"{cfg.steps(len(records))} steps", flush=True)
    curve, meta = finetune_records(model, records, cfg, args.checkpoint_dir, bos_id=bos, pad_id=pad_id_of(tok),
                                   desc=f"finetune {kind}")
    meta.update(train_config=asdict(cfg), base=args.base, record_tokens=sum(map(len, records)) - len(records),
                seconds=float(curve["seconds"].iloc[-1]))
    with atomic_dir(args.out) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        atomic_write_text(f"{tmp}/training.json", json.dumps(meta, indent=2))
    atomic_write_csv(curve, args.curve, allow_nan=["train_loss_nats"])
    shutil.rmtree(args.checkpoint_dir, ignore_errors=True)
    eps = "".join(f", epsilon {k} {meta[k]:.3f}" for k in ("epsilon_rdp", "epsilon_prv") if k in meta)
    print(f"final train loss {curve['train_loss_nats'].dropna().iloc[-1]:.4f} nats{eps}; "
          f"{meta['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
