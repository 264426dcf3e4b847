"""Readers and writers for record files: JSONL, JSON arrays, Parquet and saved HF datasets.

Every reader yields ``(location, row)`` pairs, where ``location`` names the file and the row so
that a later problem can be reported as ``<location>: <field>: <problem>``:

- ``data.jsonl`` (one object per line): ``data.jsonl:<line>`` (1-based; blank lines skipped);
- ``data.json`` (an array of objects): ``data.json:row <i>`` (1-based);
- ``data.parquet``: ``data.parquet:row <i>`` (1-based);
- a directory from ``Dataset.save_to_disk``: ``<dir>:row <i>`` (1-based);
- a directory from ``DatasetDict.save_to_disk``: ``<dir>/<split>:row <i>`` (the split's own
  directory, so the location is still ``<directory>:row <i>``).

A mistake in the file (not found, unsupported type, a line that is not a JSON object, an
unreadable Parquet file) raises :class:`~rlhf.errors.DataError` naming the file and, where there
is one, the line. ``pyarrow`` and ``datasets`` are imported only when a file needs them.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf.errors import DataError

SUPPORTED_FORMATS = (".jsonl (one object per line), .json (an array of objects), .parquet, "
                     "or a directory saved with datasets' save_to_disk")
"""Human-readable list of the inputs :func:`iter_rows` understands (used in error messages)."""

_PARQUET_BATCH = 1024


@dataclass(frozen=True)
class RawEntry:
    """One row as read, before validation: a parsed object, or the raw text and why it is bad.

    ``row`` is ``None`` exactly when ``problem`` is set (a line that is not a JSON object); ``raw``
    then holds the original text so a rejected-rows file can keep it.
    """

    location: str
    row: dict[str, Any] | None
    problem: str | None = None
    raw: str | None = None


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def iter_rows(path: str | os.PathLike[str], split: str = "train") -> Iterator[tuple[str, dict]]:
    """Yield ``(location, row)`` for every row of a record file or saved dataset directory.

    ``split`` picks the split of a directory saved from a ``DatasetDict``; it is ignored for
    other inputs. Raises :class:`DataError` at the first line that is not a JSON object.
    """
    for entry in iter_entries(path, split):
        if entry.problem is not None:
            raise DataError(f"{entry.location}: {entry.problem}")
        assert entry.row is not None
        yield entry.location, entry.row


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """All rows of a JSON Lines file (whatever its extension); a bad line raises DataError."""
    rows = []
    for entry in _iter_jsonl(_existing(path)):
        if entry.problem is not None:
            raise DataError(f"{entry.location}: {entry.problem}")
        rows.append(entry.row)
    return rows


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict]) -> Path:
    """Write ``rows`` as UTF-8 JSON Lines (``ensure_ascii=False``), creating parent directories.

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    Values JSON cannot hold natively (bytes, dates, decimals, numpy scalars) are converted by
    :func:`json_default`. Returns the path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(dumps_row(row) + "\n")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def dumps_row(row: Any) -> str:
    """One row as a single JSON line (UTF-8 text, non-ASCII kept, never fails on odd values)."""
    return json.dumps(row, ensure_ascii=False, default=json_default)


def json_default(value: Any) -> Any:
    """Turn values from Parquet/Arrow into JSON: bytes as base64, dates as ISO text, and so on."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes_base64__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def iter_entries(path: str | os.PathLike[str], split: str = "train") -> Iterator[RawEntry]:
    """Yield every row as a :class:`RawEntry`, keeping lines that are not JSON objects.

    This is what :func:`iter_rows` and the skip mode of ``load_records`` build on: a bad line
    becomes an entry with ``problem`` set instead of an exception, so nothing is lost.
    File-level problems (missing file, unsupported type, unreadable file) still raise.
    """
    p = _existing(path)
    if p.is_dir():
        return _iter_hf_dir(p, split)
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        kind = f"'{p.suffix}'" if p.suffix else "(no extension)"
        raise DataError(f"{p}: unsupported file type {kind}; supported formats: "
                        f"{SUPPORTED_FORMATS}")
    return reader(p)


# ---------------------------------------------------------------------------------------------
# JSON Lines and JSON arrays
# ---------------------------------------------------------------------------------------------


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        where = "directory" if str(path).endswith(("/", os.sep)) else "file"
        raise DataError(f"{p}: {where} not found")
    return p


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value, with an article: ``an array``, ``a string``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _parse_object(text: str) -> tuple[dict | None, str | None]:
    """Parse one JSON object; return ``(row, None)`` or ``(None, problem)``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not a JSON object: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "not a JSON object: nested too deeply"
    if not isinstance(value, dict):
        return None, f"not a JSON object: got {json_kind(value)}"
    return value, None


def _iter_jsonl(p: Path) -> Iterator[RawEntry]:
    with _open_bytes(p) as fh:
        yield from _iter_jsonl_lines(p, fh)


def _open_bytes(p: Path) -> Any:
    try:
        return p.open("rb")
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or _first_line(exc)}") from None


def _iter_jsonl_lines(p: Path, lines: Iterable[bytes]) -> Iterator[RawEntry]:
    for number, data in enumerate(lines, start=1):
        if number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]  # UTF-8 byte-order mark
        location = f"{p}:{number}"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raw = data.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
            yield RawEntry(location, None, f"not valid UTF-8: {exc.reason} at byte {exc.start + 1}",
                           raw)
            continue
        if not text.strip():
            continue
        row, problem = _parse_object(text)
        yield RawEntry(location, row, problem, text.rstrip("\r\n") if problem else None)


def _iter_json(p: Path) -> Iterator[RawEntry]:
    """A ``.json`` file: an array of objects, or (as on the Hub) one object per line."""
    with _open_bytes(p) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not valid UTF-8: {exc.reason} at byte {exc.start + 1}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{"):  # JSON Lines saved as .json
            return _iter_jsonl_lines(p, data.splitlines(keepends=True))
        raise DataError(f"{p}: not valid JSON: {exc.msg} at line {exc.lineno}, "
                        f"column {exc.colno}") from None
    except RecursionError:
        raise DataError(f"{p}: not valid JSON: nested too deeply") from None
    if isinstance(value, dict) and len(text.strip().splitlines()) == 1:  # one-line JSON Lines
        return iter([RawEntry(f"{p}:1", value)])
    if not isinstance(value, list):
        raise DataError(f"{p}: expected a JSON array of objects (or one object per line), "
                        f"got {json_kind(value)}")
    return _iter_json_items(p, value)


def _iter_json_items(p: Path, items: list) -> Iterator[RawEntry]:
    for i, item in enumerate(items, start=1):
        location = f"{p}:row {i}"
        if isinstance(item, dict):
            yield RawEntry(location, item)
        else:
            yield RawEntry(location, None, f"not a JSON object: got {json_kind(item)}",
                           dumps_row(item))


# ---------------------------------------------------------------------------------------------
# Parquet and saved Hugging Face datasets
# ---------------------------------------------------------------------------------------------


def _iter_parquet(p: Path) -> Iterator[RawEntry]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(p).iter_batches(batch_size=_PARQUET_BATCH)
        yield from _iter_batches(str(p), batches)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{p}: cannot read Parquet file: {_first_line(exc)}") from None


def _iter_batches(name: str, batches: Iterable[Any]) -> Iterator[RawEntry]:
    """Rows of Arrow record batches, numbered from 1 across batches."""
    i = 0
    for batch in batches:
        for row in batch.to_pylist():
            i += 1
            yield RawEntry(f"{name}:row {i}", row)


def _iter_hf_dir(p: Path, split: str) -> Iterator[RawEntry]:
    """A directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``.

    The Arrow table is read as stored: feature types such as ``Audio`` stay undecoded
    (``{"bytes", "path"}`` dicts), and nothing needs torch.
    """
    if (p / "dataset_dict.json").is_file():
        splits = _splits(p)
        if split not in splits:
            available = ", ".join(splits) if splits else "none"
            raise DataError(f"{p}: split '{split}' not found in this saved DatasetDict; "
                            f"available splits: {available}")
        p = p / split
    if not (p / "state.json").is_file():
        raise DataError(f"{p}: a directory, but not a dataset saved with save_to_disk "
                        "(no state.json or dataset_dict.json); supported formats: "
                        f"{SUPPORTED_FORMATS}")
    return _iter_saved_dataset(p)


def _splits(p: Path) -> list[str]:
    try:
        splits = json.loads((p / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{p}: unreadable dataset_dict.json: {_first_line(exc)}") from None
    return [str(s) for s in splits]


def _iter_saved_dataset(p: Path) -> Iterator[RawEntry]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(p))
        if not isinstance(ds, datasets.Dataset):  # pragma: no cover - guarded by _iter_hf_dir
            raise DataError(f"{p}: expected a saved Dataset, got {type(ds).__name__}")
        if ds._indices is not None:  # pragma: no cover - save_to_disk flattens indices
            ds = ds.flatten_indices()
        table = ds.data.table
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here is a bad directory
        raise DataError(f"{p}: cannot load saved dataset: {_first_line(exc)}") from None
    return _iter_batches(str(p), table.to_batches(max_chunksize=_PARQUET_BATCH))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


_READERS = {".jsonl": _iter_jsonl, ".json": _iter_json, ".parquet": _iter_parquet}
