"""Tests for rlhf.engine.dynamic_sampling (DAPO dynamic sampling, arXiv 2503.14476)."""

from __future__ import annotations

import math

import pytest
import torch

from rlhf.engine.dynamic_sampling import GroupBuffer, keep_mask


def test_keep_mask_binary_rewards_drops_all_right_and_all_wrong():
    rewards = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1.0])
    assert keep_mask(rewards, 4).tolist() == [False, False, True, True]


def test_keep_mask_continuous_rewards_uses_std_not_mean_range():
    rewards = torch.tensor([0.5, 0.5, 0.5, 0.5000001, 0.2, 0.9, 0.7, 0.7], dtype=torch.float64)
    assert keep_mask(rewards, 2).tolist() == [False, True, True, False]
    # float32 too: [0.5, 0.5000001] is representable as distinct values and is kept
    assert keep_mask(rewards.float(), 2).tolist() == [False, True, True, False]
    # equal float32 values that do not sum exactly (0.1 * 3) are still dropped
    assert keep_mask(torch.full((3,), 0.1), 3).tolist() == [False]


def test_keep_mask_edge_cases():
    assert keep_mask(torch.tensor([0.3, 0.4]), 1).tolist() == [False, False]
    assert keep_mask(torch.tensor([float("nan"), 1.0, 0.0, 1.0]), 2).tolist() == [False, True]
    with pytest.raises(ValueError, match="divisible"):
        keep_mask(torch.zeros(5), 2)


def test_group_buffer_refills_across_rounds_and_takes_exact_size():
    buf = GroupBuffer(target_groups=3, max_rounds=5)
    # round 1: a = all right (drop), b = mixed (keep), c = all wrong (drop)
    assert buf.add(["a", "b", "c"], torch.tensor([1, 1, 0, 1, 0, 0.0]), group_size=2) == 1
    assert not buf.full and not buf.done and buf.rounds == 1
    # round 2: d, e kept; f dropped -> 3 kept, full
    assert buf.add(["d", "e", "f"], torch.tensor([0, 1, 1, 0, 1, 1.0]), group_size=2) == 2
    assert buf.full and buf.done
    assert buf.take() == ["b", "d", "e"]
    assert buf.stats() == {
        "kept_fraction": 0.5,
        "rounds": 2,
        "generated_per_kept": 2.0,
        "groups_generated": 6,
        "groups_kept": 3,
        "groups_surplus": 0,
        "filled": True,
    }
    with pytest.raises(RuntimeError, match="full"):
        buf.add(["g"], torch.tensor([0, 1.0]), group_size=2)


def test_group_buffer_drops_and_counts_surplus():
    buf = GroupBuffer(target_groups=2, max_rounds=3)
    buf.add([0, 1, 2, 3], torch.tensor([0, 1, 1, 0, 0, 0, 1, 0.5]), group_size=2)
    assert buf.take() == [0, 1]
    stats = buf.stats()
    assert stats["groups_kept"] == 3 and stats["groups_surplus"] == 1
    assert stats["kept_fraction"] == pytest.approx(3 / 4)
    assert stats["generated_per_kept"] == pytest.approx(4 / 3)
    assert stats["filled"] is True and stats["rounds"] == 1


def test_group_buffer_max_rounds_reached_returns_fewer():
    buf = GroupBuffer(target_groups=4, max_rounds=2)
    buf.add(["a", "b"], torch.tensor([1, 1, 0, 1.0]), group_size=2)
    buf.add(["c", "d"], torch.tensor([0, 0, 1, 1.0]), group_size=2)
    assert buf.done and not buf.full
    assert buf.take() == ["b"]
    stats = buf.stats()
    assert stats["filled"] is False and stats["rounds"] == 2
    assert stats["kept_fraction"] == pytest.approx(1 / 4) and stats["generated_per_kept"] == 4.0
    with pytest.raises(RuntimeError, match="out of rounds"):
        buf.add(["e"], torch.tensor([0, 1.0]), group_size=2)


def test_group_buffer_nothing_kept_and_argument_checks():
    buf = GroupBuffer(target_groups=1, max_rounds=1)
    assert buf.stats()["kept_fraction"] == 0.0
    buf.add(["a"], torch.tensor([1, 1.0]), group_size=2)
    assert buf.take() == []
    assert math.isinf(buf.stats()["generated_per_kept"])
    with pytest.raises(ValueError, match="2 groups but 1"):
        GroupBuffer(1, 1).add(["a", "b"], torch.tensor([1, 0.0]), group_size=2)
    with pytest.raises(ValueError, match="target_groups"):
        GroupBuffer(0, 1)
    with pytest.raises(ValueError, match="max_rounds"):
        GroupBuffer(1, 0)
