"""The Whisper ASR policy adapter and its stages: the spoken-digits data stage (deterministic,
cached), features kept in the rollout, log-probs equal to a hand-written teacher-forced
computation and to ``old_logp`` (ratio 1 at the first minibatch), save/reload round trip, corpus
WER/CER, and row errors that name the file, line and field."""

from __future__ import annotations

import json

import pytest
import torch

from rlhf.algorithms.grpo import GRPOOptions
from rlhf.errors import DataError
from rlhf.policies import POLICIES, build_policy
from rlhf.policies.audio.asr_data import SpokenDigitsOptions, read_asr_rows
from rlhf.policies.audio.asr_data import run as run_digits
from rlhf.policies.audio.asr_eval import error_rates
from rlhf.stages.base import StageContext
from rlhf.tracking import StageTracker
from tests.unit.policies.engine_step import assert_scores_its_own_samples


def _ctx(run_dir, name="data", kind="spoken_digits") -> StageContext:
    stage = run_dir / name
    stage.mkdir(parents=True, exist_ok=True)
    return StageContext(name, kind, run_dir, stage, 0, StageTracker(None, None, name, kind))


def options(**policy):
    base = {"model": "tiny:whisper", "adapter": "asr_whisper",
            "sampling": {"max_new_tokens": 7}, **policy}
    return GRPOOptions(policy=base, data={"train": "unused.jsonl"},
                       rewards=[{"name": "asr.wer"}], prompts_per_step=3, group_size=2)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A small spoken-digit task (rendered once for the module)."""
    run_dir = tmp_path_factory.mktemp("digits")
    opts = SpokenDigitsOptions(n_train=6, n_eval=3, voices=["en-us", "en+f3"], rates=[150, 220])
    result = run_digits(_ctx(run_dir), opts)
    return run_dir / "data", result


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return build_policy("tiny:whisper", options().policy, need_reference=True)


@pytest.fixture(scope="module")
def rows(digits):
    from rlhf.engine.sampler import resolve_audio_paths

    folder, _ = digits
    raw = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    return resolve_audio_paths(raw[:3], folder / "train.jsonl")


@pytest.fixture(scope="module")
def rollout(policy, rows):
    from rlhf.engine.collect import split_columns

    prompts, columns = split_columns(rows)
    torch.manual_seed(1)
    return policy.generate(prompts, 2, columns)


def test_data_stage_rows_clips_and_disjoint_splits(digits):
    folder, result = digits
    train = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    held = [json.loads(line) for line in (folder / "eval.jsonl").read_text().splitlines()]
    assert len(train) == 6 and len(held) == 3
    words = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    for row in train + held:
        assert 3 <= len(row["text"].split()) <= 5 and set(row["text"].split()) <= words
        assert row["audio"] == row["prompt"] and not row["audio"].startswith("/")
        assert (folder / row["audio"]).is_file()
        assert row["voice"] in ("en-us", "en+f3") and row["rate"] in (150, 220)
    assert not {r["text"] for r in train} & {r["text"] for r in held}
    assert result.metrics["data/rendered"] + result.metrics["data/cached"] == 9


def test_data_stage_is_deterministic_and_reuses_the_cache(digits, tmp_path):
    folder, _ = digits
    opts = SpokenDigitsOptions(n_train=6, n_eval=3, voices=["en-us", "en+f3"], rates=[150, 220])
    again = run_digits(_ctx(tmp_path), opts)
    assert again.metrics["data/rendered"] == 0 and again.metrics["data/cached"] == 9
    for name in ("train.jsonl", "eval.jsonl"):
        assert (tmp_path / "data" / name).read_bytes() == (folder / name).read_bytes()
    for row in map(json.loads, (folder / "train.jsonl").read_text().splitlines()):
        assert (tmp_path / "data" / row["audio"]).read_bytes() == \
            (folder / row["audio"]).read_bytes()
    fresh = run_digits(_ctx(tmp_path / "nocache"),
                       opts.model_copy(update={"cache": False}))  # rendered anew: same bytes
    assert fresh.metrics["data/rendered"] == 9
    row = json.loads((folder / "eval.jsonl").read_text().splitlines()[0])
    assert (tmp_path / "nocache" / "data" / row["audio"]).read_bytes() == \
        (folder / row["audio"]).read_bytes()


def test_registry_and_options():
    assert "asr_whisper" in POLICIES.names()
    with pytest.raises(ValueError, match="audio_colum"):
        options(adapter_options={"audio_colum": "wav"})
    from rlhf.algorithms.ppo import PPOOptions

    with pytest.raises(ValueError, match="no PPO critic"):  # its ids are not a causal LM's
        PPOOptions(policy={"model": "tiny:whisper", "adapter": "asr_whisper"},
                   data={"train": "x"}, rewards=[{"name": "asr.wer"}])


def test_rollout_keeps_the_features_and_the_reference(policy, rollout, rows):
    assert len(rollout) == 6
    assert rollout.columns["reference"] == [r["text"] for r in rows for _ in range(2)]
    feats = rollout.extras["input_features"]
    assert len(feats) == 6 and feats[0].shape == (40, 200)
    expected = policy.features.waveform_features(*_read(rows[1]["audio"]))
    torch.testing.assert_close(feats[2], expected, atol=0, rtol=0)
    assert rollout.prompt_ids.tolist() == [[1]] * 6  # <|startoftranscript|>
    mask = rollout.completion_mask.bool()
    ids = rollout.completion_ids
    for r in range(6):  # 1s up to and including the end token; completions decode the ids
        n = int(mask[r].sum())
        assert mask[r, :n].all() and not mask[r, n:].any()
        if not rollout.truncated[r]:
            assert int(ids[r, n - 1]) == policy.eos_token_id
        assert rollout.completions[r] == policy.tokenizer.decode(ids[r, :n],
                                                                 skip_special_tokens=True).strip()
        assert not set(ids[r, :n].tolist()) & {0, 1, 3}  # pad, start, unk are suppressed


def _read(path):
    from rlhf.audio.io import read_audio

    return read_audio(path)


def test_log_probs_match_a_hand_computation_and_old_logp(policy, rollout):
    assert_scores_its_own_samples(policy, rollout)
    # by hand: encoder on the kept features, decoder step by step, suppressed tokens out
    model, r = policy.model.eval(), 3
    with torch.no_grad():
        enc = model.get_encoder()(input_features=rollout.extras["input_features"][r][None])
        ids = [1]
        for t in range(int(rollout.completion_mask[r].sum())):
            logits = model(encoder_outputs=enc, decoder_input_ids=torch.tensor([ids])).logits[0, -1]
            logits = logits.masked_fill(~policy.allowed, -1e9)
            tok = int(rollout.completion_ids[r, t])
            want = torch.log_softmax(logits, -1)[tok]  # temperature 1
            assert abs(float(want) - float(rollout.old_logp[r, t])) < 1e-5
            ids.append(tok)
    mask = rollout.completion_mask.bool()
    assert (rollout.old_logp[~mask] == 0).all()
    ent = policy.entropy(rollout)
    assert torch.isfinite(ent).all() and (ent[~mask] == 0).all()


def test_first_minibatch_ratio_is_one_and_an_update_moves_the_policy(rows):
    from rewards.compose import CompositeReward
    from rlhf.engine.advantages import group_advantages
    from rlhf.engine.collect import collect
    from rlhf.engine.update import Batch, update

    opts = options()
    torch.manual_seed(0)
    pol = build_policy("tiny:whisper", opts.policy, need_reference=False)
    stream = iter(rows * 4)
    with CompositeReward(opts.rewards) as design:
        c = collect(lambda n: [next(stream) for _ in range(n)], pol, design,
                    opts.prompts_per_step, opts.group_size, False, 1)
    assert not torch.isnan(c.rewards).any() and (c.rewards <= 1).all()
    adv = group_advantages(c.rewards + torch.arange(len(c.rewards)) * 0.01, opts.group_size)
    opt = torch.optim.AdamW(pol.model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    stats = update(pol, Batch(c.rollout, adv, c.rollout.completion_mask.clone()), opts, opt,
                   sched, torch.Generator().manual_seed(0), 0.0)
    assert abs(stats["ratio_mean"] - 1.0) < 1e-5 and abs(stats["ratio_max"] - 1.0) < 1e-5
    assert stats["clip_frac_low"] == stats["clip_frac_high"] == 0.0
    after = pol.log_probs(c.rollout, grad=False)
    assert (after - c.rollout.old_logp).abs().max() > 1e-3


def test_save_and_reload_round_trip(policy, rollout, tmp_path):
    from tests.unit.policies.asr_checks import reloaded_scores_the_same

    again = reloaded_scores_the_same(policy, rollout, tmp_path / "model", options(), {
        "model.safetensors", "config.json", "tokenizer.json", "preprocessor_config.json"})
    assert again.prompt == policy.prompt
    prompts, columns = rollout.prompts[::2], {"audio": rollout.columns["audio"][::2]}
    assert again.transcribe(prompts, columns) == policy.transcribe(prompts, columns)


def test_corpus_error_rates_by_hand():
    refs = ["one two three", "four five six seven"]
    hyps = ["one two", "four five six seven eight"]  # 1 deletion, 1 insertion over 7 words
    m = error_rates(refs, hyps, "basic")
    assert m["wer"] == pytest.approx(2 / 7)
    assert m["exact"] == 0.0
    # characters: "one two three" -> "one two" deletes " three" (6 of 13); " eight" inserts
    # 6 over the 19 of "four five six seven"
    assert m["cer"] == pytest.approx((6 + 6) / (13 + 19))
    assert error_rates(["One, two."], ["one two"], "basic") == {"wer": 0.0, "cer": 0.0,
                                                               "exact": 1.0}


def test_bad_rows_name_the_file_line_and_field(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"audio": "a.wav", "text": "one"}\n{"text": "two"}\n')
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"rows.jsonl:2: audio: missing"):
        read_asr_rows(data)
    data.write_text('{"audio": "b.wav", "text": "one"}\n')
    with pytest.raises(DataError, match=r"rows.jsonl:1: audio: audio file .*b.wav not found"):
        read_asr_rows(data)


def test_lora_policy_scores_like_its_reference_at_start_and_saves_merged(rollout, tmp_path):
    from tests.unit.policies.asr_checks import lora_starts_at_its_reference_and_saves_merged

    lora_starts_at_its_reference_and_saves_merged("tiny:whisper", options(lora={"r": 4}),
                                                  rollout, tmp_path / "model")


def test_to_moves_model_and_reference(rollout):
    from tests.unit.policies.asr_checks import placement_moves_model_and_reference

    placement_moves_model_and_reference("tiny:whisper", options(), rollout)
