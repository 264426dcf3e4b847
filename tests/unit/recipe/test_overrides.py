import pytest

from rlhf.errors import OverrideError
from rlhf.recipe.overrides import apply_overrides, parse_override

RAW = {
    "name": "r",
    "seed": 0,
    "stages": [
        {"name": "data", "kind": "synthetic_preferences", "n_train_pairs": 64},
        {"name": "sft", "kind": "sft", "policy": {"model": "tiny:lm"}, "data": {"train": "x"},
         "trainer": {"max_steps": 10}},
        {"name": "dpo", "kind": "dpo", "policy": {"model": "@sft/model"}, "data": {"train": "x"}},
    ],
}


def test_parse_yaml_scalars():
    assert parse_override("trainer.max_steps=20") == (["trainer", "max_steps"], 20)
    assert parse_override("a.b=1e-3") == (["a", "b"], "1e-3")  # YAML 1.1: needs a dot
    assert parse_override("a.b=1.0e-3") == (["a", "b"], 0.001)
    assert parse_override("tracking.enabled=false") == (["tracking", "enabled"], False)
    assert parse_override("x=[a, b]") == (["x"], ["a", "b"])
    assert parse_override("x=") == (["x"], None)
    with pytest.raises(OverrideError, match="expected key.path=value"):
        parse_override("novalue")
    with pytest.raises(OverrideError, match="empty key"):
        parse_override("a..b=1")


def test_top_level_stage_name_index_and_broadcast():
    out = apply_overrides(RAW, ["seed=3", "data.n_train_pairs=8", "stages.2.data.train=y",
                                "stages.sft.trainer.learning_rate=0.1", "policy.lora.r=4"])
    assert out["seed"] == 3
    assert out["stages"][0]["n_train_pairs"] == 8
    assert out["stages"][2]["data"]["train"] == "y"
    assert out["stages"][1]["trainer"] == {"max_steps": 10, "learning_rate": 0.1}
    # broadcast: every stage whose kind has a `policy` option, nested mappings created
    assert out["stages"][1]["policy"]["lora"] == {"r": 4}
    assert out["stages"][2]["policy"]["lora"] == {"r": 4}
    assert "policy" not in out["stages"][0]
    assert RAW["seed"] == 0 and "lora" not in RAW["stages"][1]["policy"]  # input untouched


def test_broadcast_trainer_reaches_every_trainer_stage():
    out = apply_overrides(RAW, ["trainer.max_steps=2"])
    assert out["stages"][1]["trainer"]["max_steps"] == 2
    assert out["stages"][2]["trainer"]["max_steps"] == 2


def test_unknown_head_suggests():
    with pytest.raises(OverrideError) as info:
        apply_overrides(RAW, ["trainr.max_steps=2"])
    assert "'trainr' is not a recipe key, a stage name or an option of any stage" in str(info.value)
    assert "did you mean 'trainer'" in str(info.value)


def test_unknown_stage_and_bad_index():
    with pytest.raises(OverrideError, match="no stage 'dpp'; did you mean 'dpo'"):
        apply_overrides(RAW, ["stages.dpp.beta=1"])
    with pytest.raises(OverrideError, match="index 7 out of range"):
        apply_overrides(RAW, ["stages.7.beta=1"])
    with pytest.raises(OverrideError, match="trainer.max_steps is a value, not a mapping"):
        apply_overrides(RAW, ["sft.trainer.max_steps.x=1"])
