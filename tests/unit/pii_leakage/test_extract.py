"""Extraction sampling: seeded per sample (batch size does not change the samples), every tagged span recorded with
its tagger, and the gazetteer tagger knows exactly the world's names."""
import pandas as pd
import pytest
import torch

from experiments.lm.build import build_model
from experiments.lm.tokenizer import train_bpe
from experiments.pii_leakage import extract

TEXTS = ["Dr. Anna Berg treated my rash. Call 555-123-4567 to book with Berg.", "The court adjourned.",
         "Mail tom.hale7@example.com before 03 May 2001, says Tom Hale."]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    tok = train_bpe(TEXTS * 20, vocab_size=300)
    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=len(tok), d_model=16, n_layers=1, n_heads=2, context=64,
                        eos_id=tok.eos_token_id)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def test_tag_samples_rows():
    rows = extract.tag_samples(TEXTS, extract.tagger_for("regex", None), "regex")
    got = [(r["sample"], r["type"], r["text"]) for r in rows]
    assert got == [(0, "PERSON", "Anna Berg"), (0, "PHONE", "555-123-4567"), (0, "PERSON", "Berg"),
                   (2, "EMAIL", "tom.hale7@example.com"), (2, "DATE", "03 May 2001"), (2, "PERSON", "Tom Hale")]
    for r in rows:
        assert TEXTS[r["sample"]][r["start"]:r["end"]] == r["text"] and r["tagger"] == "regex"


def test_gazetteer_knows_the_worlds_names(tmp_path):
    ids = tmp_path / "identities.csv"
    pd.DataFrame({"name": ["Anna Berg"], "last": ["Berg"]}).to_csv(ids, index=False)
    rows = extract.tag_samples(TEXTS, extract.tagger_for("gazetteer", str(ids)), "gazetteer")
    assert [(r["sample"], r["text"]) for r in rows] == [(0, "Anna Berg"), (0, "Berg")]
    with pytest.raises(SystemExit, match="identities"):
        extract.tagger_for("gazetteer", None)


def test_samples_do_not_depend_on_batch_size(model_dir, tmp_path):
    outs = []
    for b in (3, 16):
        s, p = tmp_path / f"s{b}.csv", tmp_path / f"p{b}.csv"
        extract.main(["--model", f"dir:{model_dir}", "--n-samples", "7", "--max-new-tokens", "12", "--batch-size",
                      str(b), "--seed", "3", "--threads", "1", "--out-samples", str(s), "--out-pii", str(p)])
        outs.append(pd.read_csv(s, keep_default_na=False))
    assert len(outs[0]) == 7 and (outs[0]["n_tokens"] <= 12).all()
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert list(pd.read_csv(tmp_path / "p3.csv").columns) == extract.PII_COLUMNS
