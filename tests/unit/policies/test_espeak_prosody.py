"""The eSpeak prosody policy adapter: control parsing and SSML, rollout shapes and extras,
log-prob consistency, restricted sampling, save/reload, options and the engine's adapter hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.algorithms.grpo import GRPOOptions
from rlhf.policies import POLICIES, build_policy
from rlhf.policies.audio.espeak_prosody import (EspeakProsodyPolicy, Prosody, ProsodyOptions,
                                                parse_controls, to_ssml)
from rlhf.policies.text import TextPolicy
from tests.unit.policies.engine_step import assert_scores_its_own_samples

SENTENCES = ["the cat sat on the mat", "please call stella & ask her"]


def options(**policy):
    base = {"model": "tiny:lm", "adapter": "espeak_prosody",
            "sampling": {"max_new_tokens": 5}, **policy}
    return GRPOOptions(policy=base, data={"train": "unused.jsonl"},
                       rewards=[{"name": "audio.duration"}], prompts_per_step=2, group_size=3)


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return build_policy("tiny:lm", options().policy, need_reference=True)


@pytest.fixture(scope="module")
def rollout(policy):
    torch.manual_seed(1)
    return policy.generate(SENTENCES, 3)


def test_controls_parse_last_rate_and_pitch_win():
    o = ProsodyOptions()
    plan = parse_controls(["<rate_0>", "<pitch_4>", "<rate_8>", "<pause_1>", "<emph_2>",
                           "<emph_2>", "<bogus>"], o)
    assert plan == Prosody(rate=340, pitch=80, pauses={1}, emphasis={2})
    assert parse_controls([], o) == Prosody(rate=175, pitch=50)


def test_ssml_escapes_words_and_places_breaks_and_emphasis():
    ssml = to_ssml("a & b c", Prosody(175, 50, pauses={0, 3}, emphasis={1}), 250)
    # word 3 is the last: no break after it
    assert ssml == '<speak>a <break time="250ms"/> <emphasis>&amp;</emphasis> b c</speak>'


def test_registry_and_options_validation():
    assert {"text", "espeak_prosody"} <= set(POLICIES.names())
    with pytest.raises(ValueError, match="unknown policy adapter"):
        options(adapter="nope")
    with pytest.raises(ValueError, match="rates"):
        options(adapter_options={"rates": [50]})
    with pytest.raises(ValueError, match="takes no adapter_options"):
        options(adapter="text", adapter_options={"voice": "en-us"})
    with pytest.raises(ValueError, match="no PPO critic"):
        GRPOOptions(policy={"model": "tiny:lm", "adapter": "espeak_prosody"},
                    data={"train": "x"}, rewards=[{"name": "audio.duration"}],
                    advantage="gae")
    plain = GRPOOptions(policy={"model": "tiny:lm"}, data={"train": "x"},
                        rewards=[{"name": "audio.duration"}])
    assert plain.policy.adapter == "text"


def test_rollout_shapes_and_extras(policy, rollout):
    n = len(SENTENCES) * 3
    assert isinstance(policy, EspeakProsodyPolicy) and isinstance(policy, TextPolicy)
    assert len(rollout) == n and rollout.completion_ids.shape == rollout.old_logp.shape
    assert rollout.completion_ids.shape == (n, rollout.completion_mask.shape[1])
    assert rollout.prompts == [s for s in SENTENCES for _ in range(3)]
    assert set(rollout.extras) == {"waveform", "sample_rate", "ssml", "text"}
    assert rollout.extras["text"] == rollout.prompts
    assert rollout.extras["sample_rate"] == [16_000] * n
    for wave, ssml, completion, ids in zip(rollout.extras["waveform"], rollout.extras["ssml"],
                                           rollout.completions, rollout.token_lists()):
        assert wave.dtype == np.float32 and wave.ndim == 1 and 0.3 < wave.size / 16_000 < 10
        assert ssml.startswith("<speak>") and ("&" not in ssml or "&amp;" in ssml)
        assert completion == " ".join(policy.controls_of(ids))
        # sampling is restricted to the control tokens and the end token
        assert all(i in policy.id_to_control or i == policy.eos_token_id for i in ids)


def test_waveform_is_the_rendering_of_the_controls(policy, rollout):
    from rlhf.audio.espeak import synthesize
    from rlhf.audio.features import resample

    i = 0
    plan = parse_controls(rollout.completions[i].split(), policy.prosody)
    raw, sr = synthesize(to_ssml(SENTENCES[0], plan, 250), rate=plan.rate, pitch=plan.pitch,
                         ssml=True)
    assert np.array_equal(rollout.extras["waveform"][i], resample(raw, sr, 16_000))


def test_log_probs_of_a_rollout_equal_old_logp_and_reference_at_start(policy, rollout):
    assert_scores_its_own_samples(policy, rollout)
    mask = rollout.completion_mask.bool()
    assert (rollout.old_logp[mask] < 0).all() and (rollout.old_logp[~mask] == 0).all()
    # the restricted distribution: control tokens + end token sum to 1
    n_allowed = int(policy.allowed.sum())
    ent = policy.entropy(rollout)
    assert torch.isfinite(ent).all()
    assert float(ent[mask].max()) <= float(np.log(n_allowed)) + 1e-4


def test_a_dataset_text_column_is_not_overwritten(policy):
    r = policy.generate(["the cat sat"], 2, {"text": ["intended words"]})
    assert "text" not in r.extras and r.columns["text"] == ["intended words"] * 2


def test_save_and_reload_keep_the_control_tokens(policy, rollout, tmp_path):
    policy.save(tmp_path / "model")
    again = build_policy(str(tmp_path / "model"), options().policy, need_reference=False)
    assert again.id_to_control == policy.id_to_control
    torch.testing.assert_close(again.log_probs(rollout, grad=False), rollout.old_logp,
                               atol=1e-5, rtol=0)


def test_engine_step_runs_with_the_adapter(tmp_path):
    from tests.unit.policies.engine_step import run_engine_step

    c, stats = run_engine_step(options(), SENTENCES)
    assert not torch.isnan(c.rewards).any()
    assert np.isfinite(stats["policy_loss"])
