"""The tiny byte-level BPE tokenizer: lexicon words are single tokens, round trips, chat template."""

from __future__ import annotations

import pytest

from rlhf.models import tokenizer as tk

POSITIVE = "good great happy bright kind warm calm joy love nice gentle lovely".split()
NEGATIVE = "bad sad dark cold angry pain fear ugly cruel dull awful grim".split()
NEUTRAL = (
    "the a cat dog river tree house day walk see sky road book city rain song garden window friend morning"
).split()
PROMPT_WORDS = "me about the weather sea forest town music school food travel".split()


@pytest.fixture(scope="module")
def tok():
    return tk.train_tokenizer()


def test_special_tokens_and_sizes(tok):
    assert len(tok) == tk.DEFAULT_VOCAB_SIZE
    assert (tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token) == (tk.PAD, tk.BOS, tk.EOS, tk.UNK)
    assert [tok.convert_tokens_to_ids(t) for t in tk.SPECIAL_TOKENS] == list(range(len(tk.SPECIAL_TOKENS)))
    assert tok.padding_side == "right"
    assert tok.model_max_length == tk.MODEL_MAX_LENGTH


@pytest.mark.parametrize("word", POSITIVE + NEGATIVE + NEUTRAL + PROMPT_WORDS)
def test_lexicon_word_with_leading_space_is_one_token(tok, word):
    assert len(tok.encode(" " + word, add_special_tokens=True)) == 1


def test_prompt_is_one_token_per_word(tok):
    ids = tok.encode("Tell me about the weather")
    assert len(ids) == 5


def test_decode_encode_round_trip(tok):
    lines = tk.corpus_lines()
    assert 300 <= len(lines) <= 600
    for line in lines + ["héllo  wörld 🙂\n\ttab", "  leading spaces", "x = 3 * (4 + 5)"]:
        assert tok.decode(tok.encode(line)) == line


def test_padding_is_right_with_pad_id(tok):
    batch = tok(["a good day", "a"], padding=True)
    assert batch["input_ids"][1][1:] == [tok.pad_token_id] * (len(batch["input_ids"][0]) - 1)
    assert batch["attention_mask"][1] == [1] + [0] * (len(batch["input_ids"][0]) - 1)


def test_chat_template_renders(tok):
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Tell me about the sea"},
    ]
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|system|>\nBe kind.<|eos|><|user|>\nTell me about the sea<|eos|><|assistant|>\n"
    full = tok.apply_chat_template(messages + [{"role": "assistant", "content": "It is calm."}], tokenize=False)
    assert full == prompt + "It is calm.<|eos|>"
    out = tok.apply_chat_template(
        messages[1:] + [{"role": "assistant", "content": "calm"}],
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m]) == "calm<|eos|>"
    assert tok.convert_tokens_to_ids("<|assistant|>") in ids  # role markers are single tokens


def test_training_is_deterministic(tok):
    again = tk.train_tokenizer()
    assert again.backend_tokenizer.to_str() == tok.backend_tokenizer.to_str()


def test_too_small_vocab_is_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        tk.train_tokenizer(100)
