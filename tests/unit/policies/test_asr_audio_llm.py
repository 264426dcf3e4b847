"""The audio-LLM ASR policy adapter (``asr_audio_llm``, ``tiny:audio-llm``): prompts built by the
processor (one placeholder per audio embedding), sampling-time log-probs equal to a step-by-step
computation without cache or padding, the reference equal to the start policy, a real GRPO
engine step on ``asr.wer``, save/reload round trip, device placement and row errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlhf.algorithms.grpo import GRPOOptions
from rlhf.errors import UserError
from rlhf.policies import POLICIES, build_policy
from rlhf.policies.audio.asr_data import SpokenDigitsOptions
from rlhf.policies.audio.asr_data import run as run_digits
from rlhf.stages.base import StageContext
from rlhf.tracking import StageTracker
from tests.unit.policies.engine_step import assert_scores_its_own_samples

SPEC = "tiny:audio-llm"


def options(**policy):
    base = {"model": SPEC, "adapter": "asr_audio_llm", "sampling": {"max_new_tokens": 6},
            **policy}
    return GRPOOptions(policy=base, data={"train": "unused.jsonl"},
                       rewards=[{"name": "asr.wer"}], prompts_per_step=3, group_size=2)


def spoken_digits(run_dir, **opts):
    """Render a spoken-digits task into ``run_dir/data``; returns (train rows, eval rows) with
    absolute audio paths, as the RL engine hands them to the adapter."""
    from rlhf.engine.sampler import resolve_audio_paths

    stage = run_dir / "data"
    stage.mkdir(parents=True, exist_ok=True)
    ctx = StageContext("data", "spoken_digits", run_dir, stage, 0,
                       StageTracker(None, None, "data", "spoken_digits"))
    run_digits(ctx, SpokenDigitsOptions(**opts))
    out = []
    for name in ("train.jsonl", "eval.jsonl"):
        raw = [json.loads(line) for line in (stage / name).read_text().splitlines()]
        out.append(resolve_audio_paths(raw, stage / name))
    return out


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    train, _ = spoken_digits(tmp_path_factory.mktemp("digits"), n_train=4, n_eval=1,
                             voices=["en-us", "en+f3"], rates=[150, 220])
    return train[:3]


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return build_policy(SPEC, options().policy, need_reference=True)


@pytest.fixture(scope="module")
def rollout(policy, rows):
    from rlhf.engine.collect import split_columns

    prompts, columns = split_columns(rows)
    torch.manual_seed(1)
    return policy.generate(prompts, 2, columns)


def test_registry_options_and_prompt_check():
    assert "asr_audio_llm" in POLICIES.names()
    with pytest.raises(ValueError, match="audio_colum"):
        options(adapter_options={"audio_colum": "wav"})
    from rlhf.algorithms.ppo import PPOOptions

    with pytest.raises(ValueError, match="no PPO critic"):
        PPOOptions(policy={"model": SPEC, "adapter": "asr_audio_llm"}, data={"train": "x"},
                   rewards=[{"name": "asr.wer"}])
    with pytest.raises(UserError, match=r"adapter_options.prompt: .*<\|AUDIO\|>.* exactly once"):
        build_policy(SPEC, options(adapter_options={"prompt": "one two"}).policy, False)


def test_prompts_come_from_the_processor(policy, rollout, rows):
    from rlhf.audio.features import resample
    from rlhf.audio.io import read_audio

    assert len(rollout) == 6
    assert rollout.columns["reference"] == [r["text"] for r in rows for _ in range(2)]
    proc = policy.processor
    for r, row in enumerate(rows):
        wave, sr = read_audio(row["audio"])
        enc = proc(text=["<|audio_bos|><|AUDIO|><|audio_eos|>"], audio=[resample(wave, sr, 16000)],
                   sampling_rate=16000, return_tensors="pt")
        i = 2 * r + 1
        mask = rollout.prompt_mask[i].bool()
        assert rollout.prompt_ids[i][mask].tolist() == enc["input_ids"][0].tolist()
        assert (rollout.prompt_ids[i][~mask] == policy.pad_token_id).all()  # left padding
        frames = int(enc["feature_attention_mask"][0].sum())  # unpadded 20 ms frames
        n_audio = ((frames - 1) // 2 + 1 - 2) // 2 + 1  # conv stride 2, then pool 2
        ids = enc["input_ids"][0].tolist()
        assert ids == [3] + [5] * n_audio + [4]  # <|audio_bos|> <|AUDIO|> x n <|audio_eos|>
        kept = rollout.extras["audio_inputs"][i]
        assert kept["input_features"].shape == (40, 150)
        torch.testing.assert_close(kept["input_features"], enc["input_features"][0],
                                   atol=0, rtol=0)
    ids, mask = rollout.completion_ids, rollout.completion_mask.bool()
    for r in range(6):
        n = int(mask[r].sum())
        assert mask[r, :n].all() and not mask[r, n:].any()
        if not rollout.truncated[r]:
            assert int(ids[r, n - 1]) == policy.eos_token_id
        assert not set(ids[r, :n].tolist()) & {0, 2, 3, 4, 5}  # pad, unk, audio tokens
        assert rollout.completions[r] == policy.tokenizer.decode(
            ids[r, :n], skip_special_tokens=True).strip()


def test_log_probs_match_a_step_by_step_computation(policy, rollout):
    assert_scores_its_own_samples(policy, rollout)  # the reference is the start policy
    # by hand, per row: no KV cache, no padding, the whole sequence re-read at every token
    model = policy.model.eval()
    for r in (0, 5):
        keep = rollout.prompt_mask[r].bool()
        seq = rollout.prompt_ids[r][keep].tolist()
        audio = {k: v[None] for k, v in rollout.extras["audio_inputs"][r].items()}
        with torch.no_grad():
            for t in range(int(rollout.completion_mask[r].sum())):
                ids = torch.tensor([seq])
                logits = model(input_ids=ids, **audio).logits[0, -1]
                logits = logits.masked_fill(~policy.allowed, -1e9)
                tok = int(rollout.completion_ids[r, t])
                want = torch.log_softmax(logits, -1)[tok]  # temperature 1
                assert abs(float(want) - float(rollout.old_logp[r, t])) < 1e-5
                seq.append(tok)
    mask = rollout.completion_mask.bool()
    assert (rollout.old_logp[~mask] == 0).all()
    ent = policy.entropy(rollout)
    assert torch.isfinite(ent).all() and (ent[~mask] == 0).all() and (ent[mask] > 0).all()


def test_a_grpo_engine_step_on_wer_moves_the_weights(rows):
    from tests.unit.policies.engine_step import run_engine_step

    opts = options()
    torch.manual_seed(0)
    pol = build_policy(SPEC, opts.policy, need_reference=False)
    before = {k: v.detach().clone() for k, v in pol.model.named_parameters()}
    c, stats = run_engine_step(opts, rows, policy=pol)
    assert not torch.isnan(c.rewards).any() and (c.rewards <= 1).all()
    assert c.rollout.columns["reference"][0] == rows[0]["text"]
    assert np.isfinite(stats["policy_loss"])
    assert abs(stats["ratio_mean"] - 1.0) < 1e-5  # first minibatch: old_logp is the policy's
    moved = [k for k, v in pol.model.named_parameters() if not torch.equal(v, before[k])]
    assert any(k.startswith("model.language_model") for k in moved)
    assert any(k.startswith("model.audio_tower") for k in moved)  # gradients reach the encoder
    after = pol.log_probs(c.rollout, grad=False)
    assert (after - c.rollout.old_logp).abs().max() > 1e-3


def test_save_and_reload_round_trip(policy, rollout, tmp_path):
    from tests.unit.policies.asr_checks import reloaded_scores_the_same

    again = reloaded_scores_the_same(policy, rollout, tmp_path / "model", options(), {
        "model.safetensors", "config.json", "tokenizer.json", "processor_config.json"})
    prompts, columns = rollout.prompts[::2], {"audio": rollout.columns["audio"][::2]}
    assert again.transcribe(prompts, columns) == policy.transcribe(prompts, columns)


def test_lora_scores_like_its_reference_at_start_and_saves_merged(rollout, tmp_path):
    from tests.unit.policies.asr_checks import lora_starts_at_its_reference_and_saves_merged

    lora_starts_at_its_reference_and_saves_merged(SPEC, options(lora={"r": 4}), rollout,
                                                  tmp_path / "model")


def test_to_moves_model_and_reference(rollout):
    from tests.unit.policies.asr_checks import placement_moves_model_and_reference

    placement_moves_model_and_reference(SPEC, options(), rollout)


def test_a_bad_audio_path_names_the_row(policy, rows):
    prompts = [r["prompt"] for r in rows[:2]]
    columns = {"audio": [rows[0]["audio"], "/no/such/clip.wav"],
               "text": [r["text"] for r in rows[:2]]}
    with pytest.raises(UserError, match=r"row 1 of the batch \(prompt .*\), column 'audio': "
                                        r".*/no/such/clip.wav: file not found"):
        policy.generate(prompts, 2, columns)


def test_finetune_and_eval_stages_take_the_audio_llm(tmp_path):
    """``asr_finetune`` lowers the teacher-forced loss of its clips; ``asr_eval`` reports the
    corpus WER of the adapter's greedy transcripts."""
    from rlhf.engine.collect import split_columns
    from rlhf.policies.audio.asr_eval import AsrEvalOptions, error_rates
    from rlhf.policies.audio.asr_eval import run as run_eval
    from rlhf.policies.audio.asr_sft import AsrSFTOptions
    from rlhf.policies.audio.asr_sft import run as run_sft

    train, held = spoken_digits(tmp_path, n_train=4, n_eval=2, voices=["en-us"], rates=[170])

    def ctx(name, kind):
        (tmp_path / name).mkdir(exist_ok=True)
        return StageContext(name, kind, tmp_path, tmp_path / name, 0,
                            StageTracker(None, None, name, kind))

    def train_loss(spec):
        pol = build_policy(spec, options().policy, need_reference=False)
        prompts, columns = split_columns(train)
        target = pol.reference_rollout(prompts, columns)
        with torch.no_grad():
            logp = pol.log_probs(target, grad=False)
        return float(-logp.sum() / target.completion_mask.sum())

    sft = run_sft(ctx("sft", "asr_finetune"), AsrSFTOptions(
        model=SPEC, train="@data/train.jsonl", steps=6, batch_size=4, learning_rate=3e-3,
        log_every=3))
    assert (tmp_path / "sft" / "model" / "processor_config.json").is_file()
    start, after = train_loss(SPEC), train_loss(str(tmp_path / "sft" / "model"))
    assert after < start - 0.1 and sft.metrics["train/loss"] < start
    result = run_eval(ctx("eval", "asr_eval"), AsrEvalOptions(
        models={"base": SPEC, "sft": "@sft/model"}, data="@data/eval.jsonl", max_new_tokens=5))
    prompts, columns = split_columns(held)
    pol = build_policy(str(tmp_path / "sft" / "model"),
                       options(sampling={"max_new_tokens": 5}).policy, need_reference=False)
    want = error_rates(columns["text"], pol.transcribe(prompts, columns), "basic")
    assert result.metrics["eval/sft/wer"] == want["wer"]
    assert result.metrics["eval/sft/cer"] == want["cer"]
    assert result.metrics["eval/wer_drop"] == (result.metrics["eval/base/wer"]
                                               - result.metrics["eval/sft/wer"])
