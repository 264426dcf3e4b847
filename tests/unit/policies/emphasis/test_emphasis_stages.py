"""The ``emphasis_data`` and ``emphasis_eval`` stages on SQuAD-2.0 files, and option checks."""

from __future__ import annotations

import json

import pytest

from rlhf.errors import UserError
from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

PARAGRAPHS = [
    ("Mia has a house by the river. Ann does live near the park. Rain fell.",
     [("Which place does Mia live near?", "river"), ("Which place does Ann live near?", "park")]),
    ("Zoe has lessons on the harp. Sam does play the instrument drums. The sky was grey.",
     [("Which instrument does Zoe play?", "harp")]),
]


def squad_file(path, paragraphs):
    data = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": f"{i}-{j}", "question": q, "is_impossible": False,
                                "answers": [{"text": a, "answer_start": c.index(a)}]}
                               for j, (q, a) in enumerate(qas)]}
        for i, (c, qas) in enumerate(paragraphs)]}]}
    path.write_text(json.dumps(data, indent=1))
    return path


def recipe_yaml(tmp_path, train, evals):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"""
name: emphasis_files
description: test
seed: 0
tracking: {{enabled: false}}
stages:
  - name: data
    kind: emphasis_data
    files: {{format: squad2, train: {train}, eval: {evals}}}
    budget: 0.5
    n_sft: 6
    warm_start: solver
  - name: eval
    kind: emphasis_eval
    actor: tiny:lm
    data: "@data/eval.jsonl"
    budget: 0.5
    random_draws: 2
    max_new_tokens: 3
""")
    return path


def test_stages_on_squad_files(tmp_path):
    train = squad_file(tmp_path / "train.json", PARAGRAPHS)
    evals = squad_file(tmp_path / "dev.json", PARAGRAPHS[:1])
    outcome = run_recipe(load_recipe(str(recipe_yaml(tmp_path, train, evals))),
                         run_dir=tmp_path / "run")
    data = outcome.results["data"].metrics
    assert data["data/n_train"] == 3 and data["data/n_eval"] == 2
    sft = [json.loads(line) for line in (tmp_path / "run" / "data" / "sft.jsonl").open()]
    # the solver-verified warm start keeps, per row, the sentence that makes the solver right
    expected = {"Which place does Mia live near?": "0", "Which place does Ann live near?": "1",
                "Which instrument does Zoe play?": "0"}
    assert sft and all(expected[r["prompt"].split("\n")[0][3:]] == r["completion"] for r in sft)
    m = outcome.results["eval"].metrics
    assert m["eval/none/exact_match"] == 0.5  # Ann's "park" right; Mia's "river" lost to it
    for setting in ("none", "random", "actor", "actor_transfer"):
        assert 0.0 <= m[f"eval/{setting}/exact_match"] <= m[f"eval/{setting}/f1"] <= 1.0
    assert 0.0 <= m["eval/actor/valid_rate"] <= 1.0  # an untrained actor writes anything
    predictions = (tmp_path / "run" / "eval" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 2


def test_data_stage_needs_exactly_one_source(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\ndescription: x\nstages:\n  - {name: data, kind: emphasis_data}\n")
    with pytest.raises(UserError, match="exactly one of 'synthetic' and 'files'"):
        load_recipe(str(path))
    path.write_text("name: x\ndescription: x\nstages:\n  - {name: e, kind: emphasis_eval, "
                    "actor: tiny:lm, data: d.jsonl, solver: {type: openai, url: 'ftp://x', "
                    "model: m}}\n")
    with pytest.raises(UserError, match="solver"):
        load_recipe(str(path))
