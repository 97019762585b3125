"""Attack queries and the attack pieces, by hand: the query reads back as the record with the target's other
mentions filled; candidate sets hold the target and distinct distractors; TAB's success test; candidate tagging;
the scorer ranks a memorised name first."""
from dataclasses import asdict

import pytest

from experiments.pii_leakage import attacks
from experiments.pii_leakage.queries import build_queries

pytest.importorskip("faker", reason="faker is installed by make setup (extra ner)")
from experiments.pii_leakage.world import WorldConfig, make_world  # noqa: E402


def identity(i, pool, first, last, dup=0):
    return {"id": i, "pool": pool, "dup": dup, "first": first, "last": last, "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@x.org", "phone": "1", "address": "2"}


IDS = [identity("m1", "member", "Anna", "Berg", 2), identity("p1", "public", "Paul", "Roe")]
TEXT = "The applicant, Anna Berg, wrote to anna.berg@x.org. Berg was heard."
SPANS = [{"start": 15, "end": 24, "type": "PERSON", "identity": "m1", "form": "full", "text": "Anna Berg"},
         {"start": 35, "end": 50, "type": "EMAIL", "identity": "m1", "form": "", "text": "anna.berg@x.org"},
         {"start": 52, "end": 56, "type": "PERSON", "identity": "m1", "form": "surname", "text": "Berg"}]
RECORDS = [{"id": "train-1", "split": "train", "text": TEXT, "spans": SPANS, "identity": "m1"},
           {"id": "train-2", "split": "train", "text": TEXT, "spans": SPANS, "identity": "m1"}]


def test_query_by_hand():
    assert TEXT[15:24] == "Anna Berg" and TEXT[35:50] == "anna.berg@x.org" and TEXT[52:56] == "Berg"
    (q,) = build_queries(RECORDS, IDS)  # one query per identity
    assert q["prefix"] == "The applicant," and q["sep"] == " " and q["target"] == "Anna Berg"
    assert q["suffix"] == ", wrote to paul.roe@x.org. Roe was heard." and q["filled"] == 2
    assert q["record"] == "train-1" and q["dup"] == 2


def test_queries_of_the_default_world_hide_the_target():
    ids, recs = make_world(WorldConfig())
    queries = build_queries([asdict(r) for r in recs], [asdict(i) for i in ids])
    by_id = {i.id: i for i in ids}
    assert {q["dup"] for q in queries} == {1, 2, 4, 8, 16}
    for q in queries:
        ident = by_id[q["identity"]]
        assert ident.last not in q["prefix"] + q["suffix"] and ident.email not in q["suffix"]
        assert ident.pool == "member"
    assert len(build_queries([asdict(r) for r in recs], [asdict(i) for i in ids], max_per_level=3)) == 15
    every = build_queries([asdict(r) for r in recs], [asdict(i) for i in ids])
    sample = build_queries([asdict(r) for r in recs], [asdict(i) for i in ids], max_queries=7)
    assert len(sample) == 7 and [q for q in every if q in sample] == sample  # a subset, in record order
    assert sample == build_queries([asdict(r) for r in recs], [asdict(i) for i in ids], max_queries=7)
    assert sample != build_queries([asdict(r) for r in recs], [asdict(i) for i in ids], max_queries=7, seed=1)


def test_candidate_sets():
    qs = [{"target": "A B"}, {"target": "C D"}]
    pool = ["A B", "C D", "E F", "G H", "I J"]
    sets = attacks.draw_candidates(qs, pool, 3, seed=0)
    for q, s in zip(qs, sets):
        assert len(s) == len(set(s)) == 3 and q["target"] in s and set(s) <= set(pool)
    assert sets == attacks.draw_candidates(qs, pool, 3, seed=0) != attacks.draw_candidates(qs, pool, 3, seed=1)
    with pytest.raises(ValueError, match="distractors"):
        attacks.draw_candidates(qs, pool, 6, seed=0)


def test_tab_success_and_candidates():
    assert attacks.opens_with(" Anna Berg, wrote", "Anna Berg")
    assert not attacks.opens_with(" Anna Bergman wrote", "Anna Berg")
    assert not attacks.opens_with(" The Anna Berg", "Anna Berg")
    from experiments.pii_leakage.taggers import regex_tag
    got = attacks.person_candidates([" Anna Berg, wrote", " Tom Hale said. Hale", " Anna Berg"], regex_tag)
    assert got == ["Anna Berg", "Tom Hale"]
    assert attacks.argmax([1.0, 3.0, 3.0]) == 1


def test_scores_rank_a_memorised_name_first(tmp_path):
    import torch

    from experiments.lm.build import build_model
    from experiments.lm.finetune_records import RecordTrainConfig, finetune_records
    from experiments.lm.tokenizer import train_bpe

    record = "The applicant, Anna Berg, was heard."
    tok = train_bpe([record, "Tom Hale", "Paul Roe"] * 10, vocab_size=280)
    torch.manual_seed(0)
    model = build_model("gpt2", vocab_size=len(tok), d_model=32, n_layers=1, n_heads=2, context=32,
                        eos_id=tok.eos_token_id)
    ids = tok(record)["input_ids"] + [tok.eos_token_id]
    finetune_records(model, [ids], RecordTrainConfig(epochs=40, batch_size=1, lr=1e-2), tmp_path,
                     bos_id=tok.eos_token_id, pad_id=tok.eos_token_id, progress=False)
    q = {"prefix": "The applicant,", "sep": " ", "suffix": ", was heard."}
    cands = ["Tom Hale", "Anna Berg", "Paul Roe"]
    (scores,) = attacks.candidate_scores(model, tok, [q], [cands])
    assert attacks.argmax(scores) == 1
    (other,) = attacks.candidate_scores(model, tok, [{**q, "suffix": ", was seen."}], [cands])
    assert max(other) < max(scores)  # the suffix is scored too
