"""Record formats, readers/writers and row-level validation.

Bad input gets a clear :class:`~rlhf.errors.DataError` naming the file, the row and the field
(``data.jsonl:2: chosen: missing``), and nothing is lost: with ``on_bad_rows="skip"`` bad rows go
to a rejected-rows file. Importing this package imports neither ``datasets`` nor ``torch``;
``pyarrow``/``datasets`` are imported only when a Parquet file, a saved dataset or
:func:`to_dataset` needs them.

- :mod:`rlhf.data.readers`: :func:`iter_rows`, :func:`read_jsonl`, :func:`write_jsonl`;
- :mod:`rlhf.data.records`: the ``preference`` and ``prompt`` formats, :func:`validate_row`;
- :mod:`rlhf.data.validate`: :func:`load_records`, :class:`LoadedRecords`, :func:`to_dataset`.
"""

from rlhf.data.readers import SUPPORTED_FORMATS, iter_rows, read_jsonl, write_jsonl
from rlhf.data.records import KINDS, ROLES, format_problem, record_form, validate_row
from rlhf.data.validate import (
    ON_BAD_ROWS,
    BadRowError,
    LoadedRecords,
    load_records,
    to_dataset,
)

__all__ = [
    "KINDS",
    "ON_BAD_ROWS",
    "ROLES",
    "SUPPORTED_FORMATS",
    "BadRowError",
    "LoadedRecords",
    "format_problem",
    "iter_rows",
    "load_records",
    "read_jsonl",
    "record_form",
    "to_dataset",
    "validate_row",
    "write_jsonl",
]
