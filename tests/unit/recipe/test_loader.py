import textwrap
from pathlib import Path

import pytest

from rlhf.errors import RecipeError
from rlhf.recipe import load_recipe

GOOD = """\
name: demo
seed: 1
stages:
  - name: data
    kind: synthetic_preferences
    n_train_pairs: 16
  - name: sft
    kind: sft
    policy: {model: tiny:lm}
    data: {train: "@data/sft.jsonl"}
    trainer: {max_steps: 3}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def error_of(path: str, overrides=()) -> str:
    with pytest.raises(RecipeError) as info:
        load_recipe(path, list(overrides))
    return str(info.value)


def test_good_recipe_resolves_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), ["trainer.max_steps=5"])
    assert [s.name for s in recipe.stages] == ["data", "sft"]
    resolved = recipe.to_dict()
    assert resolved["seed"] == 1
    assert resolved["stages"][0]["n_eval_pairs"] == 128  # default filled in
    assert resolved["stages"][1]["trainer"] == {"max_steps": 5}
    assert resolved["stages"][1]["data"]["on_bad_rows"] == "error"
    assert resolved["tracking"] == {"enabled": True, "uri": None, "experiment": None}


def test_unknown_top_level_key_names_file_and_nearest(tmp_path):
    path = write(tmp_path, GOOD.replace("seed: 1", "sed: 1"))
    assert error_of(path) == f"{path}: sed: unknown key; did you mean 'seed'?"


def test_unknown_nested_stage_key(tmp_path):
    path = write(tmp_path, GOOD.replace("policy: {model: tiny:lm}", "policy: {modle: tiny:lm}"))
    msg = error_of(path)
    assert f"{path}: sft.policy.modle: unknown key; did you mean 'model'?" in msg
    assert "sft.policy.model: required key is missing" in msg


def test_wrong_type_names_key_and_value(tmp_path):
    msg = error_of(write(tmp_path, GOOD), ["data.n_train_pairs=lots"])
    assert msg.startswith(f"{tmp_path / 'recipe.yaml'}: data.n_train_pairs: ")
    assert "'lots'" in msg


def test_unknown_kind_suggests(tmp_path):
    msg = error_of(write(tmp_path, GOOD.replace("kind: sft", "kind: sfft")))
    assert "sft.kind: unknown stage kind 'sfft'; did you mean 'sft'?" in msg


def test_trainer_passthrough_keys_are_checked(tmp_path):
    msg = error_of(write(tmp_path, GOOD), ["sft.trainer.max_step=3"])
    assert "sft.trainer.max_step: unknown option of SFTConfig; did you mean 'max_steps'" in msg


def test_reference_to_later_or_missing_stage(tmp_path):
    msg = error_of(write(tmp_path, GOOD), ["sft.data.train=@dta/sft.jsonl"])
    assert "reference '@dta/...' does not name an earlier stage; did you mean 'data'?" in msg
    msg = error_of(write(tmp_path, GOOD), ["sft.data.train=@sft/x.jsonl"])
    assert "it must come earlier" in msg


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "name: x\nstages:\n  - kind: [unclosed\n")
    assert error_of(path).startswith(f"{path}:4: not valid YAML")


def test_duplicate_stage_names(tmp_path):
    text = GOOD + "  - name: data\n    kind: synthetic_preferences\n"
    assert "stage name 'data' is used twice" in error_of(write(tmp_path, text))


def test_unknown_recipe_name_suggests():
    with pytest.raises(RecipeError, match="no recipe named 'quickstar'.*did you mean 'quickstart'"):
        load_recipe("quickstar")


def test_shipped_recipes_all_validate():
    from rlhf.recipe.catalog import shipped_recipes

    names = list(shipped_recipes())
    assert "quickstart" in names
    for name in names:
        recipe = load_recipe(name)
        assert recipe.stages and recipe.description and recipe.cpu_time
