"""The run directory and its ``state.json``: which stages finished, their results, MLflow run ids.

Layout of a run directory::

    <run_dir>/recipe.yaml      the resolved recipe (every default filled in)
    <run_dir>/state.json       {"recipe", "parent_run_id", "stages": {name: {...}}}
    <run_dir>/<stage>/         everything a stage writes (outputs, checkpoints, result.json)
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.errors import UserError

STATE_FILE = "state.json"
RECIPE_FILE = "recipe.yaml"
FINISHED, RUNNING, FAILED, INTERRUPTED = "finished", "running", "failed", "interrupted"


@dataclass
class RunState:
    recipe: str
    parent_run_id: str | None = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def finished(self, stage: str) -> bool:
        return self.stages.get(stage, {}).get("status") == FINISHED

    def update(self, stage: str, **values: Any) -> None:
        self.stages.setdefault(stage, {}).update(values)


def new_run_dir(recipe_name: str, base: Path = Path("runs")) -> Path:
    """``runs/<recipe>/<YYYYmmdd-HHMMSS>``, with a suffix if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = base / recipe_name / stamp
    n = 2
    while candidate.exists():
        candidate = base / recipe_name / f"{stamp}-{n}"
        n += 1
    return candidate


def load_state(run_dir: Path) -> RunState:
    path = run_dir / STATE_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no {STATE_FILE}); nothing to resume")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: corrupt state file ({exc.msg}, line {exc.lineno})") from None
    return RunState(data.get("recipe", ""), data.get("parent_run_id"), data.get("stages", {}))


def save_state(run_dir: Path, state: RunState) -> None:
    """Write ``state.json`` atomically (a crash never leaves half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(
        {"recipe": state.recipe, "parent_run_id": state.parent_run_id, "stages": state.stages},
        indent=2), encoding="utf-8")
    os.replace(tmp, run_dir / STATE_FILE)


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(stage_dir: Path) -> Path | None:
    """The ``checkpoint-<step>`` directory with the highest step under ``stage_dir``, if any."""
    if not stage_dir.is_dir():
        return None
    found = []
    for root in (stage_dir, stage_dir / "checkpoints"):
        if root.is_dir():
            for p in root.iterdir():
                m = _CKPT.match(p.name)
                if m and p.is_dir():
                    found.append((int(m.group(1)), p))
    return max(found)[1] if found else None
