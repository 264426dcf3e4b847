"""Identity tags for a run: the reward-design fingerprint and the toolkit's git commit.

The reward fingerprint is what lets two runs be compared fairly: same fingerprint, same reward
(names, weights, parameters), whatever order the recipe listed the terms in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FINGERPRINT_LENGTH = 12
NO_REWARDS = "none"
UNKNOWN_COMMIT = "unknown"
GIT_TIMEOUT_S = 5.0


def _canonical(value: Any) -> Any:
    """JSON-ready form with stable types: ints and integral floats agree (``1`` == ``1.0``),
    mappings get string keys, tuples become lists, other objects their ``str``."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if not math.isfinite(number):
            return repr(number)
        return int(number) if number == int(number) else number
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def reward_fingerprint(rewards: Sequence[Mapping[str, Any]]) -> str:
    """A 12-hex-character SHA-256 prefix of the canonical JSON of the reward terms.

    Each term is ``{"name": str, "weight": float, "params": dict}`` (other keys are included too).
    Keys are sorted and the terms themselves are sorted by their canonical JSON, so the order of
    the terms in the recipe does not change the fingerprint; a changed name, weight or parameter
    does. ``weight`` defaults to 1 and ``params`` to ``{}`` so omitting them equals writing them.
    An empty list gives ``"none"``.
    """
    if not rewards:
        return NO_REWARDS
    items = []
    for term in rewards:
        full = {"weight": 1.0, "params": {}, **dict(term)}
        items.append(_dumps(_canonical(full)))
    payload = "[" + ",".join(sorted(items)) + "]"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def source_root() -> Path:
    """The folder that holds the ``rlhf`` package (the toolkit's source tree)."""
    return Path(__file__).resolve().parent.parent.parent


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=8)
def _commit_of(root: Path) -> str:
    head = _git(root, "rev-parse", "HEAD")
    if not head or not head.strip():
        return UNKNOWN_COMMIT
    commit = head.strip()
    status = _git(root, "status", "--porcelain")
    if status is not None and status.strip():
        commit += "-dirty"
    return commit


def git_commit(root: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the toolkit's source tree (or ``root``), with ``-dirty`` appended
    when ``git status --porcelain`` lists changes; ``"unknown"`` when it is not a git checkout or
    git is missing. Each git call has a 5 s timeout and takes no index lock
    (``--no-optional-locks``); the result is cached per folder for the life of the process."""
    return _commit_of(Path(root).resolve() if root is not None else source_root())


git_commit.cache_clear = _commit_of.cache_clear  # type: ignore[attr-defined]
