"""The outbox: a local journal of pairs to push, so that a push loses and duplicates nothing.

A push first appends every new pair to the outbox (``{"op": "add", "pair": {...}}``, flushed and
fsynced), and only then sends. After the server has acknowledged a batch, one line
``{"op": "sent", "dataset_id": ..., "keys": [...]}`` marks those pairs sent (fsynced too). So:

- a crash or a server restart before the acknowledgement leaves the pairs unsent, and the next
  push sends them again. Records are addressed by their content hash (the pair's key is the
  record's external id, which the server upserts on), so a batch the server had stored just
  before the connection dropped is updated in place, not duplicated;
- re-running a push whose pairs are all marked sent sends nothing;
- a pair counts as sent only to the dataset id it was sent to: if the dataset is deleted and
  made again (a new id), or the outbox is used against another server, everything is sent again.

The file is append-only JSON Lines. A line cut short by a crash (no final newline) is dropped
when the outbox is opened. A :class:`filelock.FileLock` beside the file keeps two pushes from
interleaving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from annotation.pairs import Pair
from rlhf.errors import UserError

VERSION = 1


class Outbox:
    """Replay of an outbox file: the pairs added, in order, and where each was sent."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.pairs: dict[str, Pair] = {}
        self.sent: dict[str, set[str]] = {}  # key -> dataset ids it was acknowledged by
        self._header = {"op": "header", "version": VERSION, **(header or {})}
        self._lock = None
        self._load()

    # ------------------------------------------------------------------ file
    def _load(self, repair: bool = False) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):  # a line cut short by a crash: drop it
            cut = data.rfind(b"\n") + 1
            if repair:  # only under the lock: a live writer's half-written line is not ours
                with self.path.open("r+b") as fh:
                    fh.truncate(cut)
            data = data[:cut]
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self._apply(entry)
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{self.path}:{lineno}: corrupt outbox line ({exc}); "
                                "move the file away to push everything again") from None

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        if op == "add":
            pair = Pair.from_json(entry["pair"])
            self.pairs.setdefault(pair.key, pair)
        elif op == "sent":
            for key in entry["keys"]:
                self.sent.setdefault(key, set()).add(entry["dataset_id"])
        elif op != "header":
            raise ValueError(f"unknown op {op!r}")

    def _append(self, entries: Sequence[dict[str, Any]]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        lines = ([self._header] if new else []) + list(entries)
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines)
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise UserError(f"cannot write the outbox {self.path}: {exc.strerror or exc}; "
                            "choose another place with --outbox") from None

    # ------------------------------------------------------------------ locking
    def __enter__(self) -> Outbox:
        from filelock import FileLock, Timeout

        self._lock = FileLock(str(self.path) + ".lock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire(timeout=30)
        except Timeout:
            raise UserError(f"{self.path} is locked by another push; wait for it to finish") from None
        except OSError as exc:
            raise UserError(f"cannot write the outbox {self.path}: {exc.strerror or exc}; "
                            "choose another place with --outbox") from None
        # re-read under the lock: another process may have written since we loaded
        self.pairs.clear()
        self.sent.clear()
        self._load(repair=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------ operations
    def add(self, pairs: Iterable[Pair]) -> int:
        """Journal the pairs not in the outbox yet (before anything is sent); returns how many."""
        new = [p for p in pairs if p.key not in self.pairs]
        self._append([{"op": "add", "pair": p.to_json()} for p in new])
        for p in new:
            self.pairs[p.key] = p
        return len(new)

    def is_sent(self, key: str, dataset_id: str) -> bool:
        return dataset_id in self.sent.get(key, ())

    def pending(self, dataset_id: str) -> list[Pair]:
        """Pairs not yet acknowledged by dataset ``dataset_id``, in the order they were added."""
        return [p for k, p in self.pairs.items() if not self.is_sent(k, dataset_id)]

    def mark_sent(self, keys: Sequence[str], dataset_id: str) -> None:
        """Record that the server acknowledged these pairs (call only after the response)."""
        unknown = [k for k in keys if k not in self.pairs]
        if unknown:
            raise KeyError(f"not in the outbox: {unknown[:3]}")
        self._append([{"op": "sent", "dataset_id": str(dataset_id), "keys": list(keys)}])
        for k in keys:
            self.sent.setdefault(k, set()).add(str(dataset_id))

    def __len__(self) -> int:
        return len(self.pairs)
