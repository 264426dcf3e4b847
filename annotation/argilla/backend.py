"""``ArgillaBackend``: push pairs to an Argilla dataset, pull preferences, report progress.

Works the same against the embedded server and a deployed one: it only uses the public REST API
through the ``argilla`` SDK (2.8), with the owner's (or an admin's) key.

Push (see :mod:`annotation.outbox` for the guarantees): journal new pairs in the outbox, make the
dataset if needed, then upsert the unsent pairs in batches (at most ``batch_size`` records and
about ``max_batch_mb`` of audio each), marking each batch sent after the server answered. A
batch that fails for a transport reason (connection refused or dropped, timeout, HTTP 5xx) is
retried with backoff for up to ``retry_seconds``; then the push stops with a message saying how
far it got, and running it again sends the rest.

Pull: every record with its responses → :func:`annotation.aggregate.aggregate_votes` per pair (in
the original A/B orientation, from the hidden ``order`` metadata) → preference rows whose
``chosen`` / ``rejected`` are the original audio paths, and inter-annotator agreement.
"""

from __future__ import annotations

import html
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from annotation.aggregate import (
    aggregate_votes, agreement, keep_pair, preference_row, summarize,
)
from annotation.argilla.connection import Connection
from annotation.argilla.records import (
    FIELD_PROMPT, META_AUDIO_A, META_AUDIO_B, META_ORDER, META_PAIR_ID, META_PAIR_METADATA,
    record_payload, vote_from_answers,
)
from annotation.argilla.settings import check_compatible, dataset_settings
from annotation.backend import Progress, PullResult, PushReport
from annotation.outbox import Outbox
from annotation.pairs import Pair
from rlhf.errors import UserError

DEFAULT_WORKSPACE = "argilla"
PULL_PAGE = 256


class TransientError(Exception):
    """A failure worth retrying (transport error or HTTP 5xx)."""


def unescape_text(value: str) -> str:
    """The inverse of :func:`annotation.argilla.records.escape_text`."""
    return html.unescape(value.replace("<br>\n", "\n"))


def _is_transient(exc: BaseException) -> bool:
    import httpx

    if isinstance(exc, (httpx.TransportError, TransientError, ConnectionError, TimeoutError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


def _detail(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class ArgillaBackend:
    """An :class:`~annotation.backend.AnnotationBackend` on one Argilla dataset.

    ``outbox``: the outbox file (required for :meth:`push`). ``min_submitted``: annotators per
    pair, used when the dataset is created (default 1; an existing dataset keeps its own, with a
    note when it differs). ``log``: where progress notes go (default: nowhere).
    """

    def __init__(self, connection: Connection, dataset: str, workspace: str | None = None, *,
                 outbox: str | Path | None = None, min_submitted: int | None = None,
                 batch_size: int = 50, max_batch_mb: float = 16.0, retry_seconds: float = 60.0,
                 log: Callable[[str], None] | None = None) -> None:
        if not dataset or not dataset.strip():
            raise UserError("a dataset name is needed (--dataset NAME)")
        self.connection = connection
        self.dataset_name = dataset
        self.workspace_name = workspace or DEFAULT_WORKSPACE
        self.outbox_path = Path(outbox) if outbox else None
        self.min_submitted = min_submitted
        self.batch_size = max(1, min(int(batch_size), 500))
        self.max_batch_bytes = int(max_batch_mb * 1e6)
        self.retry_seconds = retry_seconds
        self.log = log or (lambda _msg: None)
        self._client = None
        self._dataset = None

    def __repr__(self) -> str:
        return (f"ArgillaBackend({self.connection.api_url!r}, dataset={self.dataset_name!r}, "
                f"workspace={self.workspace_name!r})")

    # ------------------------------------------------------------------ connection
    def _retrying(self, what: str, fn: Callable[[], Any], done: str = "") -> Any:
        """``fn()``, retried on transient failures for up to ``retry_seconds``."""
        from argilla._exceptions import ArgillaAPIError, ArgillaCredentialsError

        start, delay = time.monotonic(), 0.25
        while True:
            try:
                return fn()
            except (ArgillaCredentialsError,) as exc:
                raise UserError(f"{self.connection.api_url} rejected the API key "
                                f"({_detail(exc)})") from None
            except Exception as exc:  # noqa: BLE001 - sorted below
                if getattr(exc, "status_code", None) == 401:
                    raise UserError(f"{self.connection.api_url} rejected the API key") from None
                if getattr(exc, "status_code", None) == 403:
                    raise UserError(f"{what}: not allowed with this API key: {_detail(exc)}") from None
                if not _is_transient(exc):
                    if isinstance(exc, ArgillaAPIError):
                        raise UserError(f"{what} failed: {_detail(exc)}") from None
                    raise
                waited = time.monotonic() - start
                if waited >= self.retry_seconds:
                    raise UserError(
                        f"{what}: the Argilla server at {self.connection.api_url} did not answer "
                        f"for {waited:.0f}s ({_detail(exc)}). {done}".strip()) from None
                time.sleep(min(delay, max(0.05, self.retry_seconds - waited)))
                delay = min(delay * 2, 5.0)

    @property
    def client(self) -> Any:
        if self._client is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._client = self._retrying("connecting", self.connection.client)
        return self._client

    def _workspace(self, create: bool) -> Any:
        import argilla as rg

        def find() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.client.workspaces(name=self.workspace_name)

        ws = self._retrying("looking up the workspace", find)
        if ws is None and create:
            try:
                ws = self._retrying("creating the workspace",
                                    lambda: rg.Workspace(name=self.workspace_name,
                                                         client=self.client).create())
            except UserError:
                ws = self._retrying("looking up the workspace", find)
                if ws is None:
                    raise
            self.log(f"created workspace {self.workspace_name!r}")
        if ws is None:
            raise UserError(f"no workspace {self.workspace_name!r} on {self.connection.api_url}")
        return ws

    def dataset(self, create: bool = False) -> Any:
        """The Argilla dataset (made with our settings when ``create`` and missing)."""
        if self._dataset is not None:
            return self._dataset
        import argilla as rg

        ws = self._workspace(create)

        def find() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.client.datasets(name=self.dataset_name, workspace=ws)

        ds = self._retrying("looking up the dataset", find)
        if ds is None:
            if not create:
                raise UserError(f"no dataset {self.dataset_name!r} in workspace "
                                f"{self.workspace_name!r} on {self.connection.api_url}; "
                                "push pairs to it first")

            def make() -> Any:
                existing = find()  # a retried create may have happened already
                if existing is not None:
                    return existing
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return rg.Dataset(name=self.dataset_name, workspace=ws, client=self.client,
                                      settings=dataset_settings(self.min_submitted or 1)).create()

            ds = self._retrying("creating the dataset", make)
            self.log(f"created dataset {self.dataset_name!r} in workspace {self.workspace_name!r} "
                     f"({self.min_submitted or 1} annotator(s) per pair)")
        else:
            check_compatible(ds)
            have = getattr(ds.distribution, "min_submitted", None)
            if create and self.min_submitted and have is not None and have != self.min_submitted:
                self.log(f"dataset {self.dataset_name!r} exists with {have} annotator(s) per pair "
                         f"(not {self.min_submitted}); keeping it")
        self._dataset = ds
        return ds

    # ------------------------------------------------------------------ push
    def _batches(self, pairs: Sequence[Pair]) -> Iterator[list[Pair]]:
        batch: list[Pair] = []
        size = 0
        for pair in pairs:
            est = 0
            for path in (pair.audio_a, pair.audio_b):
                try:
                    est += int(Path(path).stat().st_size * 4 / 3) + 200
                except OSError:
                    pass
            if batch and (len(batch) >= self.batch_size or size + est > self.max_batch_bytes):
                yield batch
                batch, size = [], 0
            batch.append(pair)
            size += est
        if batch:
            yield batch

    def _payloads(self, batch: Sequence[Pair]) -> list[dict[str, Any]]:
        out = []
        for pair in batch:
            try:
                out.append(record_payload(pair))
            except OSError as exc:
                raise UserError(f"pair {pair.id} ({pair.source or 'outbox'}): cannot read its audio: "
                                f"{exc}; restore the file, or move the outbox "
                                f"{self.outbox_path} away to start over") from None
        return out

    def _upsert(self, dataset_id: Any, payloads: list[dict[str, Any]]) -> None:
        """Send one batch; returns after the server acknowledged it (or raises)."""
        from argilla._models import RecordModel

        models = [RecordModel(external_id=p["id"], fields=p["fields"], metadata=p["metadata"])
                  for p in payloads]
        with warnings.catch_warnings():  # pydantic warns about the SDK's empty suggestions tuple
            warnings.simplefilter("ignore")
            self.client.api.records.bulk_upsert(dataset_id=dataset_id, records=models)

    def push(self, pairs: Sequence[Pair],
             on_batch: Callable[[int, int], None] | None = None) -> PushReport:
        """Journal ``pairs`` in the outbox and send whatever is unsent (see the module docstring)."""
        if self.outbox_path is None:
            raise UserError("push needs an outbox file")
        t0 = time.monotonic()
        header = {"api_url": self.connection.api_url, "workspace": self.workspace_name,
                  "dataset": self.dataset_name}
        with Outbox(self.outbox_path, header=header) as box:
            added = box.add(pairs)
            ds = self.dataset(create=True)
            ds_id = str(ds.id)
            todo = box.pending(ds_id)
            total = len(box)
            already = total - len(todo)
            sent = batches = 0
            for batch in self._batches(todo):
                payloads = self._payloads(batch)
                done = (f"{already + sent} of {total} pairs are on the server; run the push again "
                        "to send the rest (nothing is lost or sent twice).")
                self._retrying(f"sending {len(batch)} records",
                               lambda: self._upsert(ds.id, payloads), done)
                box.mark_sent([p.key for p in batch], ds_id)
                sent += len(batch)
                batches += 1
                if on_batch is not None:
                    on_batch(already + sent, total)
        return PushReport(total, added, sent, already, batches, time.monotonic() - t0, ds_id)

    # ------------------------------------------------------------------ pull
    def _usernames(self) -> dict[str, str]:
        try:
            users = self._retrying("listing users", lambda: self.client.api.users.list())
        except UserError:
            return {}
        return {str(u.id): u.username for u in users}

    def iter_records(self, page: int = PULL_PAGE) -> Iterator[Any]:
        """Every record of the dataset with its responses (``RecordModel``)."""
        ds = self.dataset()
        offset = 0
        while True:
            items = self._retrying(
                "reading records",
                lambda: self.client.api.records.list(dataset_id=ds.id, offset=offset, limit=page,
                                                     with_responses=True, with_suggestions=False))
            yield from items
            if len(items) < page:
                return
            offset += len(items)

    def pull(self, min_votes: int | None = None, min_margin: float | None = None,
             min_agreement: float | None = None) -> PullResult:
        """``min_votes`` defaults to the dataset's annotators per pair (its task distribution),
        so that only complete pairs are decided."""
        if min_votes is None:
            min_votes = int(getattr(self.dataset().distribution, "min_submitted", 1) or 1)
        names = self._usernames()
        outcomes, votes_by_pair, rows = {}, {}, []
        for record in self.iter_records():
            meta = _metadata(record)
            order = meta.get(META_ORDER)
            if order not in ("AB", "BA"):
                continue  # not one of our records
            pair_id = str(meta.get(META_PAIR_ID) or record.external_id)
            votes = []
            for resp in record.responses or []:
                user = str(resp.user_id)
                values = {q: (v or {}).get("value") for q, v in (resp.values or {}).items()}
                status = getattr(resp.status, "value", resp.status)
                votes.append(vote_from_answers(names.get(user, user), status, order, values))
            outcome = aggregate_votes(votes, min_votes=min_votes)
            outcomes[pair_id] = outcome
            votes_by_pair[pair_id] = votes
            if keep_pair(outcome, min_margin, min_agreement):
                try:
                    extra = {"metadata": json.loads(meta.get(META_PAIR_METADATA) or "{}")}
                except ValueError:
                    extra = {}
                prompt = unescape_text((record.fields or {}).get(FIELD_PROMPT) or "")
                rows.append(preference_row(pair_id, prompt, str(meta.get(META_AUDIO_A)),
                                           str(meta.get(META_AUDIO_B)), outcome, extra))
        counts = summarize(outcomes.values())
        counts["kept"] = len(rows)
        return PullResult(rows, outcomes, agreement(votes_by_pair), counts)

    # ------------------------------------------------------------------ progress
    def progress(self) -> Progress:
        ds = self.dataset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = self._retrying("reading progress",
                                  lambda: ds.progress(with_users_distribution=True))
        users = {}
        for name, dist in (data.get("users") or {}).items():
            merged = {k: 0 for k in ("submitted", "discarded", "draft")}
            for part in ("completed", "pending"):
                for k in merged:
                    merged[k] += int((dist.get(part) or {}).get(k) or 0)
            users[name] = merged
        return Progress(int(data.get("total") or 0), int(data.get("completed") or 0),
                        int(data.get("pending") or 0), users)


def _metadata(record: Any) -> dict[str, Any]:
    meta = record.metadata
    if isinstance(meta, dict):
        return meta
    return {m.name: m.value for m in meta or []}
