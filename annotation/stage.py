"""Stage ``annotate``: push speech pairs to Argilla, wait for annotators, pull preferences.

1. Push ``pairs`` (a pairs JSONL, see :mod:`annotation.pairs`) to ``dataset`` through the stage's
   outbox (``<stage>/outbox.jsonl``), so a crash, a server restart or a resumed run sends
   nothing twice.
2. Wait until ``target`` pairs (default: all) are complete, i.e. have ``annotators_per_pair``
   submitted answers, polling every ``poll_seconds`` with a progress bar. With ``simulate``,
   scripted annotators (:mod:`annotation.simulate`) answer meanwhile (and are waited for even
   with ``wait: false``). With ``wait: false`` and no scripted annotators, or when
   ``timeout_minutes`` pass first, the run stops cleanly (:class:`StageWaiting`, exit code 3)
   and says where annotators work; ``rlhf run --resume RUN_DIR`` later picks up from here (the
   push is then a no-op).
3. Pull: ``preferences.jsonl`` (decided pairs; ``chosen`` / ``rejected`` are the original audio
   paths, also as ``chosen_audio`` / ``rejected_audio`` for ``audio_reward_model``),
   ``outcomes.jsonl`` (every pair's votes and decision) and ``agreement.json``. Counts,
   agreement and the mean margin go to the stage's MLflow run.

The server: ``api_url`` (or ``$ARGILLA_API_URL``, key in ``$ARGILLA_API_KEY``) for a deployed
Argilla; otherwise the embedded server in ``server_dir`` (default: the one ``rlhf annotate
serve`` uses), started if it is not running (``start_server``). A server this stage started is
left running while the run waits for people, and stopped when the stage finishes.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rlhf.errors import UserError
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec, StageWaiting


class SimulateOptions(BaseModel):
    """Scripted annotators that answer while the stage waits (demo and tests)."""

    model_config = ConfigDict(extra="forbid")

    annotators: int = Field(3, ge=1, le=50)
    """How many annotator accounts (``<prefix>1`` ... ``<prefix>N``)."""
    preference: str = "speaking_rate"
    """Hidden preference function: ``speaking_rate``, ``loudness`` or ``module:function``."""
    params: dict[str, Any] = Field(default_factory=dict)
    """Its parameters, e.g. ``{target_wpm: 175}``."""
    noise: float = Field(0.05, ge=0)
    """Standard deviation of the noise added to each clip's quality (0-1 scale)."""
    tie_band: float = Field(0.0, ge=0)
    """Answer ``tie`` when the two noisy qualities are this close."""
    discard_rate: float = Field(0.0, ge=0, le=1)
    prefix: str = Field("sim-annotator-", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class AnnotateOptions(StageOptions):
    pairs: str
    """Pairs JSONL (``{id?, prompt, audio_a, audio_b, metadata?}``), a path or ``@stage/file``."""
    dataset: str | None = Field(None, min_length=1, max_length=200)
    """Argilla dataset name (default ``<recipe>-<run>-<stage>``)."""
    workspace: str = "argilla"
    api_url: str | None = None
    """A deployed Argilla (key from ``ARGILLA_API_KEY``); default ``$ARGILLA_API_URL``, else
    the embedded server."""
    server_dir: str | None = None
    """Data directory of the embedded server (default: that of ``rlhf annotate serve``)."""
    start_server: bool = True
    """Start the embedded server when it is not running."""
    keep_server: bool = False
    """Leave an embedded server this stage started running after the stage (to browse the
    annotations); stop it with ``rlhf annotate stop``."""
    annotators_per_pair: int | Literal["auto"] = 3
    """Submitted answers that complete a pair (``TaskDistribution(min_submitted=...)``);
    ``auto``: every scripted annotator with ``simulate``, else 1 (one person tries it)."""
    wait: bool = True
    """Wait for ``target`` complete pairs; false: stop the run until it is resumed."""
    target: int | None = Field(None, ge=1)
    """Complete pairs to wait for (default: all pushed pairs)."""
    poll_seconds: float = Field(5.0, gt=0)
    timeout_minutes: float | None = Field(None, gt=0)
    """Stop waiting after this long (the run then stops as with ``wait: false``)."""
    min_votes: int | None = Field(None, ge=1)
    """Submitted votes a pair needs to count (default: ``annotators_per_pair``, or the
    existing dataset's own setting)."""
    min_margin: float | None = None
    """Large-margin filtering: keep pairs whose rating margin is at least this."""
    min_agreement: float | None = Field(None, ge=0, le=1)
    """Keep pairs whose winning share of votes is at least this."""
    batch_size: int = Field(50, ge=1, le=500)
    simulate: SimulateOptions | None = None
    """Scripted annotators; ``true``: the defaults, ``false`` / null: people annotate."""

    @field_validator("simulate", mode="before")
    @classmethod
    def _simulate_switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        return None if value is False else value

    @field_validator("annotators_per_pair")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("annotators_per_pair must be at least 1 (or auto)")
        return value

    @property
    def votes_per_pair(self) -> int:
        """``annotators_per_pair`` with ``auto`` resolved."""
        if self.annotators_per_pair == "auto":
            return self.simulate.annotators if self.simulate is not None else 1
        return int(self.annotators_per_pair)

    @model_validator(mode="after")
    def _enough_simulated_annotators(self) -> AnnotateOptions:
        if self.simulate is not None and self.simulate.annotators < self.votes_per_pair:
            raise ValueError(f"simulate.annotators ({self.simulate.annotators}) is below "
                             f"annotators_per_pair ({self.votes_per_pair}): no pair would "
                             "ever be complete")
        return self


def default_dataset_name(ctx: StageContext) -> str:
    name = f"{ctx.run_dir.parent.name}-{ctx.run_dir.name}-{ctx.name}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:200] or ctx.name


def _connect(opts: AnnotateOptions, say) -> tuple[Any, Any, str]:  # noqa: ANN001
    """``(connection, embedded server we started or None, where to sign in)``."""
    from annotation.argilla.connection import Connection, default_server_dir, resolve

    if opts.api_url or os.environ.get("ARGILLA_API_URL"):
        conn = resolve(opts.api_url)
        return conn, None, f"sign in to {conn.api_url} with your Argilla account"
    from annotation.server.embedded import EmbeddedServer

    server = EmbeddedServer(opts.server_dir or default_server_dir())
    started = None
    if not server.is_running():
        if not opts.start_server:
            raise UserError(f"the embedded Argilla server in {server.data_dir} is not running; "
                            "start it with `rlhf annotate serve` or set start_server: true")
        say(f"starting the embedded Argilla server in {server.data_dir} ...")
        server.start(timeout=300)
        started = server
    conn = Connection(server.url, server.api_key, f"embedded server in {server.data_dir}")
    login = (f"sign in as {server.username!r}; the password is in {server.credentials_path} "
             "(or add yourself: `rlhf annotate users add NAME`)")
    return conn, started, login


def run(ctx: StageContext, opts: AnnotateOptions) -> StageResult:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from annotation.argilla.backend import ArgillaBackend
    from annotation.pairs import load_pairs
    from rlhf.data import write_jsonl

    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def say(msg: str) -> None:
        console.print(f"  [dim]{msg}[/dim]")

    pairs_path = ctx.path(opts.pairs)
    pairs, duplicates = load_pairs(pairs_path)
    dataset = opts.dataset or default_dataset_name(ctx)
    conn, started, login = _connect(opts, say)
    backend = ArgillaBackend(conn, dataset, opts.workspace, outbox=ctx.stage_dir / "outbox.jsonl",
                             min_submitted=opts.votes_per_pair, batch_size=opts.batch_size,
                             log=say)
    ctx.tracker.set_tags({"annotation.dataset": dataset, "annotation.workspace": opts.workspace,
                          "annotation.api_url": conn.api_url})
    with Progress(TextColumn("  push"), BarColumn(), MofNCompleteColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("push", total=len(pairs))
        report = backend.push(pairs, on_batch=lambda d, t: bar.update(task, completed=d, total=t))
    say(f"{report.sent} pairs sent, {report.already_sent} already on the server "
        f"({duplicates} duplicate rows skipped); dataset {dataset!r} at {conn.api_url}")
    ds_url = f"{conn.api_url}/dataset/{report.dataset_id}/annotation-mode"
    target = min(opts.target or report.total, report.total)

    stop = threading.Event()
    sim_thread, sim_errors = None, []
    if opts.simulate is not None:
        sim_thread = _start_simulation(conn, dataset, opts, ctx.seed, stop, sim_errors, say)
    try:
        completed = _wait(backend, opts, target, ctx, console, sim_thread, sim_errors, ds_url)
    finally:
        stop.set()
        if sim_thread is not None:
            sim_thread.join(timeout=60)
    if sim_errors:
        raise sim_errors[0]
    if completed < target:
        if started is not None:
            say(f"the embedded server keeps running at {conn.api_url} "
                f"(stop it with `rlhf annotate stop --data-dir {started.data_dir}`)")
        raise StageWaiting(
            f"annotation of {dataset!r} is not finished: {completed}/{target} pairs complete "
            f"({opts.votes_per_pair} answer(s) each). Annotate at {ds_url} ({login}); check "
            f"with `rlhf annotate progress --dataset {dataset}`, then continue with "
            f"`rlhf run --resume {ctx.run_dir}`.")

    result = backend.pull(min_votes=opts.min_votes, min_margin=opts.min_margin,
                          min_agreement=opts.min_agreement)
    write_jsonl(ctx.stage_dir / "preferences.jsonl", result.preferences)
    write_jsonl(ctx.stage_dir / "outcomes.jsonl", [
        {"id": pid, "decision": o.decision, "votes": o.counts, "discards": o.discards,
         "annotators": o.annotators, "margin": o.margin, "agreement": o.agreement}
        for pid, o in result.outcomes.items()])
    summary = {"dataset": dataset, "api_url": conn.api_url, "dataset_id": report.dataset_id,
               "counts": result.counts, "agreement": result.agreement.to_json()}
    (ctx.stage_dir / "agreement.json").write_text(json.dumps(summary, indent=2))
    ctx.tracker.log_dict(summary, "annotation.json")
    if started is not None and not opts.keep_server:
        started.stop()
    metrics = {k: v for k, v in result.metrics().items() if not math.isnan(v)}
    c, agr = result.counts, result.agreement
    where = [f"Argilla: dataset {dataset!r} at {ds_url}"]
    if started is not None:
        where.append("(server stopped; `rlhf annotate serve` starts it again)"
                     if not opts.keep_server else
                     f"({login}; stop the server with `rlhf annotate stop --data-dir "
                     f"{started.data_dir}`)")
    return StageResult(
        metrics=metrics,
        outputs={"preferences": "preferences.jsonl", "outcomes": "outcomes.jsonl",
                 "agreement": "agreement.json"},
        summary=[f"{c['kept']} preference pairs from {c['total']} annotated pairs "
                 f"({c['tie']} ties, {c['no_majority']} without majority, {c['discarded']} discarded)",
                 f"Fleiss' κ {_fmt(agr.fleiss_kappa)}, mean Cohen's κ {_fmt(agr.mean_cohen_kappa)}",
                 *where],
    )


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.3f}"


def _start_simulation(conn, dataset: str, opts: AnnotateOptions, seed: int,  # noqa: ANN001
                      stop: threading.Event, errors: list, say) -> threading.Thread:  # noqa: ANN001
    from annotation.simulate import make_annotators, preference_function, run_annotators

    sim = opts.simulate
    quality = preference_function(sim.preference, **sim.params)
    annotators = make_annotators(conn, sim.annotators, opts.workspace, quality, prefix=sim.prefix,
                                 noise=sim.noise, tie_band=sim.tie_band,
                                 discard_rate=sim.discard_rate, seed=seed)
    say(f"{len(annotators)} scripted annotators answer ({sim.preference}, noise {sim.noise})")

    def work() -> None:
        try:
            run_annotators(annotators, dataset, opts.workspace, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported by the stage
            errors.append(exc)

    thread = threading.Thread(target=work, name="scripted-annotators", daemon=True)
    thread.start()
    return thread


def _wait(backend, opts: AnnotateOptions, target: int, ctx: StageContext, console,  # noqa: ANN001
          sim_thread, sim_errors: list, ds_url: str) -> int:  # noqa: ANN001
    """Poll progress until ``target`` pairs are complete (or the run must stop); returns the
    number of complete pairs."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = backend.progress()
    if prog.completed >= target or (not opts.wait and sim_thread is None):
        ctx.tracker.log_metrics({"annotation/completed": prog.completed}, step=0)
        return prog.completed
    # waiting for people, or (also with wait: false) for the scripted annotators to finish
    console.print(f"  waiting for {target} complete pairs; annotators work at {ds_url}")
    deadline = (time.monotonic() + opts.timeout_minutes * 60) if opts.timeout_minutes else None
    step = 0
    with Progress(TextColumn("  annotated"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("wait", total=target, completed=min(prog.completed, target), info="")
        while True:
            answers = sum(c["submitted"] for c in prog.users.values())
            info = f"{answers} answers from {len(prog.users)} annotators" if prog.users else ""
            bar.update(task, completed=min(prog.completed, target), info=info)
            ctx.tracker.log_metrics({"annotation/completed": prog.completed,
                                     "annotation/pending": prog.pending}, step=step)
            step += 1
            if prog.completed >= target or sim_errors:
                return prog.completed
            if sim_thread is not None and not sim_thread.is_alive():
                prog = backend.progress()  # the scripted annotators are done: nothing more comes
                bar.update(task, completed=min(prog.completed, target))
                return prog.completed
            if deadline is not None and time.monotonic() >= deadline:
                return prog.completed
            time.sleep(opts.poll_seconds if sim_thread is None else min(opts.poll_seconds, 1.0))
            prog = backend.progress()


STAGE = StageSpec(AnnotateOptions, run,
                  "Push speech pairs to Argilla, wait for annotators, pull preferences")
