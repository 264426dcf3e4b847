"""Token-id preference records for ``dpo`` (codec-token pairs): detection, loading, every bad
row named as file:line: field, the trainer pass-through, and exit code 2 through ``rlhf run``."""

from __future__ import annotations

import json

import pytest
import yaml

from rlhf.algorithms.dpo_tokens import ID_FIELDS, is_token_file, load_token_pairs
from rlhf.errors import DataError


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD = {"prompt_ids": [1, 2], "chosen_ids": [5, 9], "rejected_ids": [6, 7, 9], "id": "p"}


def test_detects_and_loads_token_pairs(tmp_path):
    f = write(tmp_path / "pairs.jsonl", ["", GOOD, {**GOOD, "chosen_ids": [8]}])
    assert is_token_file(f)
    assert not is_token_file(write(tmp_path / "text.jsonl",
                                   [{"prompt": "a", "chosen": "b", "rejected": "c"}]))
    assert not is_token_file(tmp_path / "missing.jsonl")
    ds = load_token_pairs(f, vocab_size=10)
    assert ds.column_names == list(ID_FIELDS) and len(ds) == 2
    assert ds[1] == {"prompt_ids": [1, 2], "chosen_ids": [8], "rejected_ids": [6, 7, 9]}


def test_every_bad_row_is_named(tmp_path):
    f = write(tmp_path / "bad.jsonl", [
        GOOD,
        {**GOOD, "chosen_ids": [5, 10]},           # line 2: outside the vocabulary
        {"prompt_ids": [1], "rejected_ids": []},   # line 3: chosen missing, rejected empty
        "{not json",                               # line 4
        {**GOOD, "prompt_ids": [1, "2"]},          # line 5: not an integer
        [1, 2],                                    # line 6: not an object
    ])
    with pytest.raises(DataError) as info:
        load_token_pairs(f, vocab_size=10)
    msg = str(info.value)
    assert f"{f}:2: chosen_ids: item 1: token id 10 outside the vocabulary [0, 10)" in msg
    assert f"{f}:3: chosen_ids: missing" in msg
    assert f"{f}:3: rejected_ids: expected a non-empty list of token ids" in msg
    assert f"{f}:4: not valid JSON" in msg
    assert f"{f}:5: prompt_ids: item 1: expected an integer token id, got '2'" in msg
    assert f"{f}:6: expected a JSON object" in msg
    assert f"{f}:1:" not in msg
    with pytest.raises(DataError, match="no preference pairs"):
        load_token_pairs(write(tmp_path / "empty.jsonl", [""]), 10)


def test_a_bad_token_file_exits_with_code_2(tmp_path):
    from typer.testing import CliRunner

    from rlhf.cli.app import app

    data = write(tmp_path / "pairs.jsonl", [{**GOOD, "rejected_ids": [1, 99999]}])
    recipe = {"name": "tok", "seed": 0, "tracking": {"enabled": False}, "stages": [
        {"name": "dpo", "kind": "dpo", "policy": {"model": "tiny:lm"},
         "data": {"train": str(data)}, "trainer": {"max_steps": 1}}]}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "r.yaml"), "--run-dir",
                                      str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "pairs.jsonl:1: rejected_ids: item 1: token id 99999 outside" in \
        " ".join(result.output.split())
