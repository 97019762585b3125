"""Isotropy of one model on each of its languages' texts, at every layer, with and without position 0.

    python -m experiments.anisotropy.measure --models '[{"id": "smollm2_135m", "label": "SmolLM2-135M-Instruct",
        "spec": "dir:resources/models/smollm2-135m-instruct", "kind": "pretrained", "langs": ["en", "de"]},
        {"id": "tiny_de", "label": "tiny GPT-2 trained here on de", "spec": "dir:resources/anisotropy/models/de",
         "kind": "trained_here", "langs": ["de"], "variants": ["trained", "random_init"]}]' \
        --texts en=.../en/eval.jsonl de=... --status en=.../status.json de=... \
        --max-tokens 64 --bos auto --layers all --batch-size 8 --bootstrap 1000 --seed 0 --out isotropy.csv
    # variant random_init: the trained model's twin (same build, same seed, no training step)

Per (variant, language, layer, exclude_first): the pooled self-similarity (the paper's number) and the
per-sequence mean (labelled `measure`), isotropy = 1 - self-similarity, and 95% percentile-bootstrap CIs over
texts (experiments.anisotropy.isotropy). Texts are tokenised as the paper's code does (experiments.anisotropy.
represent.encode, BOS per family; `--bos auto`), cut to max_tokens; texts with fewer than 2 tokens are dropped
(they contribute 0 pairs; the count is kept). Layers: `resid_pre.l` (l = 0 embeddings ... n_layers = the final
residual before the norm) and `final_norm` (HF hidden_states[-1], the paper's layer). A language whose texts
are missing gets one row with its status note ("not run: missing data ...") and no numbers.

Sanity: on the first `--check-texts` texts the final-norm self-similarity from padded batches is compared with
batch size 1 (rows with measure = batch1_max_abs_diff).

The random-init twin reads the trained model's training.json (arch, shape, seed) and tokenizer and rebuilds it as
`experiments.lm.train` did before its first step: seed_everything(seed), then build_model; so its weights are
the trained model's initial weights.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.anisotropy.isotropy import FINAL, KINDS
from experiments.anisotropy.texts import read_jsonl, read_status
from experiments.cli import add_runtime_args, name_pairs, setup_runtime
from experiments.files import atomic_write_csv

VARIANT_KIND = {"trained": None, "random_init": "random_init"}
COLUMNS = ["model_id", "model_label", "model_kind", "family", "variant", "lang", "layer", "depth", "n_layers",
           "exclude_first", "measure", "self_similarity", "isotropy", "ci_low", "ci_high", "n_texts",
           "n_dropped_texts", "n_tokens", "n_pairs", "max_tokens", "bos", "dtype", "status"]


def random_init_twin(model_dir: str | Path):
    """The untrained twin of a model trained by experiments.lm.train: same build, same seed, no step."""
    from experiments.lm.build import build_model
    from experiments.lm.tokenizer import load_tokenizer
    from experiments.seeding import seed_everything

    meta = json.loads((Path(model_dir) / "training.json").read_text())
    tok = load_tokenizer(model_dir)
    seed_everything(int(meta["seed"]))
    model = build_model(meta["arch"], vocab_size=len(tok), eos_id=tok.eos_token_id, **meta["shape"])
    return model.eval(), tok


def depth_of(label: str, n_layers: int) -> int:
    """resid_pre.l -> l; final_norm -> n_layers + 1 (after the final residual)."""
    return n_layers + 1 if label == FINAL else int(label.split(".")[1])


def _rows(accs: dict, base: dict, n_layers: int, n_boot: int, seed: int) -> list[dict]:
    rows = []
    for (label, ex), acc in accs.items():
        for kind in KINDS:
            lo, hi = acc.isotropy_ci(kind, n_boot=n_boot, seed=seed)
            value = acc.value(kind)
            rows.append({**base, "layer": label, "depth": depth_of(label, n_layers), "n_layers": n_layers,
                         "exclude_first": ex, "measure": kind, "self_similarity": value, "isotropy": 1.0 - value,
                         "ci_low": lo, "ci_high": hi, "n_texts": acc.n_sequences,
                         "n_tokens": int(acc.tokens.sum()), "n_pairs": int(acc.pairs.sum()), "status": "measured"})
    return rows


def batch1_check(model, seqs, batch_size: int, pad_id: int) -> float:
    """max |pooled self-similarity (padded batches) - (batch size 1)| at the final norm, per text."""
    from experiments.anisotropy.represent import self_similarity_by_layer

    a = self_similarity_by_layer(model, seqs, layers="final", batch_size=batch_size, pad_id=pad_id)[FINAL, False]
    b = self_similarity_by_layer(model, seqs, layers="final", batch_size=1, pad_id=pad_id)[FINAL, False]
    ka, kb = a.pairs > 0, b.pairs > 0
    return float(np.max(np.abs(a.sums[ka] / a.pairs[ka] - b.sums[kb] / b.pairs[kb]))) if ka.any() else 0.0


def measure_model(model, tok, texts: dict[str, list[str]], notes: dict[str, str], *, base: dict, max_tokens: int,
                  bos: str, layers: str, batch_size: int, n_boot: int, seed: int, check_texts: int) -> list[dict]:
    from experiments.anisotropy.represent import encode, family_bos, layer_labels, self_similarity_by_layer
    from experiments.lm.arch import get_adapter
    from experiments.lm.sample import pad_id_of

    adapter = get_adapter(model)
    bos = family_bos(adapter.family) if bos == "auto" else bos
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    n_layers = adapter.n_layers
    base = {**base, "family": adapter.family, "max_tokens": max_tokens, "bos": bos, "dtype": dtype}
    rows = []
    for lang, items in texts.items():
        if notes.get(lang):
            rows.append({**base, "lang": lang, "status": notes[lang], "n_texts": 0})
            continue
        seqs = encode(tok, items, max_tokens=max_tokens, bos=bos)
        kept = [s for s in seqs if len(s) >= 2]
        accs = self_similarity_by_layer(model, kept, layers=layer_labels(n_layers, layers),
                                        exclude_first=(False, True), batch_size=batch_size, pad_id=pad_id_of(tok))
        lang_base = {**base, "lang": lang, "n_dropped_texts": len(seqs) - len(kept)}
        rows += _rows(accs, lang_base, n_layers, n_boot, seed)
        if check_texts:
            diff = batch1_check(model, kept[:check_texts], batch_size, pad_id_of(tok))
            rows.append({**lang_base, "layer": FINAL, "depth": n_layers + 1, "n_layers": n_layers,
                         "exclude_first": False, "measure": "batch1_max_abs_diff", "self_similarity": diff,
                         "n_texts": min(check_texts, len(kept)), "status": "measured"})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True,
                    help='JSON list of {"id", "label", "spec", "kind": pretrained | trained_here, "langs": [...], '
                         '"variants": ["trained", "random_init"] (default ["trained"])}; one job, one start-up')
    ap.add_argument("--texts", nargs="+", required=True, help="LANG=eval.jsonl per language")
    ap.add_argument("--status", nargs="+", required=True, help="LANG=status.json per language")
    ap.add_argument("--max-tokens", type=int, required=True)
    ap.add_argument("--bos", default="auto", help="auto (the paper's per family) | none | prepend | tokenizer")
    ap.add_argument("--layers", default="all", choices=["all", "final"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--check-texts", type=int, default=4, help="texts of the padded-vs-batch-1 check (0: off)")
    ap.add_argument("--dtype", default=None, help="compute dtype (default float32)")
    ap.add_argument("--out", required=True)
    add_runtime_args(ap)
    args = ap.parse_args(argv)
    device = setup_runtime(args)

    from experiments.lm.load import load_model

    paths = name_pairs(args.texts, "--texts", "LANG=PATH")
    status = name_pairs(args.status, "--status", "LANG=PATH")
    notes = {lang: ("" if (s := read_status(status[lang]))["available"] else s["note"]) for lang in paths}
    texts = {lang: [r["text"] for r in read_jsonl(p)] for lang, p in paths.items()}
    rows = []
    for m in json.loads(args.models):
        missing = [lang for lang in m["langs"] if lang not in paths]
        if missing:
            raise ValueError(f"{m['id']}: no --texts for {missing}")
        for variant in m.get("variants", ["trained"]):
            if variant == "random_init":
                if not m["spec"].startswith("dir:"):
                    raise ValueError(f"{m['id']}: a random-init twin needs a model trained here (a dir: spec)")
                model, tok = random_init_twin(m["spec"].split(":", 1)[1])
                model.to(device)
                label, kind, mid = f"random-init twin of {m['label']}", "random_init", f"{m['id']}_random_init"
            else:
                model, tok = load_model(m["spec"], dtype=args.dtype, device=device)
                label, kind, mid = m["label"], m["kind"], m["id"]
            base = dict(model_id=mid, model_label=label, model_kind=kind, variant=variant)
            rows += measure_model(model, tok, {lang: texts[lang] for lang in m["langs"]}, notes, base=base,
                                  max_tokens=args.max_tokens, bos=m.get("bos", args.bos), layers=args.layers,
                                  batch_size=args.batch_size, n_boot=args.bootstrap, seed=args.seed,
                                  check_texts=args.check_texts)
            del model
    df = pd.DataFrame(rows).reindex(columns=COLUMNS)
    atomic_write_csv(df, args.out, allow_nan=["self_similarity", "isotropy", "ci_low", "ci_high", "depth",
                                              "n_layers", "n_tokens", "n_pairs", "n_dropped_texts"])
    fin = df[(df.layer == FINAL) & (df.measure == "pooled") & (df.exclude_first == False)]  # noqa: E712
    for r in fin.itertuples():
        print(f"{r.model_id} {r.lang}: isotropy {r.isotropy:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
              f"({r.n_texts} texts, {r.n_tokens} tokens)")
    for r in df[df.status != "measured"].itertuples():
        print(f"{r.model_id} {r.lang}: {r.status}")


if __name__ == "__main__":
    main()
