"""Sweep files: schema, overrides per variant x seed, validation of every run before compute."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from rlhf.cli.app import app
from rlhf.cli.errors import Settings
from rlhf.errors import UserError
from rlhf.sweep import load_sweep, validate_runs
from rlhf.sweep.spec import override_strings, shipped_sweeps

RECIPE = textwrap.dedent("""
    name: sweep_unit
    tracking: {experiment: sweep_unit}
    stages:
      - name: data
        kind: synthetic_preferences
        n_train_pairs: 8
        n_eval_pairs: 8
        n_sft: 8
        n_eval_prompts: 2
      - name: rl
        kind: grpo
        policy: {model: tiny:lm, sampling: {max_new_tokens: 4}}
        data: {train: "@data/rl_prompts.jsonl"}
        rewards: [{name: synthetic.sentiment}]
        steps: 2
        prompts_per_step: 2
        group_size: 2
""")


def write_sweep(folder, variants, **extra):
    (folder / "recipe.yaml").write_text(RECIPE)
    body = {"recipe": "recipe.yaml", "seeds": [0, 1], "variants": variants, **extra}
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def test_mapping_overrides_are_flow_yaml_that_parses_back():
    from rlhf.recipe.overrides import parse_override

    value = [{"name": "format.regex", "params": {"pattern": r"\s*[a-z]+\.\s*"}},
             {"name": "synthetic.sentiment", "gate": {"reward": "format.regex", "min": 1.0}}]
    texts = override_strings({"rl.rewards": value, "rl.policy.model": "@warmup/model",
                              "rl.steps": 3, "tracking.uri": None})
    parsed = [parse_override(t) for t in texts]
    assert parsed == [(["rl", "rewards"], value), (["rl", "policy", "model"], "@warmup/model"),
                      (["rl", "steps"], 3), (["tracking", "uri"], None)]
    assert override_strings(["a=1", "b.c=x"]) == ["a=1", "b.c=x"]


def test_every_variant_and_seed_is_validated_with_its_overrides(tmp_path):
    path = write_sweep(tmp_path, {"a": ["rl.steps=3"], "b": {"rl.rewards": [
        {"name": "synthetic.sentiment"}, {"name": "length.overlong",
                                          "params": {"max_len": 8, "cache": 2}}]}},
                       overrides=["rl.group_size=4"], tracking={"experiment": "elsewhere"})
    sweep = load_sweep(str(path))
    assert sweep.name == "s" and sweep.recipe == str((tmp_path / "recipe.yaml").resolve())
    runs = validate_runs(sweep)
    assert [r.key for r in runs] == ["a/seed-0", "a/seed-1", "b/seed-0", "b/seed-1"]
    assert runs[1].overrides == ["rl.group_size=4", "rl.steps=3", "seed=1",
                                 "tracking.experiment=elsewhere"]
    assert [r.recipe.seed for r in runs] == [0, 1, 0, 1]
    rl = runs[0].recipe.stage("rl").options
    assert rl.steps == 3 and rl.group_size == 4
    assert runs[0].recipe.tracking.experiment == "elsewhere"
    assert runs[0].fingerprint == runs[1].fingerprint != runs[2].fingerprint


def test_a_bad_variant_is_named_and_nothing_runs(tmp_path, monkeypatch):
    path = write_sweep(tmp_path, {"good": ["rl.steps=3"], "bad": ["rl.stepz=3"],
                                  "worse": ["rl.rewards=[{name: synthetic.sentimental}]"]})
    with pytest.raises(UserError) as err:
        validate_runs(load_sweep(str(path)))
    text = str(err.value)
    assert "2 of 3 variants do not validate; nothing was run" in text
    assert "variant 'bad' (every seed): " in text and "rl.stepz: unknown key; did you mean " \
        "'steps'" in text
    assert "variant 'worse' (every seed): " in text and "'good'" not in text
    assert text.count("variant 'bad'") == 1  # the same problem is not repeated per seed
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    result = CliRunner().invoke(app, ["sweep", str(path)])
    assert result.exit_code == 2, result.output
    assert "variant 'bad'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_sweep_file_errors(tmp_path):
    path = write_sweep(tmp_path, {"a": []})
    body = yaml.safe_load(path.read_text())
    for change, message in (({"seeds": [1, 1]}, "seeds must be distinct"),
                            ({"variantz": {}}, "unknown key"),
                            ({"variants": {"a b": []}}, "variant name 'a b' is not valid"),
                            ({"variants": {"a": ["tracking.enabled=false"]}},
                             "a sweep needs MLflow tracking")):
        path.write_text(yaml.safe_dump({**body, **change}))
        with pytest.raises(UserError, match=message):
            validate_runs(load_sweep(str(path)))
    with pytest.raises(UserError, match="no sweep named 'grpo_reward'.*grpo_rewards"):
        load_sweep("grpo_reward")


@pytest.mark.parametrize("name", sorted(shipped_sweeps()))
def test_shipped_sweeps_validate(name):
    sweep = load_sweep(name)
    runs = validate_runs(sweep)
    assert len(runs) == len(sweep.spec.variants) * len(sweep.spec.seeds)
    fingerprints = {r.variant: r.fingerprint for r in runs}
    assert len(set(fingerprints.values())) == len(fingerprints)  # each variant a distinct design


def test_tag_options_need_key_equals_value(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    for args in (["compare", "--tag", "rlhf.sweep"], ["run", "quickstart", "--tag", "=x"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "expected KEY=VALUE" in result.output, result.output
    assert not (tmp_path / "mlflow.db").exists()
