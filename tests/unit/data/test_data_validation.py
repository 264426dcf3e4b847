"""load_records: error and skip modes, rejected-rows file, datasets round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlhf.data import BadRowError, LoadedRecords, load_records, read_jsonl, to_dataset
from rlhf.errors import DataError

HINT = "; set data.on_bad_rows=skip to skip bad rows"
GOOD = [
    {"id": "p1", "prompt": "Say hi", "chosen": "Hi!", "rejected": "No.", "margin": 1.5,
     "lang": "en"},
    {"id": "p2", "prompt": "Dis bonjour", "chosen": "Bonjour !", "rejected": "Non.",
     "margin": 0.5, "lang": "fr"},
]
CHAT = [
    {"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
     "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]},
    {"chosen": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}],
     "rejected": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "3"}]},
]


def _jsonl(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
                    encoding="utf-8")
    return path


def _error(path: Path, kind: str = "preference", **kwargs) -> str:
    with pytest.raises(DataError) as exc:
        load_records(path, kind, **kwargs)
    return str(exc.value)


def test_good_file_keeps_rows_and_extra_columns(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", GOOD)
    loaded = load_records(path, "preference")
    assert loaded == LoadedRecords(GOOD, 2, 0, None, [f"{path}:1", f"{path}:2"], "text")
    assert loaded.n_good == 2


def test_missing_chosen_at_line_2(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], {"prompt": "p", "rejected": "r"}])
    assert _error(path) == f"{path}:2: chosen: missing" + HINT


def test_several_problems_in_one_row_are_counted(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "margin": float("nan")}])
    assert _error(path) == f"{path}:1: chosen: missing (and 2 more problems in this row)" + HINT
    path = _jsonl(tmp_path / "two.jsonl", [{"prompt": "p", "chosen": "c"}, GOOD[0]])
    with pytest.raises(BadRowError) as exc:
        load_records(path, "preference")
    assert exc.value.location == f"{path}:1"
    assert exc.value.problems == [("rejected", "missing")]
    path = _jsonl(tmp_path / "three.jsonl", [{"prompt": "p", "chosen": 1, "rejected": "r", "margin": "x"}])
    assert _error(path) == (f"{path}:1: chosen: expected a string or a list of messages, got int"
                            " (and 1 more problem in this row)" + HINT)


def test_bad_json_line_3_in_error_mode(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], GOOD[1], "{not json"])
    assert _error(path) == (f"{path}:3: not a JSON object: Expecting property name enclosed in "
                            "double quotes at column 2" + HINT)


def test_wrong_type_bad_role_identical_margin_mixed(tmp_path):
    cases = {
        "type": ({"prompt": "p", "chosen": ["a"], "rejected": "r"},
                 "chosen: message 1: expected an object with role and content, got str (and 1 "
                 "more problem in this row)"),
        "role": ({"chosen": CHAT[0]["chosen"],
                  "rejected": [{"role": "user", "content": "q"}, {"role": "bot", "content": "b"}]},
                 "rejected: message 2: role 'bot' is not one of system, user, assistant, tool"),
        "same": ({"prompt": "p", "chosen": "x", "rejected": "x"},
                 "chosen and rejected are identical"),
        "margin": ({"prompt": "p", "chosen": "x", "rejected": "y", "margin": float("inf")},
                   "margin: not a finite number"),
        "mixed": ({"prompt": "p", "chosen": CHAT[0]["chosen"], "rejected": CHAT[0]["rejected"]},
                  "mixed forms: prompt is text but chosen and rejected are lists of messages; "
                  "prompt, chosen and rejected must all be text or all be lists of messages"),
    }
    for name, (row, problem) in cases.items():
        path = _jsonl(tmp_path / f"{name}.jsonl", [GOOD[0], GOOD[1], row])
        assert _error(path) == f"{path}:3: {problem}" + HINT


def test_rows_must_share_one_form(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], CHAT[0]])
    assert _error(path) == (f"{path}:2: messages with implicit prompt form, but earlier rows use "
                            f"text form (first at {path}:1); all rows must use one form" + HINT)


def test_empty_file_has_no_rows(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    assert _error(path) == f"{path}: no rows"


def test_skip_mode_counts_and_writes_rejected_rows(tmp_path):
    bad_row = {"prompt": "p", "chosen": "same", "rejected": "same", "extra": [1]}
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], bad_row, "", "[oops", GOOD[1]])
    rejected = tmp_path / "run" / "rejected.jsonl"
    loaded = load_records(path, "preference", on_bad_rows="skip", rejected_path=rejected)
    assert (loaded.rows, loaded.n_total, loaded.n_bad) == (GOOD, 4, 2)
    assert loaded.rejected_path == rejected
    assert loaded.locations == [f"{path}:1", f"{path}:5"]
    assert read_jsonl(rejected) == [
        {**bad_row, "_location": f"{path}:2", "_errors": ["chosen and rejected are identical"]},
        {"_raw": "[oops", "_location": f"{path}:4",
         "_errors": ["not a JSON object: Expecting value at column 2"]},
    ]


def test_skip_mode_lists_every_problem_of_a_row(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], {"prompt": "", "margin": "big"}])
    rejected = tmp_path / "rejected.jsonl"
    loaded = load_records(path, "preference", on_bad_rows="skip", rejected_path=rejected)
    assert loaded.n_bad == 1
    assert read_jsonl(rejected)[0]["_errors"] == [
        "prompt: empty string", "chosen: missing", "rejected: missing",
        "margin: expected a finite number, got str"]


def test_skip_mode_with_no_bad_rows_leaves_an_empty_rejected_file(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", GOOD)
    rejected = tmp_path / "rejected.jsonl"
    rejected.write_text('{"stale": 1}\n', encoding="utf-8")
    loaded = load_records(path, "preference", on_bad_rows="skip", rejected_path=rejected)
    assert (loaded.n_total, loaded.n_bad) == (2, 0)
    assert rejected.read_text(encoding="utf-8") == ""


def test_skip_mode_all_bad_still_raises(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p"}, {"prompt": "q"}])
    rejected = tmp_path / "rejected.jsonl"
    message = _error(path, on_bad_rows="skip", rejected_path=rejected)
    assert message == (f"{path}: all 2 rows are bad (the first: {path}:1: chosen: missing); "
                       f"the bad rows are in {rejected}")
    assert len(read_jsonl(rejected)) == 2


def test_skip_mode_needs_a_rejected_path_and_mode_is_checked(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", GOOD)
    with pytest.raises(ValueError, match="needs a rejected_path"):
        load_records(path, "preference", on_bad_rows="skip")
    assert _error(path, on_bad_rows="ignore") == (
        "data.on_bad_rows: expected one of error, skip, got 'ignore'")


def test_implicit_prompt_chat_form_is_accepted(tmp_path):
    path = _jsonl(tmp_path / "chat.jsonl", CHAT)
    loaded = load_records(path, "preference")
    assert loaded.rows == CHAT
    assert loaded.form == "messages with implicit prompt"
    ds = to_dataset(loaded.rows)
    assert ds[1]["chosen"] == CHAT[1]["chosen"]


def test_prompt_records(tmp_path):
    path = _jsonl(tmp_path / "prompts.jsonl", [{"prompt": "a", "answer": "1"}, {"prompt": "b"}])
    loaded = load_records(path, "prompt")
    assert loaded.rows == [{"prompt": "a", "answer": "1"}, {"prompt": "b"}]


def test_parquet_and_hf_dir_load_the_same_rows_as_jsonl(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = load_records(_jsonl(tmp_path / "pairs.jsonl", GOOD), "preference")
    parquet = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(GOOD), parquet)
    from_parquet = load_records(parquet, "preference")
    hf_dir = tmp_path / "hf"
    datasets.DatasetDict({"eval": datasets.Dataset.from_list(GOOD)}).save_to_disk(str(hf_dir))
    from_hf = load_records(hf_dir, "preference", split="eval")
    assert jsonl.rows == from_parquet.rows == from_hf.rows == GOOD
    assert from_parquet.locations == [f"{parquet}:row 1", f"{parquet}:row 2"]
    assert from_hf.locations == [f"{hf_dir / 'eval'}:row 1", f"{hf_dir / 'eval'}:row 2"]


def test_parquet_bad_row_location(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD[0], {**GOOD[1], "chosen": None}]), parquet)
    assert _error(parquet) == f"{parquet}:row 2: chosen: missing" + HINT


def test_to_dataset_drops_private_keys_and_unions_columns():
    rows = [{"prompt": "a", "_location": "x:1"}, {"prompt": "b", "score": 2, "_errors": []}]
    ds = to_dataset(rows)
    assert ds.column_names == ["prompt", "score"]
    assert ds.to_list() == [{"prompt": "a", "score": None}, {"prompt": "b", "score": 2}]


def test_to_dataset_names_a_column_with_mixed_types(tmp_path):
    path = _jsonl(tmp_path / "pairs.jsonl", [GOOD[0], GOOD[1], {**GOOD[0], "id": 3}])
    loaded = load_records(path, "preference")
    with pytest.raises(DataError) as exc:
        loaded.to_dataset()
    assert str(exc.value) == (f"{path}:3: id: int value does not match the str values of earlier "
                              f"rows (first at {path}:1); a column must have one type in every "
                              "row")
