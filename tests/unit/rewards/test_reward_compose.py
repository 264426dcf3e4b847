"""Composite rewards: weights, gates, normalise-then-sum, clipping, None handling."""

import pytest

from rewards.compose import CompositeReward, group_ids, labels_of, z_normalise
from rewards.spec import RewardSpec
from rlhf.errors import UserError

FN = "tests.unit.rewards.slow_rewards"


def spec(name, **kw):
    return RewardSpec(name=name, **kw)


def test_weighted_sum_and_components():
    design = CompositeReward([spec("synthetic.sentiment", weight=2.0),
                              spec(f"{FN}:flaky", weight=0.5)])
    result = design.score(["p", "p"], [" good good bad", "skip"])
    # row 0: sentiment (2-1)/3, flaky 1.0 -> 2/3*2 + 0.5
    assert result.values[0] == pytest.approx(2 * (1 / 3) + 0.5)
    # row 1: sentiment of "skip" = 0 (one word, neutral); flaky None is excluded, not 0
    assert result.values[1] == pytest.approx(0.0)
    assert result.components[f"{FN}:flaky"] == [1.0, None]
    assert result.details["synthetic.sentiment"][0] == {"positive": 2, "negative": 1, "words": 3}


def test_all_none_row_is_none():
    design = CompositeReward([spec(f"{FN}:flaky")])
    assert design.score(["p"], ["skip"]).values == [None]


def test_gate_zeroes_below_threshold():
    design = CompositeReward([
        spec("synthetic.sentiment"),
        spec("format.regex", weight=0.5, params={"pattern": r" \w+.*"},
             gate={"reward": "synthetic.sentiment", "min": 0.5}),
    ])
    result = design.score(["p", "p"], [" good good", " bad good"])
    assert result.components["format.regex"] == [1.0, 0.0]  # second row gated (sentiment 0)
    assert result.values == [pytest.approx(1.5), pytest.approx(0.0)]


def test_gate_must_name_a_reward_of_the_design():
    with pytest.raises(UserError, match="gate names 'math.exact', which is not in this design"):
        CompositeReward([spec("synthetic.sentiment", gate={"reward": "math.exact", "min": 1})])


def test_normalize_then_sum_by_group_and_clip():
    values = [1.0, 2.0, 3.0, 10.0, 10.0, None]
    z = z_normalise(values, [0, 0, 0, 1, 1, 1], eps=0.0)
    assert z[:3] == [-1.0, 0.0, 1.0]  # mean 2, unbiased std 1
    assert z[3:5] == [0.0, 0.0]  # zero spread: 0, not a division by zero
    assert z[5] is None
    design = CompositeReward([spec("synthetic.sentiment")], aggregation="normalize_then_sum",
                             clip=(-0.5, 0.5))
    result = design.score(["a", "a", "b", "b"], [" good", " bad", " good", " good"], group_size=2)
    # group 0: values 1, -1: mean 0, unbiased std sqrt(2); z = ±1/sqrt(2) = ±0.707 → clipped
    assert result.values[:2] == [0.5, -0.5]
    assert result.values[2:] == [0.0, 0.0]  # equal values: z = 0


def test_groups_and_labels():
    assert group_ids(["a", "b", "a"], None) == [0, 1, 0]
    assert group_ids(["a", "b", "c", "d"], 2) == [0, 0, 1, 1]
    assert labels_of([spec("synthetic.sentiment"), spec("synthetic.sentiment")]) == \
        ["synthetic.sentiment", "synthetic.sentiment#2"]


def test_spec_rejects_unknown_reward_and_bad_params():
    with pytest.raises(ValueError, match="unknown reward 'synthetic.sentimnt'; did you mean"):
        spec("synthetic.sentimnt")
    with pytest.raises(ValueError, match="reward 'synthetic.sentiment': bad parameters"):
        spec("synthetic.sentiment", params={"nope": 1})
