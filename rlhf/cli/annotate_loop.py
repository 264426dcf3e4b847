"""``rlhf annotate push | pull | progress``: the annotation loop on an Argilla server.

Registered onto the ``annotate`` group of :mod:`rlhf.cli.annotate` by :func:`register`.
The server is ``--api-url``, else ``$ARGILLA_API_URL``, else the running embedded server
(``rlhf annotate serve``, ``--data-dir``); the key is ``$ARGILLA_API_KEY``, else the embedded
server's owner key. Keys are never printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from rlhf.cli.errors import cli_errors

console = Console(highlight=False, soft_wrap=True)

_API_URL = typer.Option(None, "--api-url", help="Argilla server URL (default: $ARGILLA_API_URL, "
                        "else the running embedded server). The key comes from $ARGILLA_API_KEY "
                        "or the embedded server's credentials.")
_DATA_DIR = typer.Option(None, "--data-dir", help="Data directory of the embedded server to use "
                         "when no URL is given (default: that of `rlhf annotate serve`).")
_WORKSPACE = typer.Option(None, "--workspace", help="Argilla workspace (default: argilla; "
                          "created on push if missing).")
_DATASET = typer.Option(..., "--dataset", help="Argilla dataset name.")


def default_outbox(pairs: Path, dataset: str) -> Path:
    """``<pairs folder>/<pairs stem>.outbox.<dataset>.jsonl``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset)
    return pairs.expanduser().resolve().parent / f"{pairs.stem}.outbox.{safe}.jsonl"


def _backend(dataset: str, workspace: str | None, api_url: str | None, data_dir: Path | None,
             **kwargs):  # noqa: ANN202
    from annotation.argilla.backend import ArgillaBackend
    from annotation.argilla.connection import resolve

    conn = resolve(api_url, None, data_dir)
    return ArgillaBackend(conn, dataset, workspace, log=lambda m: console.print(f"[dim]{m}[/dim]"),
                          **kwargs)


def push(
    pairs: Path = typer.Option(..., "--pairs", help="Pairs JSONL: {id?, prompt, audio_a, audio_b, "
                               "metadata?} per line; audio paths relative to the file, WAV or FLAC."),
    dataset: str = _DATASET,
    workspace: str = _WORKSPACE,
    annotators_per_pair: int = typer.Option(None, "--annotators-per-pair", min=1,
                                            help="Submitted answers a pair needs to be complete "
                                            "(the dataset's task distribution, set when the "
                                            "dataset is created; default 1)."),
    outbox: Path = typer.Option(None, "--outbox", help="Outbox journal (default: "
                                "<pairs>.outbox.<dataset>.jsonl beside the pairs file)."),
    batch_size: int = typer.Option(50, "--batch-size", min=1, max=500, help="Records per request."),
    retry_seconds: float = typer.Option(60.0, "--retry-seconds", min=0,
                                        help="How long to retry a batch while the server is down."),
    api_url: str = _API_URL,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Push speech pairs for annotation (idempotent: re-running sends only what is missing)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from annotation.pairs import load_pairs

    with cli_errors():
        loaded, duplicates = load_pairs(pairs)
        box = outbox or default_outbox(pairs, dataset)
        backend = _backend(dataset, workspace, api_url, data_dir, outbox=box,
                           min_submitted=annotators_per_pair, batch_size=batch_size,
                           retry_seconds=retry_seconds)
        console.print(f"{len(loaded)} pairs from {pairs}"
                      + (f" ({duplicates} duplicate rows skipped)" if duplicates else "")
                      + f" → {backend.connection.api_url}, dataset {dataset!r}")
        with Progress(TextColumn("pushing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("push", total=None)
            report = backend.push(loaded, on_batch=lambda done, total: bar.update(
                task, completed=done, total=total))
        ds_id = report.dataset_id
        console.print(f"[green]✓[/green] {report.sent} sent now, {report.already_sent} already on "
                      f"the server, {report.total} in the outbox ({box}); {report.seconds:.1f}s")
        console.print(f"  annotate at {backend.connection.api_url}/dataset/{ds_id}/annotation-mode")


def pull(
    dataset: str = _DATASET,
    output: Path = typer.Option(..., "--output", "-o", help="Preference JSONL to write."),
    workspace: str = _WORKSPACE,
    min_votes: int = typer.Option(None, "--min-votes", min=1, help="Submitted votes a pair needs "
                                  "(default: the dataset's annotators per pair)."),
    min_margin: float = typer.Option(None, "--min-margin", help="Large-margin filtering: keep "
                                     "pairs whose rating margin is at least this."),
    min_agreement: float = typer.Option(None, "--min-agreement", min=0, max=1,
                                        help="Keep pairs whose winning share of votes is at least this."),
    report: Path = typer.Option(None, "--report", help="Also write counts and agreement as JSON."),
    api_url: str = _API_URL,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Aggregate submitted answers into preference pairs (chosen / rejected = original files)."""
    from rlhf.data import write_jsonl

    with cli_errors():
        backend = _backend(dataset, workspace, api_url, data_dir)
        result = backend.pull(min_votes=min_votes, min_margin=min_margin,
                              min_agreement=min_agreement)
        write_jsonl(output, result.preferences)
        c = result.counts
        console.print(f"[green]✓[/green] {c['kept']} preference pairs → {output}  "
                      f"({c['total']} pairs: {c['decided']} decided, {c['tie']} tie, "
                      f"{c['no_majority']} no majority, {c['pending']} pending, "
                      f"{c['discarded']} discarded)")
        _print_agreement(result.agreement)
        if report is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps({"dataset": dataset, "counts": c,
                                          "agreement": result.agreement.to_json()}, indent=2))


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def _print_agreement(agr) -> None:  # noqa: ANN001 - Agreement
    console.print(f"  agreement: Fleiss' κ {_fmt(agr.fleiss_kappa)} over {agr.n_items} pairs with "
                  f"≥2 votes; mean Cohen's κ {_fmt(agr.mean_cohen_kappa)}; "
                  f"observed {_fmt(agr.observed)}")
    if agr.cohen:
        table = Table(show_header=True, box=None)
        for col in ("annotators", "Cohen's κ", "shared pairs"):
            table.add_column(col)
        for (a, b), (kappa, n) in sorted(agr.cohen.items()):
            table.add_row(f"{a} / {b}", _fmt(kappa), str(n))
        console.print(table)


def progress(
    dataset: str = _DATASET,
    workspace: str = _WORKSPACE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    api_url: str = _API_URL,
    data_dir: Path = _DATA_DIR,
) -> None:
    """Pairs completed / pending, and answers per annotator."""
    with cli_errors():
        backend = _backend(dataset, workspace, api_url, data_dir)
        prog = backend.progress()
        if as_json:
            typer.echo(json.dumps(prog.to_json()))
            return
        pct = 100.0 * prog.completed / prog.total if prog.total else 0.0
        console.print(f"{dataset}: {prog.completed}/{prog.total} pairs complete ({pct:.0f}%), "
                      f"{prog.pending} pending")
        if prog.users:
            table = Table(show_header=True, box=None)
            for col in ("annotator", "submitted", "discarded", "draft"):
                table.add_column(col)
            for name, counts in sorted(prog.users.items()):
                table.add_row(name, *(str(counts[k]) for k in ("submitted", "discarded", "draft")))
            console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``push``, ``pull`` and ``progress`` to the ``annotate`` group."""
    app.command("push")(push)
    app.command("pull")(pull)
    app.command("progress")(progress)
