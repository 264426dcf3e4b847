"""The codec-token TTS policy adapter: token layout, restricted sampling, ids ↔ codes, the
waveform as the codec's decoding, log-prob consistency, save/reload, token-id DPO scoring the
same restricted distribution, audio rewards and an engine step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.algorithms.grpo import GRPOOptions
from rlhf.policies import POLICIES, build_policy
from rlhf.policies.audio.codec_tts import AUDIO_END, AUDIO_START, LAYOUT_FILE, load_layout
from tests.unit.policies.engine_step import assert_scores_its_own_samples

SENTENCES = ["the cat sat on the mat", "a red balloon"]
N_Q, K = 2, 32


def options(**adapter):
    return GRPOOptions(policy={"model": "tiny:lm", "adapter": "codec_tts",
                               "adapter_options": {"codec": "tiny:encodec", **adapter},
                               "sampling": {"max_new_tokens": 21}},
                       data={"train": "unused.jsonl"}, rewards=[{"name": "audio.duration"}],
                       prompts_per_step=2, group_size=3)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return build_policy("tiny:lm", options(min_frames=2).policy, need_reference=True)


@pytest.fixture(scope="module")
def rollout(policy):
    torch.manual_seed(3)
    return policy.generate(SENTENCES, 4)


def test_registry_and_vocabulary_layout(policy):
    assert "codec_tts" in POLICIES.names()
    vocab = policy.tokenizer.get_vocab()
    assert policy.start_id == vocab[AUDIO_START] and policy.end_id == vocab[AUDIO_END]
    assert policy.audio_offset > max(policy.start_id, policy.end_id) >= 1024  # past the text
    assert vocab["<|c1_5|>"] == policy.audio_offset + 1 * K + 5
    assert len(policy.tokenizer) == policy.audio_offset + N_Q * K
    assert policy.model.get_input_embeddings().weight.shape[0] == len(policy.tokenizer)
    assert policy.eos_token_id == policy.end_id
    with pytest.raises(ValueError, match="min_frames"):
        options(min_frames=-1)


def test_sampled_tokens_follow_the_layout(policy, rollout):
    for ids, truncated in zip(rollout.token_lists(), rollout.truncated.tolist(), strict=True):
        body = ids[:-1] if ids[-1] == policy.end_id else ids
        assert truncated == (ids[-1] != policy.end_id)
        for t, tok in enumerate(body):
            q = t % N_Q
            assert policy.audio_offset + q * K <= tok < policy.audio_offset + (q + 1) * K
        if not truncated:  # the end token only at a frame boundary, after min_frames frames
            assert len(body) % N_Q == 0 and len(body) // N_Q >= 2
    assert rollout.truncated.any() and not rollout.truncated.all()


def test_codes_and_waveforms_are_the_codec_decoding(policy, rollout):
    codec = policy.codec
    assert rollout.extras["sample_rate"] == [16_000] * 8
    assert rollout.extras["text"] == [s for s in SENTENCES for _ in range(4)]
    for ids, codes, wave, desc in zip(rollout.token_lists(), rollout.extras["codes"],
                                      rollout.extras["waveform"], rollout.completions,
                                      strict=True):
        c = np.asarray(codes)
        body = [i for i in ids if i != policy.end_id]
        assert c.shape == (N_Q, len(body) // N_Q)  # a truncated half frame is dropped
        # frame-major flattening: position t holds codebook t % n_q of frame t // n_q
        assert policy.ids_of(c, end=False) == body[:c.size]
        np.testing.assert_array_equal(policy.codes_of(ids), c)
        np.testing.assert_allclose(wave, codec.decode(c)[0], atol=1e-6)
        assert wave.size == c.shape[1] * codec.hop_length
        assert desc == f"{c.shape[1]} frames, {c.shape[1] / 25:.2f} s"


def test_old_logp_equals_recomputed_log_probs(policy, rollout):
    assert_scores_its_own_samples(policy, rollout)
    mask = rollout.completion_mask.bool()
    assert (rollout.old_logp[mask] < 0).all() and (rollout.old_logp[~mask] == 0).all()
    # restricted: K codes (+ the end token at frame boundaries) share the mass
    ent = policy.entropy(rollout)
    assert torch.isfinite(ent).all() and float(ent[mask].max()) <= float(np.log(K + 1)) + 1e-4


def test_save_and_reload_keep_the_layout(policy, rollout, tmp_path):
    policy.save(tmp_path / "model")
    layout = load_layout(tmp_path / "model")
    assert (layout.offset, layout.n_q, layout.k, layout.end_id, layout.min_frames) == \
        (policy.audio_offset, N_Q, K, policy.end_id, 2)
    again = build_policy(str(tmp_path / "model"), options(min_frames=2).policy,
                         need_reference=False)
    assert again.audio_offset == policy.audio_offset and len(again.tokenizer) == len(
        policy.tokenizer)
    torch.testing.assert_close(again.log_probs(rollout, grad=False), rollout.old_logp,
                               atol=1e-5, rtol=0)
    assert load_layout(tmp_path) is None and (tmp_path / "model" / LAYOUT_FILE).is_file()


def test_token_dpo_scores_the_restricted_distribution(policy, rollout):
    """The forward the dpo stage gives TRL returns the adapter's own log-probs."""
    import copy

    from trl.trainer.utils import add_fused_lm_head

    from rlhf.algorithms.dpo_tokens import _patch

    model = copy.deepcopy(policy.model)
    add_fused_lm_head(model)
    _patch(model, policy.layout)
    for i, ids in enumerate(rollout.token_lists()[:3]):
        prompt = rollout.prompt_ids[i][rollout.prompt_mask[i].bool()].tolist()
        seq = torch.tensor([prompt + ids])
        labels = seq.clone()
        labels[0, :len(prompt)] = -100
        out = model(input_ids=seq, attention_mask=torch.ones_like(seq), labels=labels,
                    fused_lm_head=True)
        got = out.log_probs[0, len(prompt) - 1:]
        torch.testing.assert_close(got, rollout.old_logp[i, :len(ids)], atol=1e-5, rtol=0)
        assert out.log_probs[0, :len(prompt) - 1].abs().sum() == 0


def test_audio_rewards_score_the_rollout_and_an_engine_step_runs(policy):
    from tests.unit.policies.engine_step import run_engine_step

    c, stats = run_engine_step(options(), SENTENCES)
    assert not torch.isnan(c.rewards).any() and ((c.rewards >= 0) & (c.rewards <= 1)).all()
    assert np.isfinite(stats["policy_loss"])
