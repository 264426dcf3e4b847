"""Load a record file, validate every row, and stop or set bad rows aside.

``load_records(path, kind)`` reads any supported file (see :mod:`rlhf.data.readers`), checks each
row with :func:`rlhf.data.records.validate_row` and that all rows share one form, then:

- ``on_bad_rows="error"`` (default): the first bad row raises :class:`BadRowError`
  ``"<location>: <field>: <problem> (and N more problems in this row); set
  data.on_bad_rows=skip to skip bad rows"``;
- ``on_bad_rows="skip"``: every bad row goes to ``rejected_path`` (JSON Lines: the original row
  plus ``_location`` and ``_errors``; a line that was not a JSON object is kept as ``_raw``
  text) and is counted. Nothing is dropped silently, and a file whose rows are all bad still
  raises.

:func:`to_dataset` turns the rows into a ``datasets.Dataset`` (``datasets`` is imported only
then) and reports a column whose rows hold incompatible types by column and row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlhf.data.readers import RawEntry, iter_entries, write_jsonl
from rlhf.data.records import KINDS, Problem, format_problem, record_form, validate_row
from rlhf.errors import DataError

log = logging.getLogger(__name__)

ON_BAD_ROWS = ("error", "skip")
"""Values of ``data.on_bad_rows``."""
PRIVATE_KEYS = ("_location", "_errors", "_raw")
"""Keys this package adds to rejected rows; :func:`to_dataset` never turns them into columns."""
SKIP_HINT = "set data.on_bad_rows=skip to skip bad rows"


class BadRowError(DataError):
    """A row that does not validate; ``location`` and ``problems`` hold the details."""

    def __init__(self, location: str, problems: list[Problem], hint: str | None = SKIP_HINT):
        self.location = location
        self.problems = list(problems)
        super().__init__(row_message(location, problems) + (f"; {hint}" if hint else ""))


@dataclass
class LoadedRecords:
    """The valid rows of a record file and what happened to the others.

    ``rows`` are the original rows (extra columns kept, nothing added); ``locations[i]`` is where
    ``rows[i]`` came from. ``n_total`` counts every row read (bad ones included), ``n_bad`` the
    rows set aside. ``rejected_path`` is the rejected-rows file (skip mode; it is rewritten on
    every load, empty when no row was bad) or ``None`` (error mode).
    """

    rows: list[dict[str, Any]]
    n_total: int
    n_bad: int
    rejected_path: Path | None
    locations: list[str] = field(default_factory=list)
    form: str | None = None
    """The form all rows share: ``text``, ``messages`` or ``messages with implicit prompt``."""

    @property
    def n_good(self) -> int:
        """Number of rows kept."""
        return len(self.rows)

    def to_dataset(self) -> Any:
        """The rows as a ``datasets.Dataset`` (see :func:`to_dataset`)."""
        return to_dataset(self.rows, self.locations)


def row_message(location: str, problems: Sequence[Problem]) -> str:
    """``"<location>: <field>: <problem>"`` for the first problem, counting the others."""
    text = f"{location}: {format_problem(*problems[0])}"
    more = len(problems) - 1
    if more:
        text += f" (and {more} more problem{'s' if more > 1 else ''} in this row)"
    return text


def load_records(path: str | os.PathLike[str], kind: str, on_bad_rows: str = "error",
                 rejected_path: str | os.PathLike[str] | None = None,
                 split: str = "train") -> LoadedRecords:
    """Read and validate every row of ``path`` as ``kind`` records (``preference``/``prompt``).

    ``split`` chooses the split of a saved ``DatasetDict`` directory. In skip mode
    ``rejected_path`` is required. Raises :class:`DataError` for an empty file, a bad row (error
    mode) or a file whose rows are all bad (skip mode).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if on_bad_rows not in ON_BAD_ROWS:
        raise DataError(f"data.on_bad_rows: expected one of {', '.join(ON_BAD_ROWS)}, "
                        f"got {on_bad_rows!r}")
    skip = on_bad_rows == "skip"
    if skip and rejected_path is None:
        raise ValueError("load_records(on_bad_rows='skip') needs a rejected_path for bad rows")
    checker = _RowChecker(kind)
    rows: list[dict[str, Any]] = []
    locations: list[str] = []
    rejected: list[dict[str, Any]] = []
    for entry in iter_entries(path, split):
        problems = checker.check(entry)
        if not problems:
            rows.append(entry.row)  # type: ignore[arg-type]
            locations.append(entry.location)
        elif skip:
            rejected.append(rejected_row(entry, problems))
        else:
            raise BadRowError(entry.location, problems)
    n_total = len(rows) + len(rejected)
    if n_total == 0:
        raise DataError(f"{path}: no rows")
    out = Path(rejected_path) if skip else None
    if out is not None:
        write_jsonl(out, rejected)
    if rejected:
        _report_rejected(path, rejected, n_total, out)
    return LoadedRecords(rows, n_total, len(rejected), out, locations, checker.form)


def rejected_row(entry: RawEntry, problems: Sequence[Problem]) -> dict[str, Any]:
    """What the rejected-rows file holds for a bad row: the row, ``_location`` and ``_errors``."""
    out: dict[str, Any] = dict(entry.row) if entry.row is not None else {"_raw": entry.raw}
    out["_location"] = entry.location
    out["_errors"] = [format_problem(f, p) for f, p in problems]
    return out


def _report_rejected(path: Any, rejected: list[dict[str, Any]], n_total: int,
                     out: Path | None) -> None:
    first = rejected[0]
    first_text = f"{first['_location']}: {first['_errors'][0]}"
    if len(rejected) == n_total:
        raise DataError(f"{path}: all {n_total} rows are bad (the first: {first_text}); "
                        f"the bad rows are in {out}")
    log.warning("%s: skipped %d of %d rows (first: %s); the bad rows are in %s",
                path, len(rejected), n_total, first_text, out)


class _RowChecker:
    """Validates rows one by one, remembering the form of the first good row."""

    def __init__(self, kind: str):
        self.kind = kind
        self.form: str | None = None
        self.form_at = ""

    def check(self, entry: RawEntry) -> list[Problem]:
        if entry.problem is not None:
            return [("", entry.problem)]
        assert entry.row is not None
        problems = validate_row(self.kind, entry.row)
        if problems:
            return problems
        form = record_form(self.kind, entry.row)
        if self.form is None:
            self.form, self.form_at = form, entry.location
        elif form != self.form:
            return [("", f"{form} form, but earlier rows use {self.form} form (first at "
                         f"{self.form_at}); all rows must use one form")]
        return []


# ---------------------------------------------------------------------------------------------
# datasets.Dataset
# ---------------------------------------------------------------------------------------------


def to_dataset(rows: Sequence[dict[str, Any]], locations: Sequence[str] | None = None) -> Any:
    """The rows as a ``datasets.Dataset``; columns are the union of the rows' keys.

    A key missing from a row becomes null there; the private keys in :data:`PRIVATE_KEYS` are
    dropped. A column whose values cannot share one Arrow type (``id`` a string in one row and
    an integer in another) raises :class:`DataError` naming the column and both rows, using
    ``locations`` (as in :class:`LoadedRecords`) when given.
    """
    import datasets
    import pyarrow as pa

    names: dict[str, None] = {}
    for row in rows:
        names.update((k, None) for k in row if k not in PRIVATE_KEYS)
    columns = {k: [row.get(k) for row in rows] for k in names}
    try:
        return datasets.Dataset.from_dict(columns)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        where = list(locations) if locations is not None else [f"row {i + 1}"
                                                                for i in range(len(rows))]
        message = _column_conflict(columns, where)
        if message is None:
            message = f"cannot build a dataset from the rows: {str(exc).splitlines()[0][:300]}"
        raise DataError(message) from None


def _column_conflict(columns: dict[str, list[Any]], where: list[str]) -> str | None:
    """Name the first column whose values have no common type, and the rows that disagree."""
    for name, values in columns.items():
        if _arrow_ok(values):
            continue
        first = next((i for i, v in enumerate(values) if v is not None), 0)
        lo, hi = first + 1, len(values)  # smallest prefix length that fails, by bisection
        while lo < hi:
            mid = (lo + hi) // 2
            if _arrow_ok(values[:mid]):
                lo = mid + 1
            else:
                hi = mid
        bad = lo - 1
        return (f"{where[bad]}: {name}: {type(values[bad]).__name__} value does not match the "
                f"{type(values[first]).__name__} values of earlier rows (first at "
                f"{where[first]}); a column must have one type in every row")
    return None


def _arrow_ok(values: list[Any]) -> bool:
    import pyarrow as pa

    try:
        pa.array(values)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True
