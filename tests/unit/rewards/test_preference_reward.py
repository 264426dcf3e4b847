"""Reward ``preference.model``: typed params, lazy once-per-process loading, pickling, scores."""

import pickle

import pytest

from rewards.base import REWARDS
from rewards.preference import reward as module
from rewards.preference.reward import PreferenceModelReward
from rewards.preference.scoring import _join
from rlhf.errors import UserError


def test_registered_and_params_are_typed():
    assert REWARDS.get("preference.model") is PreferenceModelReward
    with pytest.raises(UserError, match="path"):
        PreferenceModelReward()
    with pytest.raises(UserError, match="batch_size"):
        PreferenceModelReward(path="tiny:reward", batch_size=0)
    r = PreferenceModelReward(path="tiny:reward")
    assert (r.params.batch_size, r.params.max_length, r.params.trust_remote_code) == \
        (32, 512, False)
    assert r.value_range == (float("-inf"), float("inf"))


def test_scores_lazily_once_per_process_and_pickles_without_the_model(monkeypatch):
    from rewards.preference.scoring import score_texts

    monkeypatch.setattr(module, "_CACHE", {})
    reward = PreferenceModelReward(path="tiny:reward", batch_size=2)
    assert reward._scorer is None and not module._CACHE  # nothing loaded in __init__
    clone = pickle.loads(pickle.dumps(reward))
    prompts, completions = ["Say:", "Say:", None], [" good day.", " bad day.", " calm sea."]
    scored = reward.score_batch(prompts, completions)
    assert len(module._CACHE) == 1 and reward._scorer is not None
    model, tokenizer = reward.scorer()
    expected = score_texts(model, tokenizer, prompts, completions)
    assert [s.value for s in scored] == pytest.approx(expected, abs=1e-5)
    assert scored[0].details == {"score": scored[0].value}
    state = pickle.loads(pickle.dumps(reward))
    assert state._scorer is None  # the model never travels with the reward
    assert clone(prompts[:1], completions[:1]) == pytest.approx(expected[:1], abs=1e-5)
    assert clone._scorer[0] is model and len(module._CACHE) == 1  # shared, loaded once
    assert reward([], []) == []


def test_scoring_text_is_the_training_text():
    class Tok:
        eos_token = "<|eos|>"

    assert _join("Q:", " a.", Tok()) == "Q: a.<|eos|>"
    assert _join(None, " a.<|eos|>", Tok()) == " a.<|eos|>"  # not twice
