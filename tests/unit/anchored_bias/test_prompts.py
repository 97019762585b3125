"""Encoding items as the paper feeds them: BOS + prompt (or a chat template), left padding, letter positions."""
import json
from types import SimpleNamespace

import pytest
import torch

from experiments.anchored_bias import prompts
from experiments.anchored_bias.items import LETTERS, build, render
from tests.unit.anchored_bias.test_items import config, world_tokenizer

CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def tok():
    return world_tokenizer()


@pytest.fixture(scope="module")
def items():
    df = build(config())["eval"]
    return df.iloc[:12].reset_index(drop=True)


def _decode(tok, ids) -> str:
    return tok.decode([int(i) for i in ids])


def test_plain_prepends_bos_and_left_pads(tok):
    ps = [render("Which one is a fruit?", ["dog", "apple"]),
          render("Which one is a tool?", ["red", "saw", "bus", "owl", "plum"])]
    enc = prompts.encode(tok, ps, [2, 5], "plain")
    short, long_ = (tok.encode(p, add_special_tokens=False) for p in ps)
    assert len(short) < len(long_)
    width = len(long_) + 1
    assert enc.input_ids.shape == enc.attention_mask.shape == (2, width)
    assert enc.input_ids[1].tolist() == [tok.bos_token_id] + long_
    n_pad = width - len(short) - 1
    assert enc.input_ids[0, n_pad:].tolist() == [tok.bos_token_id] + short  # real tokens right-aligned
    assert enc.attention_mask[0].tolist() == [0] * n_pad + [1] * (len(short) + 1)
    assert enc.attention_mask[1].all()
    assert (enc.input_ids[0, :n_pad] == tok.pad_token_id).all()
    assert _decode(tok, enc.input_ids[:, -1]) == "::"  # the last position is the colon of "Answer:" in both rows


def test_bos_is_the_tokenizers_bos_or_else_its_eos():
    assert prompts.bos_id(SimpleNamespace(bos_token_id=3, eos_token_id=7)) == 3
    assert prompts.bos_id(SimpleNamespace(bos_token_id=None, eos_token_id=7)) == 7
    with pytest.raises(ValueError, match="neither a BOS nor an EOS"):
        prompts.bos_id(SimpleNamespace(bos_token_id=None, eos_token_id=None))


def test_letter_positions_and_option_ends(tok, items):
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    assert set(items["n_options"]) >= {2, 5}
    for i, row in items.iterrows():
        ids, k = enc.input_ids[i], row["n_options"]
        opts = json.loads(row["options"])
        for j in range(5):
            lp, oe = int(enc.letter_pos[i, j]), int(enc.option_end[i, j])
            if j >= k:
                assert lp == -1 and oe == -1
                continue
            assert _decode(tok, [ids[lp]]) == " " + LETTERS[j]  # the option letter's own token
            assert _decode(tok, [ids[lp + 1]]) == ":"
            assert _decode(tok, ids[lp + 2:oe + 1]) == " " + opts[j]  # the option text ends at option_end
            after = _decode(tok, [ids[oe + 1]])
            assert after == (" " + LETTERS[j + 1] if j + 1 < k else " Answer")
        assert enc.attention_mask[i, int(enc.letter_pos[i, 0])] == 1


def test_multi_token_options_end_at_their_last_token(tok):
    word = "blue"
    assert len(tok.encode(" " + word, add_special_tokens=False)) > 1  # the case that matters
    enc = prompts.encode(tok, [render("Which one is a colour?", ["dog", word])], [2], "plain")
    lp, oe = enc.letter_pos[0, 1].item(), enc.option_end[0, 1].item()
    assert oe - (lp + 1) == len(tok.encode(" " + word, add_special_tokens=False))
    assert oe == enc.input_ids.shape[1] - 3  # ... blue | " Answer" | ":"


def test_answer_token_ids(tok):
    ids = prompts.answer_token_ids(tok, "plain")
    assert ids == [tok.encode(" " + x, add_special_tokens=False)[0] for x in LETTERS]
    assert len(set(ids)) == 5
    assert [tok.decode([t]) for t in prompts.answer_token_ids(tok, "chat")] == list(LETTERS)
    enc = prompts.encode(tok, [render("Which one is a fruit?", ["dog", "apple"])], [2], "plain")
    assert enc.letter_ids == ids
    assert enc.input_ids[0, enc.letter_pos[0, 0]] == ids[0]  # the prompt's " A" is the answer token " A"


def test_a_letter_of_two_tokens_raises():
    tok4 = world_tokenizer((2, 3, 4))
    assert len(tok4.encode(" E", add_special_tokens=False)) == 2
    with pytest.raises(ValueError, match="' E' is 2 tokens"):
        prompts.answer_token_ids(tok4, "plain")
    with pytest.raises(ValueError, match="' E' is 2 tokens"):  # even when no item has five options
        prompts.encode(tok4, [render("Which one is a fruit?", ["dog", "apple"])], [2], "plain")


def test_chat_format(tok):
    with pytest.raises(ValueError, match="chat template"):
        prompts.encode(tok, [render("Which one is a fruit?", ["dog", "apple"])], [2], "chat")
    chat_tok = world_tokenizer.__wrapped__()  # a private copy: the template must not leak into other tests
    chat_tok.chat_template = CHAT
    p = render("Which one is a fruit?", ["dog", "apple", "red"])
    enc = prompts.encode(chat_tok, [p], [3], "chat")
    text = chat_tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
    assert enc.input_ids[0].tolist() == chat_tok.encode(text, add_special_tokens=False)  # no BOS added
    assert [_decode(chat_tok, [enc.input_ids[0, q]]) for q in enc.letter_pos[0, :3]] == [" A", " B", " C"]
    assert _decode(chat_tok, enc.input_ids[0, enc.letter_pos[0, 2] + 2:enc.option_end[0, 2] + 1]) == " red"
    assert [chat_tok.decode([t]) for t in enc.letter_ids] == list(LETTERS)


def test_unknown_format_raises(tok):
    with pytest.raises(ValueError, match="unknown format"):
        prompts.encode(tok, ["x"], [2], "json")


def test_batches_trim_each_batch_to_its_longest_row(tok, items):
    enc = prompts.encode(tok, items["prompt"].tolist(), items["n_options"].tolist(), "plain")
    seen = []
    for rows, ids, mask, cut in prompts.batches(enc, 5):
        full_ids, full_mask = enc.input_ids[rows], enc.attention_mask[rows]
        assert torch.equal(ids, full_ids[:, cut:]) and torch.equal(mask, full_mask[:, cut:])
        assert not full_mask[:, :cut].any()  # only padding is cut
        assert mask[:, 0].any()  # and no more than that
        seen += list(range(rows.start, rows.stop))
    assert seen == list(range(len(items)))
