"""Reward fingerprint (hand-checked canonical form) and the toolkit git commit."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from rlhf.tracking import fingerprint
from rlhf.tracking.fingerprint import git_commit, reward_fingerprint

WER = {"name": "wer", "weight": 1.0, "params": {"normalize": True}}
LENGTH = {"name": "length", "weight": 0.1, "params": {"max": 512}}


def test_empty_is_none() -> None:
    assert reward_fingerprint([]) == "none"


def test_hand_checked_canonical_json() -> None:
    # sorted keys, compact separators, integral floats written as ints, items sorted
    canonical = '[{"name":"wer","params":{"normalize":true},"weight":1}]'
    expected = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    assert reward_fingerprint([WER]) == expected
    assert re.fullmatch(r"[0-9a-f]{12}", expected)


def test_order_insensitive_and_key_order_insensitive() -> None:
    a = reward_fingerprint([WER, LENGTH])
    b = reward_fingerprint([LENGTH, WER])
    c = reward_fingerprint([{"params": {"max": 512}, "weight": 0.1, "name": "length"}, WER])
    assert a == b == c


def test_changes_change_it() -> None:
    base = reward_fingerprint([WER, LENGTH])
    assert reward_fingerprint([WER, {**LENGTH, "weight": 0.2}]) != base
    assert reward_fingerprint([WER, {**LENGTH, "params": {"max": 256}}]) != base
    assert reward_fingerprint([WER, {**LENGTH, "name": "length2"}]) != base
    assert reward_fingerprint([WER]) != base


def test_defaults_and_numeric_forms() -> None:
    assert reward_fingerprint([{"name": "wer"}]) == reward_fingerprint(
        [{"name": "wer", "weight": 1, "params": {}}]
    )
    assert reward_fingerprint([{"name": "a", "weight": 2}]) == reward_fingerprint(
        [{"name": "a", "weight": 2.0}]
    )


@pytest.fixture(autouse=True)
def _fresh_cache():
    git_commit.cache_clear()
    yield
    git_commit.cache_clear()


def test_git_commit_of_source_tree_has_a_valid_form() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", git_commit())


def test_git_commit_outside_a_checkout(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"


def test_git_commit_dirty_and_missing_git(monkeypatch, tmp_path: Path) -> None:
    def fake_run(cmd, **kwargs):
        assert "--no-optional-locks" in cmd and kwargs["timeout"] > 0
        out = "a" * 40 + "\n" if "rev-parse" in cmd else " M rlhf/x.py\n"
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(fingerprint.subprocess, "run", fake_run)
    assert git_commit(tmp_path) == "a" * 40 + "-dirty"

    def no_git(cmd, **kwargs):
        raise FileNotFoundError("git")

    git_commit.cache_clear()
    monkeypatch.setattr(fingerprint.subprocess, "run", no_git)
    assert git_commit(tmp_path) == "unknown"

    def slow_git(cmd, **kwargs):
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    git_commit.cache_clear()
    monkeypatch.setattr(fingerprint.subprocess, "run", slow_git)
    assert git_commit(tmp_path) == "unknown"
