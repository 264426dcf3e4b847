"""The CLI's commands and exit codes (0 ok, 2 user error, 1 internal error), run in-process."""

import json
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from rlhf import __version__
from rlhf.cli.app import app
from rlhf.cli.errors import Settings


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"rlhf {__version__}"


def test_recipes_ls_show_cp(cli, tmp_path):
    result = cli("recipes", "ls")
    assert result.exit_code == 0
    assert "quickstart" in result.output and "data → warmup → reward_model" in result.output
    result = cli("recipes", "show", "dpo_tiny")
    assert result.exit_code == 0 and "kind: synthetic_preferences" in result.output
    result = cli("recipes", "cp", "quickstart", "mine.yaml")
    assert result.exit_code == 0
    copied = (tmp_path / "mine.yaml").read_text()
    assert copied.startswith("# Launch: rlhf run quickstart")  # comments kept
    result = cli("recipes", "cp", "quickstart", "mine.yaml")
    assert result.exit_code == 2 and "exists already; pass --force" in result.output


def test_validate_ok_and_user_errors(cli):
    result = cli("recipes", "validate", "dpo_tiny", "dpo.trainer.beta=0.2")
    assert result.exit_code == 0 and "is valid" in result.output
    result = cli("recipes", "validate", "dpo_tiny", "dpo.trainer.betta=0.2")
    assert result.exit_code == 2
    assert "dpo.trainer.betta: unknown option of DPOConfig; did you mean 'beta'" in result.output
    assert "Traceback" not in result.output
    result = cli("recipes", "validate", "quickstrat")
    assert result.exit_code == 2 and "did you mean 'quickstart'" in result.output


def test_dry_run_prints_resolved_config_and_plan(cli, tmp_path):
    result = cli("run", "dpo_tiny", "trainer.max_steps=7", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "max_steps: 7" in result.output
    assert "Stage plan of dpo_tiny" in result.output and "evaluate_policy" in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_bad_data_row_is_a_user_error_naming_file_line_field(cli, tmp_path):
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
                    '{"prompt": "p", "chosen": "a"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent(f"""\
        name: baddata
        tracking: {{enabled: false}}
        stages:
          - name: dpo
            kind: dpo
            policy: {{model: tiny:lm}}
            data: {{train: {data}}}
        """))
    result = cli("run", str(recipe), "--run-dir", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert f"{data}:2: rejected: missing" in result.output
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stages"]["dpo"]["status"] == "failed"


def test_internal_error_exit_1_and_debug_traceback(cli, tmp_path, monkeypatch):
    (tmp_path / "boom_stage.py").write_text(textwrap.dedent("""\
        from rlhf.stages.base import StageOptions, StageSpec

        def run(ctx, opts):
            raise RuntimeError("boom")

        STAGE = StageSpec(StageOptions, run, "always fails")
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("boom_stage", None)
    recipe = tmp_path / "boom.yaml"
    recipe.write_text("name: boom\ntracking: {enabled: false}\n"
                      "stages:\n  - {name: b, kind: 'boom_stage:STAGE'}\n")
    result = cli("run", str(recipe), "--run-dir", str(tmp_path / "r1"))
    assert result.exit_code == 1
    assert "internal error: RuntimeError: boom" in result.output
    assert "Traceback" not in result.output
    result = cli("--debug", "run", str(recipe), "--run-dir", str(tmp_path / "r2"))
    assert result.exit_code == 1 and "Traceback" in result.output
    assert "boom_stage.py" in (tmp_path / "r2" / "b" / "error.txt").read_text()


def test_not_a_stage_spec_is_a_user_error(cli, tmp_path):
    recipe = tmp_path / "x.yaml"
    recipe.write_text("name: x\nstages:\n  - {name: b, kind: 'json:dumps'}\n")
    result = cli("recipes", "validate", str(recipe))
    assert result.exit_code == 2 and "'json:dumps' is not a StageSpec" in result.output


def test_resume_requires_a_run_dir(cli, tmp_path):
    result = cli("run", "--resume", str(tmp_path / "nothing"))
    assert result.exit_code == 2 and "not a run directory" in result.output
