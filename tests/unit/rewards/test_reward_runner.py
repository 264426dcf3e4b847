"""The reward runner: process pools, timeouts and concurrent async rewards, for real."""

import os
import time

import pytest

from rewards.compose import CompositeReward
from rewards.spec import RewardSpec

FN = "tests.unit.rewards.slow_rewards"


def test_workers_score_in_other_processes_in_order():
    with CompositeReward([RewardSpec(name=f"{FN}:pid_reward", workers=2),
                          RewardSpec(name=f"{FN}:slow_len", workers=2, params={"delay": 0.0},
                                     weight=0.0)]) as design:
        completions = ["a", "bb", "ccc", "dddd", "eeeee"]
        result = design.score(["p"] * 5, completions)
    pids = set(result.components[f"{FN}:pid_reward"])
    assert os.getpid() not in pids and len(pids) >= 1
    assert result.components[f"{FN}:slow_len"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_timeout_stops_reward_and_rows_get_none():
    with CompositeReward([RewardSpec(name=f"{FN}:sleepy", timeout=3.0),
                          RewardSpec(name="synthetic.sentiment")]) as design:
        start = time.monotonic()
        result = design.score(["p", "p"], [" good", " bad"])
        elapsed = time.monotonic() - start
    assert elapsed < 15  # the 30 s reward was stopped
    assert result.components[f"{FN}:sleepy"] == [None, None]
    assert "timeout" in result.errors[f"{FN}:sleepy"][0]
    assert result.values == [1.0, -1.0]  # the other reward still counts


def test_async_rewards_are_awaited_concurrently():
    specs = [RewardSpec(name=f"{FN}:async_len", params={"delay": 0.5}),
             RewardSpec(name=f"{FN}:async_len", params={"delay": 0.5}, weight=2.0)]
    with CompositeReward(specs) as design:
        start = time.monotonic()
        result = design.score(["p"], ["abc"])
        elapsed = time.monotonic() - start
    assert result.values == [pytest.approx(9.0)]
    assert elapsed < 0.9  # two 0.5 s rewards overlapped


def test_async_timeout():
    specs = [RewardSpec(name=f"{FN}:async_len", params={"delay": 5}, timeout=0.2)]
    with CompositeReward(specs) as design:
        result = design.score(["p"], ["abc"])
    assert result.values == [None]
    assert "timeout" in result.errors[f"{FN}:async_len"][0]
