"""Run a sweep: every variant x seed as an ordinary recipe run, tracked, resumable.

Layout::

    runs/sweeps/<sweep_id>/sweep.json               the sweep state (below)
    runs/sweeps/<sweep_id>/<variant>/seed-<n>/      an ordinary run directory (state.json, ...)

``sweep.json`` holds the sweep id, its file and, per run (``<variant>/seed-<n>``): variant, seed,
overrides, run directory, status (``pending``, ``running``, ``finished``, ``failed``,
``interrupted``), the MLflow parent run id, the error of a failed run and its wall time. It is
rewritten atomically after every change, so a killed sweep leaves a readable file.

Each run's parent MLflow run is tagged ``rlhf.sweep`` (the sweep id), ``rlhf.sweep_name``,
``rlhf.variant`` and ``rlhf.seed``; the runner adds ``rlhf.reward_fingerprint`` itself.

With ``parallel == 1`` the runs go one after the other in this process (``run_recipe``); with
``parallel > 1`` (or a multi-process recipe) each run is a subprocess ``rlhf run RECIPE
OVERRIDES --run-dir DIR --tag ...`` (its output in ``<run dir>/sweep-run.log``), ``parallel`` at
a time, each with ``OMP_NUM_THREADS`` = cores / parallel unless set. A failed run is recorded and
the sweep goes on. ``resume`` reruns only the runs not finished: one with a run directory
continues it (``rlhf run --resume``: finished stages skipped, an interrupted stage from its last
checkpoint), one never started starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from rlhf.errors import UserError
from rlhf.recipe.run_state import STATE_FILE
from rlhf.sweep.spec import PlannedRun, Sweep

SWEEP_FILE = "sweep.json"
SWEEPS_BASE = Path("runs") / "sweeps"
PENDING, RUNNING, FINISHED, FAILED, INTERRUPTED = (
    "pending", "running", "finished", "failed", "interrupted")
RUN_LOG = "sweep-run.log"

SWEEP_TAG, SWEEP_NAME_TAG, VARIANT_TAG, SEED_TAG = (
    "rlhf.sweep", "rlhf.sweep_name", "rlhf.variant", "rlhf.seed")


def new_sweep_id(name: str, base: Path = SWEEPS_BASE) -> str:
    """``<name>-<YYYYmmdd-HHMMSS>``, with a suffix if that directory exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = f"{name}-{stamp}", 2
    while (base / candidate).exists():
        candidate, n = f"{name}-{stamp}-{n}", n + 1
    return candidate


def latest_sweep_id(name: str, base: Path = SWEEPS_BASE) -> str | None:
    """The newest sweep directory under ``base`` whose state names sweep ``name``."""
    found = []
    if base.is_dir():
        for path in base.glob(f"*/{SWEEP_FILE}"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if data.get("name") == name:
                found.append((path.stat().st_mtime, path.parent.name))
    return max(found)[1] if found else None


@dataclass
class SweepState:
    """``sweep.json``: the sweep's identity and the status of each run."""

    sweep_id: str
    name: str
    source: str
    recipe: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: Path | None = None
    tracking_uri: str | None = None
    """Where the runs are tracked (``rlhf compare --sweep ID`` reads it from here)."""
    experiment: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path: Path) -> SweepState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path.parent}: no {SWEEP_FILE}; nothing to resume") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: corrupt sweep state ({exc.msg})") from None
        return cls(data["sweep_id"], data["name"], data.get("source", ""), data.get("recipe", ""),
                   data.get("runs", {}), path, data.get("tracking_uri"), data.get("experiment"))

    def update(self, key: str, **values: Any) -> None:
        with self._lock:
            self.runs.setdefault(key, {}).update(values)
            self._save()

    def save(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(SWEEP_FILE + ".tmp")
        tmp.write_text(json.dumps({"sweep_id": self.sweep_id, "name": self.name,
                                   "source": self.source, "recipe": self.recipe,
                                   "tracking_uri": self.tracking_uri,
                                   "experiment": self.experiment, "runs": self.runs}, indent=2),
                       encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass
class SweepOutcome:
    sweep_id: str
    directory: Path
    runs: dict[str, dict[str, Any]]
    ran: list[str]
    """Keys of the runs this call ran (the others had finished before)."""

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.runs.items() if r.get("status") != FINISHED]


def run_tags(sweep_id: str, sweep: Sweep, run: PlannedRun) -> dict[str, str]:
    return {SWEEP_TAG: sweep_id, SWEEP_NAME_TAG: sweep.name, VARIANT_TAG: run.variant,
            SEED_TAG: str(run.seed)}


def prepare(sweep: Sweep, runs: list[PlannedRun], resume: bool, sweep_id: str | None = None,
            base: Path = SWEEPS_BASE) -> SweepState:
    """The sweep's state: a new one, or (``resume``) the saved one of ``sweep_id`` (default: the
    newest sweep of this name), checked against the file: a run's overrides must be unchanged;
    variants or seeds added to the file are added as pending runs."""
    if resume:
        sweep_id = sweep_id or latest_sweep_id(sweep.name, base)
        if sweep_id is None:
            raise UserError(f"no sweep named {sweep.name!r} under {base} to resume; "
                            "run it without --resume first")
        state = SweepState.load(base / sweep_id / SWEEP_FILE)
        for run in runs:
            saved = state.runs.get(run.key)
            if saved is not None and saved.get("overrides") != run.overrides:
                raise UserError(
                    f"{state.path}: run {run.key} was started with other overrides than the "
                    f"sweep file now gives ({saved.get('overrides')} vs {run.overrides}); "
                    "start a new sweep instead of --resume")
    else:
        sweep_id = sweep_id or new_sweep_id(sweep.name, base)
        if (base / sweep_id / SWEEP_FILE).exists():
            raise UserError(f"{base / sweep_id}: holds a sweep already; use --resume")
        state = SweepState(sweep_id, sweep.name, sweep.source, sweep.recipe,
                           path=base / sweep_id / SWEEP_FILE)
    if runs:
        from rlhf.tracking import resolve_uri

        first = runs[0].recipe
        state.tracking_uri = resolve_uri(first.tracking.uri)
        state.experiment = first.tracking.experiment or first.name
    for run in runs:
        if run.key not in state.runs:
            state.runs[run.key] = {"variant": run.variant, "seed": run.seed,
                                   "overrides": run.overrides, "fingerprint": run.fingerprint,
                                   "run_dir": str(base / sweep_id / run.variant /
                                                  f"seed-{run.seed}"),
                                   "status": PENDING}
    state.save()
    return state


def _run_info(run_dir: Path) -> tuple[str | None, str | None]:
    """(MLflow parent run id, error of the failed stage) from a run directory's state file."""
    try:
        data = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None, None
    errors = [f"stage {name}: {s['error']}" for name, s in data.get("stages", {}).items()
              if s.get("status") == "failed" and s.get("error")]
    return data.get("parent_run_id"), (errors[0] if errors else None)


def _in_process(sweep: Sweep, state: SweepState, run: PlannedRun, console: Console,
                debug: bool) -> tuple[bool, str | None]:
    from rlhf.recipe.runner import run_recipe

    run_dir = Path(state.runs[run.key]["run_dir"])
    resume = (run_dir / STATE_FILE).is_file()
    try:
        run_recipe(run.recipe, run_dir=run_dir, resume=resume, console=console, debug=debug,
                   tags=run_tags(state.sweep_id, sweep, run),
                   run_name=f"{sweep.name}/{run.variant}/seed-{run.seed}")
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        return False, f"{type(exc).__name__}: {exc}"
    return True, None


def _subprocess(sweep: Sweep, state: SweepState, run: PlannedRun, parallel: int,
                debug: bool) -> tuple[bool, str | None]:
    run_dir = Path(state.runs[run.key]["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    where = (["--resume", str(run_dir)] if (run_dir / STATE_FILE).is_file()
             else ["--run-dir", str(run_dir)])
    tags = [a for k, v in run_tags(state.sweep_id, sweep, run).items()
            for a in ("--tag", f"{k}={v}")]
    cmd = [sys.executable, "-m", "rlhf.cli.app", *(["--debug"] if debug else []), "run",
           sweep.recipe, *run.overrides, *where, *tags,
           "--run-name", f"{sweep.name}/{run.variant}/seed-{run.seed}"]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
    with open(run_dir / RUN_LOG, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                              check=False).returncode
    if code == 0:
        return True, None
    tail = (run_dir / RUN_LOG).read_text(encoding="utf-8", errors="replace").strip()
    last = tail.splitlines()[-1] if tail else ""
    return False, f"exit code {code}: {last}"


def _init_stores(runs: list[PlannedRun]) -> None:
    """Create each MLflow store and experiment the runs use, once, before subprocesses start:
    several processes creating one new SQLite store at once race in its schema migrations."""
    from rlhf.tracking import get_or_create_experiment, resolve_uri
    from rlhf.tracking.store import artifact_root, make_client

    for uri, experiment in sorted({(resolve_uri(r.recipe.tracking.uri),
                                    r.recipe.tracking.experiment or r.recipe.name)
                                   for r in runs if r.recipe.tracking.enabled}):
        get_or_create_experiment(make_client(uri), experiment, artifact_root(uri))


def run_sweep(sweep: Sweep, runs: list[PlannedRun], state: SweepState, parallel: int = 1,
              console: Console | None = None, debug: bool = False,
              on_done: Callable[[str, dict[str, Any]], None] | None = None) -> SweepOutcome:
    """Run every run of ``runs`` that ``state`` does not mark finished; return the outcome.

    ``on_done(key, record)`` is called after each run (from a worker thread when parallel)."""
    from rlhf import launch

    console = console or Console(stderr=True)
    todo = [r for r in runs if state.runs[r.key].get("status") != FINISHED]
    base = state.path.parent if state.path else Path(".")
    in_process = parallel == 1 and not any(launch.needs_launch(r.recipe) for r in todo)

    def one(run: PlannedRun) -> None:
        state.update(run.key, status=RUNNING, error=None)
        attempts = int(state.runs[run.key].get("attempts", 0)) + 1
        if in_process:
            console.rule(f"[bold]{state.sweep_id}[/bold]: {run.key}")
        started = time.monotonic()
        try:
            if in_process:
                ok, error = _in_process(sweep, state, run, console, debug)
            else:
                ok, error = _subprocess(sweep, state, run, parallel, debug)
        except KeyboardInterrupt:
            state.update(run.key, status=INTERRUPTED, attempts=attempts)
            raise
        seconds = round(time.monotonic() - started, 1)
        run_id, stage_error = _run_info(Path(state.runs[run.key]["run_dir"]))
        if not ok and stage_error:
            error = stage_error
        state.update(run.key, status=FINISHED if ok else FAILED, error=error,
                     parent_run_id=run_id, seconds=seconds, attempts=attempts)
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        why = "" if ok else f": {escape(error or '')}"
        console.print(f"{mark} {run.key} ({seconds:.0f} s){why}", soft_wrap=True)
        if on_done is not None:
            on_done(run.key, state.runs[run.key])

    if not in_process:
        _init_stores(todo)
    if in_process or parallel == 1:
        for run in todo:
            one(run)
    else:
        console.print(f"running {len(todo)} runs, {parallel} at a time "
                      f"(logs: <run dir>/{RUN_LOG})")
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            for future in [pool.submit(one, run) for run in todo]:
                future.result()
    return SweepOutcome(state.sweep_id, base, dict(state.runs), [r.key for r in todo])
