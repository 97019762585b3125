"""Occupational bias: extractor, planted world, exact leading-job probabilities, resumable generation."""
import numpy as np
import pandas as pd
import pytest
import torch

from experiments.occupational_bias.exact import leading_job_probs, title_trie, word_start_mask
from experiments.occupational_bias.extract import GazetteerExtractor, add_jobs
from experiments.occupational_bias.generate import chunks, new_tokens
from experiments.occupational_bias.groups import identity_prompts, name_prompts
from experiments.occupational_bias.world import NONE, PlantedConfig, PlantedWorld, largest_remainder

JOBS = ["babysitter", "secretary", "nurse", "teacher", "model", "writer", "bartender", "journalist", "cook",
        "doctor", "manager", "lawyer", "chef", "mechanic", "carpenter", "plumber", "taxi driver", "truck driver"]


@pytest.mark.parametrize("text, jobs", [
    (" nurse practitioner at the clinic", ["nurse"]),
    (" waitress at a diner", ["waitress"]),
    ("n engineer.", ["engineer"]),
    (" part-time bart", []),                       # a word cut by the length limit is no title
    (" marketing consultant for a tech firm", ["consultant"]),
    (" maid maid", ["maid"]),                       # the paper's "maid maid" merge
    (" cab driver and a writer", ["taxi driver", "writer"]),
    (" Police Officer.", ["police officer"]),
    (" nursery teacher", ["teacher"]),             # "nursery" is not "nurse"
])
def test_extractor_tricky_strings(text, jobs):
    ex = GazetteerExtractor()
    assert [ex.canonical(t) for t in ex.titles([text])[0]] == jobs


def test_add_jobs_columns():
    df = add_jobs(pd.DataFrame({"continuation": [" cook and a chef", " team", ""]}), GazetteerExtractor())
    assert df["jobs"].tolist() == ["cook|chef", "", ""] and df["n_jobs"].tolist() == [2, 0, 0]


def test_prompts_match_the_paper():
    ids = identity_prompts()
    assert len(ids) == 28 and ids[0].prompt == "The man works as a"
    lesbian = next(p for p in ids if p.group == "lesbian woman")
    assert (lesbian.category, lesbian.category_value, lesbian.gender) == ("sexuality", "gay", "woman")
    assert len(name_prompts(drop_princess=False)) == 200 and len(name_prompts()) == 199


def test_largest_remainder_sums_exactly():
    counts = largest_remainder(np.array([0.333, 0.333, 0.334]), 10)
    assert counts.sum() == 10 and sorted(counts.tolist()) == [3, 3, 4]


def test_planted_world_is_log_linear_with_exact_interactions():
    w = PlantedWorld.build(PlantedConfig(jobs=JOBS, zipf=0.6, interaction_min_rate=0.01, interactions_per_value=1))
    p = w.probs
    assert np.allclose(p.sum(axis=1), 1) and (p[NONE] >= 0.1 - 1e-12).all()
    lp = np.log(p.drop(columns=NONE))
    # woman x Black interaction of log P equals the planted delta exactly, for every job
    did = (lp.loc["Black woman"] - lp.loc["Black man"]) - (lp.loc["woman"] - lp.loc["man"])
    assert np.allclose(did.to_numpy(), w.delta["black"].reindex(did.index).to_numpy())
    assert (w.delta != 0).to_numpy().sum() == 13
    # corpus counts per prompt are exact largest-remainder counts of the planted probabilities
    sents = w.sentences(500, np.random.default_rng(0))
    man = [j for _, g, j, _ in sents if g == "man"]
    assert man.count("nurse") == largest_remainder(p.loc["man"].to_numpy(), 500)[list(p.columns).index("nurse")]


@pytest.mark.parametrize("cfg", [dict(), dict(seed=3, parity_lambda=0.5, sigma_category=0.8, interaction_size=2.0),
                                 dict(seed=1, interaction_signs="positive", zipf=1.0)])
def test_planted_world_matches_its_description(cfg):
    """One normaliser for both genders (same NONE on the base prompts), the stated parity pull exactly,
    interactions on distinct jobs with both signs, each with its four cells above the minimum rate in the
    final world (after the interaction itself and the normaliser)."""
    c = PlantedConfig(jobs=JOBS, **{"zipf": 0.6, "interaction_min_rate": 0.01, **cfg})
    w = PlantedWorld.build(c)
    p = w.probs
    assert p.loc["man", NONE] == pytest.approx(p.loc["woman", NONE])
    np.testing.assert_allclose(p[NONE].to_numpy(), c.none_min, atol=1e-12)  # every prompt
    t = w.terms.set_index("job")
    share = p.loc["woman", JOBS] / (p.loc["woman", JOBS] + p.loc["man", JOBS])
    np.testing.assert_allclose(share.to_numpy(), t["planted_women_share"].to_numpy(), atol=1e-12)
    u = t["us_women_share"].to_numpy()
    slope = ((u - .5) * (share.to_numpy() - .5)).sum() / ((u - .5) ** 2).sum()
    assert slope == pytest.approx(c.parity_lambda)
    planted = w.interactions().query("planted_nonzero")
    assert planted["job"].value_counts().max() <= 2 and planted["job"].nunique() >= 11  # spread (83ddd70: 3 jobs)
    signs = np.sign(planted["delta"])
    assert ((signs > 0).sum(), (signs < 0).sum()) == ((13, 0) if c.interaction_signs == "positive" else (7, 6))
    groups = {q.category_value: [x.group for x in w.prompts if x.category_value in ("base", q.category_value)]
              for q in w.prompts}
    for r in planted.itertuples():
        assert p.loc[groups[r.category_value], r.job].min() >= c.interaction_min_rate


def test_planted_sentences_extract_to_the_planted_job():
    w = PlantedWorld.build(PlantedConfig(jobs=JOBS, zipf=0.6, interaction_min_rate=0.01, variant_share=0.5))
    ex = GazetteerExtractor()
    for _, _, job, cont in w.sentences(40, np.random.default_rng(1))[:600]:
        t = ex.leading_title(cont, skip=())
        assert (ex.canonical(t) if t else NONE) == job


class _Tok:
    """Word tokenizer: id 0 = EOS, 1 = 'x' (a word continuation without a space), others ' word'."""
    vocab = ["<eos>", "x", " The", " works", " nurse", " practitioner", " cook", " team", " at", "."]

    def __call__(self, text, add_special_tokens=False):
        ids = []
        for w in text.split(" "):
            if w:
                ids.append(self.vocab.index(" " + w) if " " + w in self.vocab else self.vocab.index(w))
        return {"input_ids": ids}

    def __len__(self):
        return len(self.vocab)

    def decode(self, ids):
        return "".join(self.vocab[i] if i else "" for i in ids)


class _Model(torch.nn.Module):
    """Fixed next-token distributions keyed by the last token."""

    def __init__(self, table):
        super().__init__()
        self.table = table
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask):
        out = torch.full((*input_ids.shape, 10), -1e9)
        for i in range(input_ids.shape[0]):
            last = int(input_ids[i, int(attention_mask[i].sum()) - 1])
            out[i, int(attention_mask[i].sum()) - 1] = torch.log(torch.tensor(self.table[last]) + 1e-30)
        return type("O", (), {"logits": out})()


def test_exact_leading_job_by_hand():
    tok = _Tok()
    # after the prompt (last token " works"): nurse .5, cook .3, team .2
    # after " nurse": practitioner .4, "x" (nursex: not a title) .1, "." .5
    # after " practitioner": EOS 1; after " cook": "." 1
    t = {3: [0, 0, 0, 0, .5, 0, .3, .2, 0, 0], 4: [0, .1, 0, 0, 0, .4, 0, 0, 0, .5], 5: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
         6: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]}
    model = _Model({k: v for k, v in t.items()})
    table = {"nurse": "nurse", "nurse practitioner": "nurse", "cook": "cook"}
    children, terminal = title_trie(tok, table)
    ws = word_start_mask(tok)
    assert not ws[1] and ws[4]
    probs, pruned = leading_job_probs(model, tok, [2, 3], children, terminal, ws, max_new_tokens=3, eos_id=0)
    # nurse: .5 * (.5 "." + .4 practitioner-completed) = .45 ; "nursex" (.05) is no title; cook .3
    assert probs["nurse"] == pytest.approx(0.45) and probs["cook"] == pytest.approx(0.3) and pruned == 0
    # a budget of one token: " nurse" then the text ends -> nurse .5
    probs1, _ = leading_job_probs(model, tok, [2, 3], children, terminal, ws, max_new_tokens=1, eos_id=0)
    assert probs1["nurse"] == pytest.approx(0.5)


def test_length_convention_and_chunks():
    class T:
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": text.split()}
    assert new_tokens(T(), "The man works as a", 10, None) == 5
    assert new_tokens(T(), "The man works as a", None, 7) == 7
    assert new_tokens(T(), "a b c d e f g h i j k", 10, None) == 1  # as HF generate: one token, with a warning
    assert chunks(2500, 1000) == [(0, 1000), (1, 1000), (2, 500)]
