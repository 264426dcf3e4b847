"""Model specs and loaders: presets, local paths, hub ids offline, exact save/load round trips."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from rlhf.errors import UserError
from rlhf.models import (
    load_causal_lm,
    load_reward_model,
    load_tokenizer,
    resolve_model_path,
    save_model,
)
from rlhf.models.tokenizer import CHAT_TEMPLATE, corpus_lines

TEXTS = ["Tell me about the sea.", "The cat is calm and the day is good.", "A sad dog"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rlhf-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RLHF_CACHE_DIR", str(path))
        yield path


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _batch(tok):
    return tok(TEXTS, return_tensors="pt", padding=True)


def test_resolve_preset_local_and_hub(cache_dir, tmp_path, monkeypatch):
    path = resolve_model_path("tiny:lm")
    assert path.startswith(str(cache_dir)) and (cache_dir / "tiny").exists()
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    assert Path(resolve_model_path("./ckpt")).resolve() == (tmp_path / "ckpt").resolve()
    assert resolve_model_path("ckpt") == "ckpt"
    assert resolve_model_path("~") == str(Path.home())
    assert resolve_model_path("some-org/some-model") == "some-org/some-model"


def test_resolve_errors(cache_dir, tmp_path):
    with pytest.raises(UserError, match="did you mean 'tiny:lm'"):
        resolve_model_path("tiny:lmm")
    for spec in ["./missing-model", "../missing-model", "/no/such/model", "~/no-such-model-dir"]:
        with pytest.raises(UserError, match="does not exist") as info:
            resolve_model_path(spec)
        assert repr(spec) in str(info.value)
    (tmp_path / "file.bin").write_bytes(b"")
    with pytest.raises(UserError, match="is a file"):
        resolve_model_path(str(tmp_path / "file.bin"))


def test_hub_id_offline_is_a_user_error(cache_dir, offline):
    spec = "rlhf-toolkit-tests/no-such-model-0000"
    for loader in (load_tokenizer, load_causal_lm, load_reward_model):
        with pytest.raises(UserError) as info:
            loader(spec)
        message = str(info.value)
        assert repr(spec) in message and "tiny:lm" in message and "local directory" in message


def test_local_dir_that_is_not_a_model(cache_dir, tmp_path):
    with pytest.raises(UserError, match="cannot load the causal LM"):
        load_causal_lm(str(tmp_path))


def test_tokenizer_from_preset(cache_dir):
    tok = load_tokenizer("tiny:lm")
    assert tok.padding_side == "right" and tok.pad_token == "<|pad|>"
    assert tok.chat_template == CHAT_TEMPLATE
    line = corpus_lines()[0]
    assert tok.decode(tok.encode(line)) == line


def test_tokenizer_pad_falls_back_to_eos(cache_dir, tmp_path):
    tok = load_tokenizer("tiny:lm")
    tok.pad_token = None
    tok.save_pretrained(tmp_path)
    reloaded = load_tokenizer(str(tmp_path))
    assert reloaded.pad_token == reloaded.eos_token == "<|eos|>"


def test_causal_lm_save_load_round_trip_is_exact(cache_dir, tmp_path):
    tok = load_tokenizer("tiny:lm")
    model = load_causal_lm("tiny:lm").eval()
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.vocab_size == len(tok)
    save_model(model, tok, tmp_path / "out")
    again = load_causal_lm(str(tmp_path / "out")).eval()
    batch = _batch(tok)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)
    preset_dir = Path(resolve_model_path("tiny:lm"))
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (preset_dir / "tokenizer.json").read_bytes()


def test_causal_lm_dtype(cache_dir):
    model = load_causal_lm("tiny:lm", dtype="bfloat16")
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(UserError, match="unknown dtype"):
        load_causal_lm("tiny:lm", dtype="float99")


def test_reward_model_scores(cache_dir, tmp_path):
    tok = load_tokenizer("tiny:reward")
    model = load_reward_model("tiny:reward").eval()
    assert model.config.pad_token_id == tok.pad_token_id is not None
    batch = _batch(tok)
    with torch.no_grad():
        scores = model(**batch).logits
        assert scores.shape == (len(TEXTS), 1)
        short = tok(TEXTS[2:], return_tensors="pt")  # the shortest text, unpadded
        alone = model(**short).logits
    assert batch["attention_mask"][2].sum() < batch["attention_mask"].shape[1]  # it was padded
    torch.testing.assert_close(scores[2:], alone, atol=1e-5, rtol=0)
    save_model(model, tok, tmp_path / "rm")
    again = load_reward_model(str(tmp_path / "rm")).eval()
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, scores)


def test_reward_model_from_causal_lm_gets_pad_id(cache_dir, tmp_path):
    tok = load_tokenizer("tiny:lm")
    lm = load_causal_lm("tiny:lm")
    lm.config.pad_token_id = None
    save_model(lm, tok, tmp_path / "lm")
    model = load_reward_model(str(tmp_path / "lm"))
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.score.weight.shape == (1, model.config.hidden_size)


def test_new_reward_head_is_seeded(cache_dir):
    first, second = load_reward_model("tiny:lm"), load_reward_model("tiny:lm")
    assert torch.equal(first.score.weight, second.score.weight)
    assert 0.01 < first.score.weight.std().item() < 0.04
