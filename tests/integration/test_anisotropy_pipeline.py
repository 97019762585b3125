"""Anisotropy end to end on tiny inputs, every step by its CLI: texts from a fake fortunes root (en, de; ru's
package absent) -> corpus -> training (experiments.lm.train) -> isotropy of the trained models and their
random-init twins -> one table with ru's 'not run: missing data' rows -> decoding (six methods) -> metrics under
another model -> claims -> the three figures. Also: the random-init twin is exactly the trained model's start."""
import json
import shlex

import pandas as pd
import pytest
import torch

from experiments.anisotropy import claims, collect, corpus, decode, measure, metrics, texts
from experiments.anisotropy.manifest import FIGURES, claims_args
from experiments.anisotropy.measure import random_init_twin
from experiments.lm import train
from experiments.report import plot
from tests.helpers import mini_section

EN = ["The quick brown fox jumps over the lazy dog near the river bank today.",
      "A stitch in time saves nine, as my grandmother used to say every single morning.",
      "Never put off until tomorrow what you can do the day after tomorrow, said the clerk.",
      "All that glitters is not gold, and all that wander are not lost in the forest.",
      "Time flies like an arrow; fruit flies like a banana, and programmers like coffee.",
      "The early bird gets the worm, but the second mouse gets the cheese in the trap."]
DE = ["Der frühe Vogel fängt den Wurm, aber die zweite Maus bekommt den Käse heute.",
      "Wer zuletzt lacht, hat den Witz nicht verstanden, sagte der alte Lehrer lächelnd.",
      "Übung macht den Meister, doch Ölsardinen machen keinen Frühling im grünen Garten.",
      "Morgenstund hat Gold im Mund, und Blei im Hintern, wie man in Bayern gerne sagt."]


def _root(tmp_path):
    root = tmp_path / "fortunes"
    (root / "de").mkdir(parents=True)
    en = [f"{t} Number {i} of the list, with a few more words to make it long enough." for i in range(12)
          for t in EN]
    de = [f"{t} Nummer {i} der Liste, mit ein paar weiteren Wörtern für die Länge." for i in range(10) for t in DE]
    (root / "fortunes").write_text("\n%\n".join(en) + "\n%\n", encoding="utf-8")
    (root / "de" / "sprueche").write_text("\n%\n".join(de) + "\n%\n", encoding="utf-8")
    return root


SHAPE = {"d_model": 16, "n_layers": 2, "n_heads": 2, "context": 96}


def _train(tmp, lang, lr=3e-3, steps=4):
    c = tmp / "corpus" / lang
    out = tmp / "models" / f"{lang}_lr{lr}"
    train.main(["--model-id", f"tiny_gpt2_{lang}", "--arch", "gpt2", "--shape", json.dumps(SHAPE),
                "--tokenizer", str(c / "tokenizer"), "--train", str(c / "train.npy"), "--val", str(c / "val.npy"),
                "--train-config", json.dumps({"max_steps": steps, "batch_size": 2, "block_size": 32, "lr": lr,
                                              "eval_every": steps, "eval_blocks": 2, "checkpoint_every": steps}),
                "--seed", "3", "--threads", "1", "--checkpoint-dir", str(tmp / "ckpt" / f"{lang}{lr}"),
                "--out", str(out), "--curve", str(tmp / f"curve_{lang}_{lr}.csv")])
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aniso")
    tdir = tmp / "texts"
    texts.main(["--langs", "en", "de", "ru", "--source", "fortunes", "--root", str(_root(tmp)), "--seed", "0",
                "--n-eval", "8", "--n-prompts", "6", "--prompt-min-chars", "60", "--n-val", "6",
                "--min-chars", "20", "--max-chars", "1000", "--out-dir", str(tdir)])
    args = []
    for lang in ("en", "de"):
        c = tmp / "corpus" / lang
        args += ["--lang", lang, "--train", str(tdir / lang / "train.txt"), "--val", str(tdir / lang / "val.txt"),
                 "--tokenizer-out", str(c / "tokenizer"), "--train-out", str(c / "train.npy"),
                 "--val-out", str(c / "val.npy")]
    corpus.main(args + ["--vocab-size", "300"])
    models = {lang: _train(tmp, lang) for lang in ("en", "de")}
    return tmp, tdir, models


def test_texts_split_is_held_out_and_missing_language_is_explicit(run):
    _, tdir, _ = run
    parts = {k: texts.read_jsonl(tdir / "en" / f) for k, f in (("eval", "eval.jsonl"), ("prompts", "prompts.jsonl"))}
    train_docs = (tdir / "en" / "train.txt").read_text().split("\n<|endoftext|>\n")
    held = {r["text"] for r in parts["eval"] + parts["prompts"]}
    assert len(parts["eval"]) == 8 and len(parts["prompts"]) == 6
    assert not held & {d.strip() for d in train_docs}
    assert all(len(r["text"]) >= 60 for r in parts["prompts"]) and parts["eval"][0]["source_file"].endswith("fortunes")
    ru = texts.read_status(tdir / "ru" / "status.json")
    assert not ru["available"] and ru["note"].startswith("not run: missing data")
    assert texts.read_jsonl(tdir / "ru" / "eval.jsonl") == []


def test_random_init_twin_is_the_trained_models_starting_point(run):
    tmp, _, _ = run
    frozen = _train(tmp, "en", lr=0.0, steps=2)  # lr 0: AdamW leaves every weight where the build put it
    from experiments.lm.load import load_model
    trained, _ = load_model(f"dir:{frozen}")
    twin, _ = random_init_twin(frozen)
    a, b = trained.state_dict(), twin.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0, msg=k)


def test_pipeline_end_to_end(run):
    tmp, tdir, models = run
    out = tmp / "results"
    spec = [{"id": f"tiny_gpt2_{lang}", "label": f"tiny GPT-2 on {lang}", "spec": f"dir:{m}", "kind": "trained_here",
             "langs": [lang], "variants": ["trained", "random_init"]} for lang, m in models.items()]
    common = ["--texts"] + [f"{lang}={tdir / lang / 'eval.jsonl'}" for lang in ("en", "de")] + \
        ["--status"] + [f"{lang}={tdir / lang / 'status.json'}" for lang in ("en", "de")]
    measure.main(["--models", json.dumps(spec), *common, "--max-tokens", "24", "--batch-size", "3",
                  "--bootstrap", "200", "--threads", "1", "--out", str(out / "isotropy" / "tiny.csv")])
    status = [f"{lang}={tdir / lang / 'status.json'}" for lang in ("en", "de", "ru")]
    collect.main(["--measured", str(out / "isotropy" / "tiny.csv"), "--tiny-langs", "en", "de", "ru",
                  "--status", *status, "--out-all", str(out / "isotropy.csv"), "--out-final", str(out / "final.csv")])
    iso = pd.read_csv(out / "isotropy.csv")
    assert set(iso[iso.status != "measured"].model_id) == {"tiny_gpt2_ru", "tiny_gpt2_ru_random_init"}
    fin = iso[(iso.layer == "final_norm") & (iso.measure == "pooled") & (iso.status == "measured")]
    # 4 models x with/without position 0; a mean cosine below 0 (random init) gives isotropy slightly above 1
    assert len(fin) == 8 and fin.isotropy.between(0, 1.1).all()
    assert set(iso.layer) >= {"resid_pre.0", "resid_pre.1", "resid_pre.2", "final_norm"}
    chk = iso[iso.measure == "batch1_max_abs_diff"]
    assert len(chk) == 4 and (chk.self_similarity < 1e-5).all()

    methods = mini_section("anisotropy")["decoding"]["methods"]
    methods = [dict(m, k=3) if m["kind"] == "contrastive" else m for m in methods]
    decode.main(["--spec", f"dir:{models['en']}", "--model-id", "tiny_gpt2_en", "--prompts",
                 str(tdir / "en" / "prompts.jsonl"), "--n-prompts", "5", "--prefix-tokens", "4", "--new-tokens", "6",
                 "--methods", json.dumps(methods), "--seeds", "0", "1", "--threads", "1",
                 "--out", str(out / "generations.csv")])
    gen = pd.read_csv(out / "generations.csv", keep_default_na=False)
    assert gen.groupby("method").size().to_dict() == {"human": 5, "greedy": 5, "beam4": 5, "contrastive": 5,
                                                      "top_k50": 10, "nucleus095": 10, "typical095": 10}
    with pytest.raises(ValueError, match="is the generator"):
        metrics.main(["--generations", str(out / "generations.csv"), "--scorer-spec", f"dir:{models['en']}",
                      "--scorer-id", "tiny_gpt2_en", "--out-summary", str(out / "x.csv"),
                      "--out-per-prompt", str(out / "y.csv")])
    metrics.main(["--generations", str(out / "generations.csv"), "--scorer-spec", f"dir:{models['de']}",
                  "--scorer-id", "tiny_gpt2_de", "--bootstrap", "200", "--threads", "1",
                  "--out-summary", str(out / "decoding.csv"), "--out-per-prompt", str(out / "per_prompt.csv")])
    summary = pd.read_csv(out / "decoding.csv")
    assert metrics.CONTROL in set(summary.method) and summary.coherence.notna().all()

    section = mini_section("anisotropy")
    args = shlex.split(claims_args(section, {}))  # what the generic claims rule passes
    assert args[args.index("--contrastive") + 1] == "contrastive"
    claims.main(["--isotropy", str(out / "final.csv"), "--decoding", str(out / "decoding.csv"),
                 "--per-prompt", str(out / "per_prompt.csv"), *args,
                 "--thresholds", json.dumps(section["claims"]), "--scale", "mini", "--out", str(out / "claims.csv"),
                 "--sanity", str(out / "sanity.csv"), "--section", str(out / "section.md")])
    cl = pd.read_csv(out / "claims.csv")
    assert set(cl.claim_id) == {"only_gpt2_anisotropic", "checkpoint_isotropy", "trained_below_random_init",
                                "contrastive_human_like"}
    assert cl.set_index(["claim_id", "model"]).loc[("trained_below_random_init", "tiny_gpt2_ru"), "verdict"] == \
        "not_testable_at_scale"
    assert pd.read_csv(out / "sanity.csv").passed.all()
    assert "not run: missing data" in (out / "section.md").read_text()

    inputs = {"isotropy_by_language": out / "final.csv", "isotropy_by_depth": out / "isotropy.csv",
              "decoding": out / "decoding.csv"}
    assert {f.name for f in FIGURES} == set(inputs)
    for name, path in inputs.items():
        png = out / "figures" / f"anisotropy__{name}.png"
        plot.main(["--result", "anisotropy", "--figure", name, "--inp", str(path), "--out", str(png)])
        assert png.stat().st_size > 1000 and png.with_suffix(".pdf").is_file()
