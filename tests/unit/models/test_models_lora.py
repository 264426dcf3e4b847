"""LoRA: options schema, trainable set, merged and adapter-only saves that reload exactly."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest
import torch

from rlhf.errors import UserError
from rlhf.models import (
    LoraOptions,
    apply_lora,
    load_causal_lm,
    load_reward_model,
    load_saved,
    load_tokenizer,
    save_model,
    to_peft_config,
)

# peft calls a transformers API that transformers 5 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")

TEXTS = ["Tell me about the sea.", "The cat is calm and the day is good.", "A sad dog"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rlhf-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RLHF_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def tok(cache_dir):
    return load_tokenizer("tiny:lm")


def _batch(tok):
    return tok(TEXTS, return_tensors="pt", padding=True)


def _train_step(model, loss_fn, lr=1e-2):
    torch.manual_seed(0)
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=lr)
    model.train()
    loss_fn(model).backward()
    optim.step()
    model.eval()


def test_options_schema():
    opts = LoraOptions()
    assert (opts.r, opts.alpha, opts.dropout, opts.target_modules, opts.modules_to_save) == (
        8,
        16,
        0.0,
        "all-linear",
        None,
    )
    with pytest.raises(pydantic.ValidationError, match="extra"):
        LoraOptions(rank=4)
    with pytest.raises(pydantic.ValidationError):
        LoraOptions(r=0)
    assert LoraOptions(target_modules=["q_proj", "v_proj"]).target_modules == ["q_proj", "v_proj"]
    for name, field in LoraOptions.model_fields.items():
        assert field.description, f"field {name} has no docstring"


def test_options_import_without_torch():
    code = "import sys, rlhf.models; rlhf.models.LoraOptions(r=4); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_peft_config():
    opts = LoraOptions(r=4, alpha=8, dropout=0.1, modules_to_save=["embed_tokens"])
    cfg = to_peft_config(opts, "CAUSAL_LM")
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.task_type) == (4, 8, 0.1, "CAUSAL_LM")
    assert cfg.modules_to_save == ["embed_tokens"]
    assert to_peft_config(LoraOptions(), "SEQ_CLS").modules_to_save == ["score"]
    with pytest.raises(UserError, match="task_type"):
        to_peft_config(opts, "TOKEN_CLS")


def test_causal_lm_lora_merged_and_adapter_saves_match(cache_dir, tok, tmp_path):
    model = apply_lora(load_causal_lm("tiny:lm"), LoraOptions(r=4), "CAUSAL_LM")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = _batch(tok)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    _train_step(model, lambda m: m(**batch, labels=labels).loss)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    with torch.no_grad():
        expected = model(**batch).logits

    save_model(model, tok, tmp_path / "merged", merge=True)
    assert "lora_" in " ".join(n for n, _ in model.named_parameters())  # model left untouched
    merged = load_causal_lm(str(tmp_path / "merged")).eval()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    save_model(model, tok, tmp_path / "adapter", merge=False)
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    adapter = load_saved(tmp_path / "adapter", "CAUSAL_LM").eval()
    base = load_causal_lm("tiny:lm").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(adapter(**batch).logits, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(model(**batch).logits, expected, atol=0, rtol=0)
        assert not torch.allclose(base(**batch).logits, expected, atol=1e-5)  # the step mattered


def _scores(model, batch):
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize("base_spec", ["tiny:reward", "tiny:lm"])
def test_reward_lora_trains_and_saves_the_score_head(cache_dir, tok, tmp_path, base_spec):
    base = load_reward_model(base_spec).eval()
    original_head = base.score.weight.detach().clone()
    batch = _batch(tok)
    before = _scores(base, batch)
    model = apply_lora(base, LoraOptions(r=4), "SEQ_CLS")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("score" in n for n in trainable)
    assert all("lora_" in n or "score" in n for n in trainable)
    target = torch.tensor([[1.0], [-1.0], [0.5]])
    _train_step(model, lambda m: torch.nn.functional.mse_loss(m(**batch).logits, target), lr=5e-2)
    expected = _scores(model, batch)
    assert not torch.allclose(expected, before, atol=1e-3)

    save_model(model, tok, tmp_path / "merged", merge=True)
    merged = load_reward_model(str(tmp_path / "merged")).eval()
    assert merged.config.pad_token_id == tok.pad_token_id
    assert not torch.allclose(merged.score.weight, original_head, atol=1e-4)  # trained head was saved
    torch.testing.assert_close(_scores(merged, batch), expected, atol=1e-5, rtol=0)

    save_model(model, tok, tmp_path / "adapter", merge=False)
    adapter = load_saved(tmp_path / "adapter", "SEQ_CLS").eval()
    torch.testing.assert_close(_scores(adapter, batch), expected, atol=1e-5, rtol=0)
