"""The stage contract: typed options, a context, a result.

A stage kind is a :class:`StageSpec`: a pydantic options model (validated before any compute is
spent) and a ``run(ctx, options) -> StageResult`` function. Stage modules keep heavy imports
(torch, transformers, trl) inside ``run`` so that validating a recipe stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from rlhf.errors import RecipeError, UserError

if TYPE_CHECKING:
    from rlhf.tracking import StageTracker

REF_PREFIX = "@"


class StageWaiting(UserError):
    """A stage that cannot finish yet because it waits for people (e.g. annotators).

    The runner stops the run cleanly (the stage is marked interrupted, not failed, and no
    traceback is written); the CLI prints the message, which should say what is awaited and
    how to continue (``rlhf run --resume RUN_DIR``), and exits with code 3."""

    exit_code = 3
    label = "waiting"


class StageOptions(BaseModel):
    """Base class of every stage's options: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


@dataclass
class StageResult:
    """What a stage hands back to the runner.

    ``metrics``: final scalar results (also logged to MLflow and shown in the summary table).
    ``outputs``: named outputs, paths relative to the stage directory (e.g. ``{"model": "model"}``).
    ``summary``: short human-readable lines for the printed summary.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "outputs": self.outputs, "summary": self.summary}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StageResult":
        return cls(dict(data.get("metrics", {})), dict(data.get("outputs", {})),
                   list(data.get("summary", [])))


@dataclass
class StageContext:
    """Everything a running stage may use.

    ``stage_dir`` is ``run_dir / name``; a stage writes only there. ``checkpoint`` is the latest
    checkpoint directory found in ``stage_dir`` when resuming an interrupted stage, else None.
    """

    name: str
    kind: str
    run_dir: Path
    stage_dir: Path
    seed: int
    tracker: "StageTracker"
    checkpoint: Path | None = None
    debug: bool = False

    def resolve(self, value: str) -> str:
        """Resolve ``@stage/relative/path`` to a path in that stage's directory; else unchanged."""
        return resolve_reference(value, self.run_dir)

    def path(self, value: str) -> Path:
        """Resolve a reference or a user path to a :class:`Path`."""
        return Path(self.resolve(value)).expanduser()


def resolve_reference(value: str, run_dir: Path) -> str:
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        stage, _, rest = value[1:].partition("/")
        return str(run_dir / stage / rest) if rest else str(run_dir / stage)
    return value


def references(value: Any) -> list[str]:
    """All stage names referenced as ``@stage/...`` anywhere inside a nested value."""
    found: list[str] = []
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        found.append(value[1:].partition("/")[0])
    elif isinstance(value, dict):
        for v in value.values():
            found.extend(references(v))
    elif isinstance(value, (list, tuple)):
        for v in value:
            found.extend(references(v))
    return found


@dataclass(frozen=True)
class StageSpec:
    """A stage kind: its options model, its run function and a one-line description."""

    options: type[StageOptions]
    run: Callable[[StageContext, Any], StageResult]
    description: str
    # Option names whose values are passed through to a TRL/transformers config class, with the
    # "module:Class" whose dataclass fields define the valid keys (checked before compute).
    passthrough: dict[str, str] = field(default_factory=dict)


def check_passthrough(block: dict[str, Any], config_target: str, where: str) -> None:
    """Check the keys of a pass-through ``trainer:`` block against a dataclass config's fields."""
    import dataclasses

    from rlhf.errors import did_you_mean
    from rlhf.registry import import_target

    cls = import_target(config_target, "trainer config")
    valid = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in block:
        if key not in valid:
            raise RecipeError(
                f"{where}.{key}: unknown option of {cls.__name__}; {did_you_mean(key, valid)}"
            )
