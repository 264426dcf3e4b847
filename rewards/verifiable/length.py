"""``length.overlong``: DAPO's soft overlong punishment (Yu et al., 2025, arXiv 2503.14476,
"Overlong Reward Shaping").

With ``L`` the completion length, ``L_max = max_len`` and ``L_cache = cache`` (same unit as ``L``):

- ``0`` if ``L <= L_max - L_cache``;
- ``((L_max - L_cache) - L) / L_cache`` if ``L_max - L_cache < L <= L_max`` (linear from 0
  down to exactly -1 at ``L = L_max``);
- ``-1`` if ``L > L_max``.

With ``cache = 0`` the middle region is empty: 0 up to ``max_len``, -1 beyond. The penalty is
added to the task reward (give it weight 1 in the design). The unit of ``L`` (param ``unit``):

- ``tokens`` (default): ``len(completion_ids[i])`` from the ``completion_ids`` column (TRL passes
  it); when a row has no ``completion_ids``, characters are counted instead and
  ``details.unit_used`` says ``"chars"`` (with ``details.note``);
- ``chars``: ``len(text)`` in Unicode code points;
- ``words``: the number of whitespace-separated words.

Defaults are DAPO's: ``max_len = 20480`` tokens with ``cache = 4096`` (16,384 expected tokens plus
a 4,096-token soft buffer).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from rewards.base import Reward, RewardParams, Scored, completion_text


def overlong_penalty(length: int, max_len: int, cache: int) -> float:
    """DAPO's soft overlong penalty in ``[-1, 0]`` of a length ``length`` (same unit as
    ``max_len`` and ``cache``)."""
    soft_start = max_len - cache
    if length <= soft_start:
        return 0.0
    if length <= max_len:
        return (soft_start - length) / cache
    return -1.0


class OverlongParams(RewardParams):
    """Parameters of ``length.overlong``."""

    max_len: int = Field(20480, gt=0, description="L_max: lengths above it get -1 (in `unit`).")
    cache: int = Field(4096, ge=0, description="L_cache: the soft region (max_len - cache, "
                       "max_len] where the penalty falls linearly from 0 to -1 (in `unit`).")
    unit: Literal["tokens", "chars", "words"] = Field(
        "tokens", description="Length unit: 'tokens' (len of completion_ids; characters when "
        "that column is absent), 'chars' or 'words'.")

    @model_validator(mode="after")
    def _cache_below_max(self) -> "OverlongParams":
        if self.cache >= self.max_len:
            raise ValueError(f"cache ({self.cache}) must be smaller than max_len ({self.max_len})")
        return self


class OverlongPenalty(Reward):
    """DAPO soft overlong punishment: 0, then linearly down to -1 in the last ``cache`` units."""

    name = "length.overlong"
    description = "DAPO soft overlong penalty: 0 up to max_len-cache, linear to -1 at max_len"
    optional_columns = ("completion_ids",)
    value_range = (-1.0, 0.0)
    Params = OverlongParams

    def length(self, completion: Any, completion_ids: Any) -> tuple[int, str, dict[str, Any]]:
        """``(length, unit used, extra details)`` of one completion."""
        unit = self.params.unit
        if unit == "tokens":
            if completion_ids is not None:
                return len(completion_ids), "tokens", {}
            return len(completion_text(completion)), "chars", {
                "note": "no completion_ids: length counted in characters"}
        text = completion_text(completion)
        return (len(text) if unit == "chars" else len(text.split())), unit, {}

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        length, unit_used, extra = self.length(completion, row.get("completion_ids"))
        value = overlong_penalty(length, self.params.max_len, self.params.cache)
        return Scored(value, {"length": length, "unit_used": unit_used, **extra})
