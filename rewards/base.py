"""The reward contract, the :class:`Reward` base class and the one registry of rewards.

Contract (TRL's): ``fn(prompts, completions, **columns) -> list[float | None]``; dataset columns
and ``completion_ids`` arrive as keyword arguments, one list entry per completion. ``None`` means
"could not score": it is counted and excluded, never silently turned into 0.

Library rewards subclass :class:`Reward`: typed parameters (a pydantic model), declared columns,
a value range, and per-row details (the raw metric behind the reward, e.g. ``{"wer": 0.25}``).
A row that raises is scored ``None`` with the error in its details; the batch goes on. Users'
plain functions given as ``"module:function"`` work too (wrapped by :class:`FunctionReward`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from rlhf.errors import UserError
from rlhf.registry import Registry


class RewardParams(BaseModel):
    """Base of every reward's parameters: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Scored:
    """One row's result: the reward (``None`` = not scored) and the raw metrics behind it."""

    value: float | None
    details: dict[str, Any] = field(default_factory=dict)


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of chat messages (TRL's conversational
    form, a list of ``{"role", "content"}``; the assistant messages' content joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        parts = [m.get("content", "") for m in completion
                 if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return "".join(p if isinstance(p, str) else str(p) for p in parts)
    if isinstance(completion, dict) and "content" in completion:
        return str(completion["content"])
    return str(completion)


def row_columns(columns: dict[str, Any], index: int) -> dict[str, Any]:
    """The keyword columns of one row (list-valued columns indexed, scalars passed as they are)."""
    out = {}
    for key, value in columns.items():
        if isinstance(value, (list, tuple)):
            out[key] = value[index] if index < len(value) else None
        else:
            out[key] = value
    return out


class Reward:
    """Base class of library rewards. Subclasses set the class attributes and implement
    :meth:`score_row` (or :meth:`score_batch` when batching pays off)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = ()
    """Columns every row must have (checked before scoring)."""
    optional_columns: ClassVar[tuple[str, ...]] = ()
    value_range: ClassVar[tuple[float, float]] = (0.0, 1.0)
    Params: ClassVar[type[RewardParams]] = RewardParams

    def __init__(self, **params: Any) -> None:
        try:
            self.params = self.Params(**params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(params)'}: {e['msg']}"
                for e in exc.errors())
            raise UserError(f"reward {self.name!r}: bad parameters: {problems}") from None

    def score_row(self, prompt: Any, completion: Any, **row: Any) -> Scored:
        raise NotImplementedError

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        """Score every row; a row that raises gets ``None`` and ``details.error``."""
        out = []
        for i, completion in enumerate(completions):
            prompt = prompts[i] if i < len(prompts) else None
            try:
                out.append(self.score_row(prompt, completion, **row_columns(columns, i)))
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop a batch
                out.append(Scored(None, {"error": f"{type(exc).__name__}: {exc}"}))
        return out

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any],
                 **columns: Any) -> list[float | None]:
        return [s.value for s in self.score_batch(prompts, completions, **columns)]


class FunctionReward(Reward):
    """A user's plain reward function (TRL signature) seen through the :class:`Reward` API."""

    value_range = (-math.inf, math.inf)

    def __init__(self, fn: Callable[..., Sequence[float | None]], target: str,
                 **params: Any) -> None:
        self.fn, self.target, self.bound = fn, target, params
        self.params = RewardParams()

    @property
    def label(self) -> str:
        return self.target

    def score_batch(self, prompts: Sequence[Any], completions: Sequence[Any],
                    **columns: Any) -> list[Scored]:
        values = list(self.fn(prompts, completions, **columns, **self.bound))
        if len(values) != len(completions):
            raise UserError(f"reward {self.target!r} returned {len(values)} values for "
                            f"{len(completions)} completions")
        return [Scored(None if v is None or (isinstance(v, float) and math.isnan(v))
                       else float(v)) for v in values]


REWARDS: Registry[Any] = Registry("reward")

# One table of every library reward: short name -> class (imported on first use).
for _name, _target in {
    "synthetic.sentiment": "rewards.synthetic:SentimentReward",
    "asr.wer": "rewards.verifiable.asr:WordErrorRate",
    "asr.cer": "rewards.verifiable.asr:CharErrorRate",
    "math.exact": "rewards.verifiable.math:MathExact",
    "toolcall.json": "rewards.verifiable.toolcall:ToolCallJSON",
    "format.regex": "rewards.verifiable.format:RegexFormat",
    "format.json": "rewards.verifiable.format:JSONFormat",
    "ranking.ndcg": "rewards.verifiable.ranking:NDCG",
    "ranking.recall": "rewards.verifiable.ranking:Recall",
    "length.overlong": "rewards.verifiable.length:OverlongPenalty",
    "rerank.conditional": "rewards.rerank:ConditionalRerank",
    "rerank.plain": "rewards.rerank:PlainRerank",
    "preference.model": "rewards.preference.reward:PreferenceModelReward",
    "judge.generative": "rewards.generative.reward:GenerativeJudgeReward",
    "judge.match": "rewards.generative.match:JudgmentMatch",
    "emphasis.solver": "rewards.emphasis:EmphasisSolverReward",
    "audio.duration": "rewards.audio.guards:Duration",
    "audio.clipping": "rewards.audio.guards:Clipping",
    "audio.silence": "rewards.audio.guards:Silence",
    "audio.intelligibility": "rewards.audio.intelligibility:Intelligibility",
    "dialogue.persona": "rewards.dialogue:PersonaConsistency",
    "dialogue.on_topic": "rewards.dialogue:OnTopic",
}.items():
    REWARDS.register(_name, _target)
