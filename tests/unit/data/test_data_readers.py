"""Readers and writers: locations, file-level errors, format round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rlhf.data import iter_rows, read_jsonl, write_jsonl
from rlhf.errors import DataError, UserError

ROWS = [
    {"prompt": "Say hi", "chosen": "Hi!", "rejected": "No.", "margin": 0.5, "source": "a"},
    {"prompt": "Dis bonjour", "chosen": "Bonjour é", "rejected": "Non.", "margin": 1.0,
     "source": "b"},
    {"prompt": "Count", "chosen": "1 2 3", "rejected": "3 2 1", "margin": 2.0, "source": "c"},
]


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_locations_are_one_based_line_numbers_and_blank_lines_are_skipped(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl",
                  [json.dumps(ROWS[0]), "", "   ", json.dumps(ROWS[1])])
    got = list(iter_rows(path))
    assert got == [(f"{path}:1", ROWS[0]), (f"{path}:4", ROWS[1])]


def test_bad_json_on_line_3_names_file_and_line(tmp_path):
    path = _jsonl(tmp_path / "bad.jsonl",
                  [json.dumps(ROWS[0]), json.dumps(ROWS[1]), '{"prompt": "x", }'])
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == (f"{path}:3: not a JSON object: Expecting property name enclosed "
                              "in double quotes at column 17")


def test_line_that_is_json_but_not_an_object(tmp_path):
    path = _jsonl(tmp_path / "arr.jsonl", [json.dumps(ROWS[0]), "[1, 2]"])
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == f"{path}:2: not a JSON object: got an array"


def test_invalid_utf8_line_is_a_data_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == f"{path}:2: not valid UTF-8: invalid continuation byte at byte 16"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == f"{path}: file not found"
    assert isinstance(exc.value, UserError)


def test_unknown_extension_lists_supported_formats(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("prompt,chosen\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == (
        f"{path}: unsupported file type '.csv'; supported formats: .jsonl (one object per "
        "line), .json (an array of objects), .parquet, or a directory saved with datasets' "
        "save_to_disk")


def test_write_jsonl_creates_dirs_keeps_unicode_and_round_trips(tmp_path):
    path = tmp_path / "a" / "b" / "out.jsonl"
    assert write_jsonl(path, ROWS) == path
    raw = path.read_bytes()
    assert "Bonjour é".encode() in raw
    assert raw.count(b"\n") == len(ROWS)
    assert read_jsonl(path) == ROWS
    assert list(tmp_path.joinpath("a", "b").iterdir()) == [path]  # no temporary file left


def test_json_array_file(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(ROWS), encoding="utf-8")
    got = list(iter_rows(path))
    assert got == [(f"{path}:row {i}", row) for i, row in enumerate(ROWS, start=1)]


def test_json_array_item_that_is_not_an_object(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([ROWS[0], "oops"]), encoding="utf-8")
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == f"{path}:row 2: not a JSON object: got a string"


def test_json_file_holding_json_lines_is_read_line_by_line(tmp_path):
    path = _jsonl(tmp_path / "pairs.json", [json.dumps(r) for r in ROWS])
    assert [loc for loc, _ in iter_rows(path)] == [f"{path}:1", f"{path}:2", f"{path}:3"]


def test_json_file_that_is_not_an_array(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('"just text"', encoding="utf-8")
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == (f"{path}: expected a JSON array of objects (or one object per "
                              "line), got a string")


def test_parquet_round_trip_same_rows_and_locations(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    got = list(iter_rows(path))
    assert got == [(f"{path}:row {i}", row) for i, row in enumerate(ROWS, start=1)]


def test_corrupt_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value).startswith(f"{path}: cannot read Parquet file: ")


def test_hf_dataset_dir_round_trip(tmp_path):
    import datasets

    path = tmp_path / "ds"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(path))
    got = list(iter_rows(path))
    assert got == [(f"{path}:row {i}", row) for i, row in enumerate(ROWS, start=1)]


def test_hf_dataset_dict_dir_with_split(tmp_path):
    import datasets

    path = tmp_path / "dd"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:2]),
                          "test": datasets.Dataset.from_list(ROWS[2:])}).save_to_disk(str(path))
    assert [r for _, r in iter_rows(path)] == ROWS[:2]
    got = list(iter_rows(path, split="test"))
    assert got == [(f"{path / 'test'}:row 1", ROWS[2])]


def test_hf_dataset_dict_dir_without_the_split_lists_splits(tmp_path):
    import datasets

    path = tmp_path / "dd"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS[:1]),
                          "validation": datasets.Dataset.from_list(ROWS[1:])}
                         ).save_to_disk(str(path))
    with pytest.raises(DataError) as exc:
        list(iter_rows(path))
    assert str(exc.value) == (f"{path}: split 'train' not found in this saved DatasetDict; "
                              "available splits: test, validation")


def test_directory_that_is_not_a_saved_dataset(tmp_path):
    with pytest.raises(DataError) as exc:
        list(iter_rows(tmp_path))
    assert str(exc.value) == (
        f"{tmp_path}: a directory, but not a dataset saved with save_to_disk (no state.json or "
        "dataset_dict.json); supported formats: .jsonl (one object per line), .json (an array "
        "of objects), .parquet, or a directory saved with datasets' save_to_disk")


def test_importing_rlhf_data_imports_neither_torch_nor_datasets():
    code = ("import sys, rlhf.data; "
            "print(sorted(m for m in ('torch', 'datasets', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_read_jsonl_on_a_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError) as exc:
        read_jsonl(tmp_path)
    assert str(exc.value) == f"{tmp_path}: cannot read: Is a directory"
