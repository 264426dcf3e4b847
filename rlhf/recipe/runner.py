"""Run a validated recipe: stage by stage, tracked in MLflow, resumable from ``state.json``.

In a multi-process job (``distributed.num_processes`` > 1, launched by ``rlhf run``) every rank
runs this too: rank 0 alone tracks in MLflow, writes ``state.json`` / ``recipe.yaml`` /
``result.json`` and prints; the other ranks use a disabled tracker and a silent console. Stages
that are data-parallel (the RL engine's and the TRL trainers') run on every rank; any other stage
(data generation, evaluation) runs on rank 0 while the others wait. Barriers between stages make
sure that no rank reads a stage's outputs before they exist.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from rlhf.engine import distributed as dist
from rlhf.errors import UserError
from rlhf.recipe.run_state import (
    FAILED, FINISHED, INTERRUPTED, RECIPE_FILE, RUNNING, RunState, latest_checkpoint, load_state,
    new_run_dir, save_state,
)
from rlhf.recipe.schema import DistributedConfig, Recipe, ResolvedStage
from rlhf.stages.base import StageContext, StageResult, StageWaiting


@dataclass
class RunOutcome:
    """The result of a recipe run: where it lives, each stage's result, and the tracking store."""

    run_dir: Path
    results: dict[str, StageResult]
    skipped: list[str]
    tracking_uri: str | None
    parent_run_id: str | None


def stage_rewards(stage: ResolvedStage) -> list[dict[str, Any]]:
    """The reward design of a stage, as ``[{name, weight, params}]`` (for the fingerprint)."""
    rewards = getattr(stage.options, "rewards", None) or []
    return [r.model_dump(mode="json") if hasattr(r, "model_dump") else dict(r) for r in rewards]


def data_parallel(stage: ResolvedStage) -> bool:
    """Whether every rank runs the stage: the RL engine's stages and the TRL-backed trainers."""
    is_rl = hasattr(stage.options, "prompts_per_step")
    return is_rl or any(t.startswith("trl:") for t in stage.spec.passthrough.values())


def check_resume_matches(recipe: Recipe, run_dir: Path) -> None:
    """A resumed run must use the same resolved recipe it started with."""
    saved_path = run_dir / RECIPE_FILE
    if not saved_path.is_file():
        return
    from rlhf.tracking import flatten

    saved_raw = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    saved_raw.setdefault("distributed", DistributedConfig().model_dump(mode="json"))  # older runs
    saved = flatten(saved_raw)
    now = flatten(recipe.to_dict())
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
        raise UserError(
            f"{run_dir}: the recipe differs from the one this run started with ({shown}); "
            "resume without a recipe argument to use the saved one, or start a new run"
        )


def _build_presets(recipe: Recipe) -> None:
    """Build the tiny model presets that the recipe names, before several ranks load them.

    transformers' ``save_pretrained`` writes nothing on a rank other than 0, so a preset built by
    another rank would lack its weights: rank 0 builds them all first, while the others wait."""
    from rlhf.models.tiny import SPEC_PREFIX, preset_path

    def strings(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        items = value.values() if isinstance(value, dict) else value
        return [s for v in items for s in strings(v)] if isinstance(value, (dict, list)) else []

    for spec in sorted({s for s in strings(recipe.to_dict()) if s.startswith(SPEC_PREFIX)}):
        preset_path(spec)


def _save(run_dir: Path, state: RunState) -> None:
    if dist.is_main():
        save_state(run_dir, state)


def run_recipe(recipe: Recipe, run_dir: Path | None = None, resume: bool = False,
               console: Console | None = None, debug: bool = False,
               tags: Mapping[str, Any] | None = None, run_name: str | None = None) -> RunOutcome:
    """Run every stage not yet finished. ``resume`` requires ``run_dir`` to hold a state file.

    ``tags``: extra MLflow tags of the parent run (values become strings), e.g. the
    ``rlhf.sweep`` / ``rlhf.variant`` / ``rlhf.seed`` of a sweep run (``rlhf run --tag k=v``).
    They are set again on resume; the runner's own tags (``rlhf.recipe``, ``rlhf.run_dir``,
    ``rlhf.reward_fingerprint``) win over an extra tag of the same key. ``run_name``: the parent
    run's MLflow name (default ``<recipe>/<run dir name>``)."""
    from rlhf.launch import check_machine
    from rlhf.tracking import RecipeTracker, flatten, redact_tree, resolve_uri, reward_fingerprint

    check_machine(recipe)
    dist.init()
    main = dist.is_main()
    console = (console or Console(stderr=True)) if main else Console(quiet=True)
    if resume:
        if run_dir is None:
            raise UserError("--resume needs the run directory to resume")
        state = load_state(run_dir)
        check_resume_matches(recipe, run_dir)
    else:
        run_dir = dist.broadcast(run_dir or new_run_dir(recipe.name))
        if (run_dir / "state.json").exists():
            raise UserError(f"{run_dir}: already holds a run; use --resume {run_dir} to continue it")
        state = RunState(recipe.name)
    if main and dist.world_size() > 1:
        _build_presets(recipe)
    dist.barrier()  # every rank has checked the run directory before rank 0 writes into it
    resolved = recipe.to_dict()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RECIPE_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False),
                                           encoding="utf-8")

    all_rewards = [r for s in recipe.stages for r in stage_rewards(s)]
    uri = resolve_uri(recipe.tracking.uri) if recipe.tracking.enabled else None
    tracker = RecipeTracker(
        uri, recipe.tracking.experiment or recipe.name,
        run_name=run_name or f"{recipe.name}/{run_dir.name}",
        tags={**dict(tags or {}),
              "rlhf.recipe": recipe.name, "rlhf.run_dir": str(run_dir.resolve()),
              "rlhf.reward_fingerprint": reward_fingerprint(all_rewards)},
        enabled=recipe.tracking.enabled and main)
    state.parent_run_id = tracker.start(resume_run_id=state.parent_run_id) if main else None
    _save(run_dir, state)
    tracker.log_params(flatten(resolved))
    tracker.log_text(yaml.safe_dump(redact_tree(resolved), sort_keys=False), RECIPE_FILE)

    results: dict[str, StageResult] = {}
    skipped: list[str] = []
    status = "FINISHED"
    dist.configure(recipe.distributed)
    try:
        for stage in recipe.stages:
            if state.finished(stage.name):
                results[stage.name] = StageResult.from_json(state.stages[stage.name]["result"])
                skipped.append(stage.name)
                console.print(f"[dim]· {stage.name} ({stage.kind}): finished earlier, skipped[/dim]")
                continue
            results[stage.name] = _run_stage(recipe, stage, run_dir, state, tracker, console, debug)
    except (KeyboardInterrupt, StageWaiting):
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        dist.configure(None)
        tracker.end(status)
    return RunOutcome(run_dir, results, skipped, uri, state.parent_run_id)


def _run_stage(recipe: Recipe, stage: ResolvedStage, run_dir: Path, state: RunState,
               tracker: Any, console: Console, debug: bool) -> StageResult:
    from rlhf.tracking import flatten, reward_fingerprint

    main = dist.is_main()
    stage_dir = run_dir / stage.name
    stage_dir.mkdir(parents=True, exist_ok=True)
    previous = state.stages.get(stage.name, {})
    checkpoint = latest_checkpoint(stage_dir) if previous else None
    dist.barrier()  # every rank found the same checkpoint before any rank writes a new one
    tags = {"rlhf.reward_fingerprint": reward_fingerprint(stage_rewards(stage)),
            "rlhf.recipe": recipe.name}
    stage_tracker = tracker.stage(stage.name, stage.kind, tags=tags,
                                  resume_run_id=previous.get("mlflow_run_id"))
    state.update(stage.name, status=RUNNING, kind=stage.kind, mlflow_run_id=stage_tracker.run_id)
    _save(run_dir, state)
    stage_tracker.log_params(flatten(stage.to_dict()))
    where = f" from {checkpoint.name}" if checkpoint else ""
    console.print(f"[bold]▶ {stage.name}[/bold] ({stage.kind}){where}")
    _print_distributed_note(recipe, stage, console)
    ctx = StageContext(stage.name, stage.kind, run_dir, stage_dir, recipe.seed, stage_tracker,
                       checkpoint, debug)
    try:
        result = stage.spec.run(ctx, stage.options) if main or data_parallel(stage) else None
    except KeyboardInterrupt:
        state.update(stage.name, status=INTERRUPTED)
        _save(run_dir, state)
        stage_tracker.close("KILLED")
        raise
    except StageWaiting as exc:  # waits for people: stopped cleanly, resumed later
        state.update(stage.name, status=INTERRUPTED, waiting=str(exc)[:2000])
        _save(run_dir, state)
        stage_tracker.close("KILLED")
        raise
    except BaseException as exc:
        state.update(stage.name, status=FAILED, error=str(exc)[:2000])
        _save(run_dir, state)
        name = "error.txt" if main else f"error-rank{dist.rank()}.txt"
        (stage_dir / name).write_text(traceback.format_exc(), encoding="utf-8")
        stage_tracker.close("FAILED")
        raise
    if main:
        _finish_stage(stage, stage_dir, result, stage_tracker)
    else:
        stage_tracker.close("FINISHED")
    # rank 0's result on every rank; and no rank goes on before rank 0 wrote the stage's outputs
    result = dist.broadcast(result)
    state.update(stage.name, status=FINISHED, result=result.to_json())
    state.stages[stage.name].pop("error", None)
    state.stages[stage.name].pop("waiting", None)
    _save(run_dir, state)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in list(result.metrics.items())[:4])
    console.print(f"  [green]✓[/green] {stage.name}: {shown}", soft_wrap=True)
    return result


def _finish_stage(stage: ResolvedStage, stage_dir: Path, result: StageResult,
                  stage_tracker: Any) -> None:
    """Rank 0: final metrics, ``result.json`` and the end of the stage's MLflow run."""
    if result.metrics:
        history = getattr(stage_tracker, "history", None) or {}
        last_step = max((pts[-1][0] for pts in history.values() if pts), default=0)
        stage_tracker.log_metrics(result.metrics, step=last_step)
    (stage_dir / "result.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    stage_tracker.log_dict(result.to_json(), "result.json")
    stage_tracker.close("FINISHED")


def _print_distributed_note(recipe: Recipe, stage: ResolvedStage, console: Console) -> None:
    """Say how a multi-process run treats this stage, where it is not the obvious way."""
    config, world = recipe.distributed, dist.world_size()
    if world == 1:
        return
    if not data_parallel(stage):
        console.print(f"  [dim]runs on rank 0 alone; the other {world - 1} wait[/dim]")
    elif hasattr(stage.options, "prompts_per_step") and (
            config.deepspeed or config.mixed_precision != "no"):
        console.print("  [dim]the RL engine trains plain data-parallel in float32; "
                      "distributed.deepspeed / mixed_precision apply to the TRL stages[/dim]")
