"""Synthetic distractor QA, and the SQuAD-2.0 / HotpotQA loaders with file:line:field errors."""

from __future__ import annotations

import json

import pytest

from rlhf.errors import DataError
from rlhf.policies.emphasis.data import (
    NAMES, load_hotpotqa, load_squad2, synthetic_examples, to_rl_row,
)
from rlhf.policies.emphasis.spans import segment


def test_synthetic_examples_are_deterministic_and_well_formed():
    a, b = synthetic_examples(50, seed=4), synthetic_examples(50, seed=4)
    assert a == b and a != synthetic_examples(50, seed=5)
    for row in a:
        units = segment(row["context"])
        assert len(units) == 4 and len(row["answers"]) == 1
        fact = units[row["gold_units"][0]].text(row["context"])
        assert row["answers"][0] in fact
        name = next(n for n in NAMES if f" {n} " in f" {row['question']} ")
        assert [name in u.text(row["context"]).split() for u in units].count(True) == 1
    assert 0.45 < sum(r["fooling"] for r in synthetic_examples(400, seed=0)) / 400 < 0.75
    rl = to_rl_row(a[0])
    assert rl["n_units"] == 4 and rl["prompt"].startswith("Q: ")
    with pytest.raises(ValueError, match="n_sentences"):
        synthetic_examples(1, seed=0, n_sentences=1)
    with pytest.raises(ValueError, match="budget"):
        synthetic_examples(1, seed=0, budget=0.05)


SQUAD = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{
    "context": "Mia lives in Oslo. Tom works at the bank.",
    "qas": [
        {"id": "q1", "question": "Where does Mia live?", "is_impossible": False,
         "answers": [{"text": "Oslo", "answer_start": 13}, {"text": "Oslo", "answer_start": 13},
                     {"text": "in Oslo", "answer_start": 10}]},
        {"id": "q2", "question": "Where does Ann live?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "Oslo", "answer_start": 13}]},
    ]}]}]}


def write_json(path, value):
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_squad2_loader(tmp_path):
    rows = load_squad2(write_json(tmp_path / "dev.json", SQUAD))
    assert rows == [
        {"id": "q1", "question": "Where does Mia live?",
         "context": "Mia lives in Oslo. Tom works at the bank.", "answers": ["Oslo", "in Oslo"]},
        {"id": "q2", "question": "Where does Ann live?",
         "context": "Mia lives in Oslo. Tom works at the bank.", "answers": []}]


def test_squad2_bad_rows_name_file_line_and_field(tmp_path):
    data = json.loads(json.dumps(SQUAD))
    del data["data"][0]["paragraphs"][0]["qas"][1]["question"]
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(DataError) as err:
        load_squad2(path)
    line = line_of(path, '"id": "q2"') - 1  # the object's opening brace
    assert str(err.value) == f"{path}:{line}: data[0].paragraphs[0].qas[1].question: missing"

    data = json.loads(json.dumps(SQUAD))
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"] = []
    path = write_json(tmp_path / "noanswer.json", data)
    with pytest.raises(DataError, match=r"noanswer.json:\d+: data\[0\].paragraphs\[0\]"
                                        r".qas\[0\].answers: empty for an answerable"):
        load_squad2(path)

    data = json.loads(json.dumps(SQUAD))
    data["data"][0]["paragraphs"][0]["context"] = "Mia <start_important>lives."
    path = write_json(tmp_path / "tag.json", data)
    with pytest.raises(DataError, match=r"tag.json:\d+: data\[0\].paragraphs\[0\].context: "
                                        "contains an emphasis tag"):
        load_squad2(path)

    data = json.loads(json.dumps(SQUAD))
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][2]["text"] = 7
    path = write_json(tmp_path / "type.json", data)
    with pytest.raises(DataError) as err:
        load_squad2(path)
    assert str(err.value).startswith(f"{path}:{line_of(path, ': 7') - 1}: data[0].paragraphs[0]"
                                     ".qas[0].answers[2].text: expected str, got int")

    for text, message in (('{"data": 3}', ":1: data: expected list, got int"),
                          ("{oops", ":1: not valid JSON"), ('{"version": 2}', ":1: data: missing")):
        (tmp_path / "x.json").write_text(text)
        with pytest.raises(DataError, match=message):
            load_squad2(tmp_path / "x.json")
    with pytest.raises(DataError, match="file not found"):
        load_squad2(tmp_path / "missing.json")


HOTPOT = [
    {"_id": "h1", "question": "Which town is Mia from?", "answer": "Oslo",
     "supporting_facts": [["Mia", 0]],
     "context": [["Mia", ["Mia was born in Oslo.", " She plays  chess."]],
                 ["Tom", ["Tom is from Rome."]]]},
    {"_id": "h2", "question": "Is Tom from Rome?", "answer": "yes",
     "context": [["Tom", ["Tom is from Rome."]]]},
]


def test_hotpotqa_loader_json_and_jsonl(tmp_path):
    rows = load_hotpotqa(write_json(tmp_path / "hotpot.json", HOTPOT))
    assert rows[0] == {"id": "h1", "question": "Which town is Mia from?",
                       "context": "Mia: Mia was born in Oslo. She plays chess.\n"
                                  "Tom: Tom is from Rome.",
                       "answers": ["Oslo"], "supporting_facts": [["Mia", 0]]}
    assert [u.text(rows[0]["context"]) for u in segment(rows[0]["context"])] == [
        "Mia: Mia was born in Oslo.", "She plays chess.", "Tom: Tom is from Rome."]
    lines = tmp_path / "hotpot.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in HOTPOT) + "\n")
    assert load_hotpotqa(lines) == rows


def test_hotpotqa_bad_rows_name_file_line_and_field(tmp_path):
    bad = json.loads(json.dumps(HOTPOT))
    bad[1]["context"][0] = ["Tom", "Tom is from Rome."]
    path = write_json(tmp_path / "bad.json", bad)
    with pytest.raises(DataError) as err:
        load_hotpotqa(path)
    line = line_of(path, '"h2"') - 1
    assert str(err.value) == f"{path}:{line}: [1].context[0]: expected [title, [sentence, ...]]"
    lines = tmp_path / "bad.jsonl"
    lines.write_text(json.dumps(HOTPOT[0]) + "\n" + json.dumps({"_id": "h2", "answer": "x",
                                                                "context": []}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: question: missing"):
        load_hotpotqa(lines)
    lines.write_text(json.dumps(HOTPOT[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        load_hotpotqa(lines)
    lines.write_text(json.dumps({**HOTPOT[0], "question": "  "}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: question: empty"):
        load_hotpotqa(lines)
    write_json(tmp_path / "obj.json", {"data": []})
    with pytest.raises(DataError, match="expected a JSON array"):
        load_hotpotqa(tmp_path / "obj.json")
