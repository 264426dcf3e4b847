"""``rlhf rewards ls | score`` from JSONL files, in-process."""

import json
import textwrap

import pytest
from typer.testing import CliRunner

from rlhf.cli.app import app
from rlhf.cli.errors import Settings


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Settings, "debug", False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ls_lists_every_registered_reward_with_params(cli):
    from rewards.base import REWARDS

    result = cli("rewards", "ls")
    assert result.exit_code == 0, result.output
    for name in REWARDS.names():
        assert name in result.output
    assert "normalizer='basic'" in result.output and "reference" in result.output


def test_score_keeps_order_and_adds_reward_and_details(cli, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", [
        {"prompt": "p", "completion": "the cat sat", "reference": "the cat sat", "id": 1},
        {"prompt": "p", "completion": "the dog", "reference": "the cat sat", "id": 2},
    ])
    result = cli("rewards", "score", "asr.wer", "-i", src, "-o", "out.jsonl")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["reward"] == 1.0 and rows[0]["details"]["wer"] == 0.0
    assert rows[1]["details"]["wer"] == pytest.approx(2 / 3)  # 1 substitution + 1 deletion
    assert rows[1]["reward"] == pytest.approx(1 / 3)


def test_score_params_and_bad_params(cli, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", [{"prompt": "p", "completion": "abc"}])
    result = cli("rewards", "score", "format.regex", "-i", src, "-o", "o.jsonl",
                 "--param", "pattern=a.c")
    assert result.exit_code == 0, result.output
    assert read_rows(tmp_path / "o.jsonl")[0]["reward"] == 1.0
    result = cli("rewards", "score", "asr.wer", "-i", src, "-o", "o.jsonl",
                 "--param", "normalizer=nope")
    assert result.exit_code == 2 and "reward 'asr.wer': bad parameters" in result.output


def test_missing_column_fails_before_scoring(cli, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", [
        {"prompt": "p", "completion": "a", "reference": "a"},
        {"prompt": "p", "completion": "b"},
    ])
    result = cli("rewards", "score", "asr.wer", "-i", src, "-o", "out.jsonl")
    assert result.exit_code == 2
    assert f"{src}:2: reference: missing (reward 'asr.wer' needs column 'reference'" in \
        result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_score_with_a_recipe_stage_design(cli, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", [{"prompt": "p", "completion": " good nice"},
                                             {"prompt": "p", "completion": " bad"}])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        name: r
        stages:
          - name: ev
            kind: evaluate_policy
            policies: {after: tiny:lm}
            prompts: x.jsonl
            rewards:
              - {name: synthetic.sentiment, weight: 2.0}
              - {name: format.regex, weight: 1.0, params: {pattern: " good.*"}}
            reward_clip: [-1.5, 2.5]
        """))
    result = cli("rewards", "score", "--recipe", str(recipe), "--stage", "ev", "-i", src,
                 "-o", "o.jsonl")
    assert result.exit_code == 0, result.output
    rows = read_rows(tmp_path / "o.jsonl")
    assert rows[0]["reward"] == 2.5  # 2*1 + 1 = 3, clipped
    assert rows[1]["reward"] == -1.5  # 2*(-1) + 0 = -2, clipped
    assert rows[0]["details"]["format.regex"]["value"] == 1.0
    result = cli("rewards", "score", "--recipe", str(recipe), "--stage", "eva", "-i", src,
                 "-o", "o.jsonl")
    assert result.exit_code == 2 and "did you mean 'ev'" in result.output


TOOLS = [{"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
CALL = '<|toolcall_begin|>{"name": "get_weather", "arguments": {"city": "Oslo"}}<|toolcall_end|>'
REC = '{"explanation": "x", "recommendations": ["c", "a", "b"]}'

EVERY_REWARD = [
    # (name, params, row extras, completion, expected reward)
    ("asr.wer", [], {"reference": "a b c d"}, "a b x d", 0.75),
    ("asr.cer", [], {"reference": "abcd"}, "abed", 0.75),
    ("math.exact", [], {"answer": "42"}, "so the answer is \\boxed{42}", 1.0),
    ("toolcall.json", [], {"tools": TOOLS, "expected": [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]}, CALL, 1.0),
    ("format.regex", ["pattern=\\d+"], {}, "123", 1.0),
    ("format.json", ["required_keys=[a]"], {}, '{"a": 1}', 1.0),
    ("ranking.ndcg", ["k=2"], {"target": "b"}, '["a", "b"]', 1 / 1.5849625007211563),
    ("ranking.recall", ["k=1"], {"target": "b"}, '["a", "b"]', 0.0),
    ("length.overlong", ["max_len=10", "cache=4", "unit=chars"], {}, "12345678", -2 / 4),
    # candidates a, b, c with target c (rank_pre 3) moved to rank 1: (3 - 1) / 3 + alpha
    ("rerank.conditional", [], {"candidates": ["a", "b", "c"], "target": "c"}, REC, 2 / 3 + 0.1),
    ("rerank.plain", [], {"candidates": ["a", "b", "c"], "target": "a"},
     '{"explanation": "", "recommendations": ["a", "b", "c"]}', 0.1),
    ("synthetic.sentiment", [], {}, " good bad good", 1 / 3),
]


@pytest.mark.parametrize("name,params,extras,completion,expected", EVERY_REWARD,
                         ids=[r[0] for r in EVERY_REWARD])
def test_every_reward_scores_from_jsonl(cli, tmp_path, name, params, extras, completion,
                                        expected):
    from rewards.base import REWARDS

    src = write_rows(tmp_path / "in.jsonl", [{"prompt": "p", "completion": completion, **extras}])
    args = ["rewards", "score", name, "-i", src, "-o", "out.jsonl"]
    for p in params:
        args += ["--param", p]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    row = read_rows(tmp_path / "out.jsonl")[0]
    assert row["reward"] == pytest.approx(expected), row
    assert isinstance(row["details"], dict)
    assert name in REWARDS


def test_every_library_reward_has_a_cli_case():
    from rewards.base import REWARDS

    library = {n for n in REWARDS.names() if REWARDS.entry(n).target.startswith(
        ("rewards.verifiable", "rewards.rerank", "rewards.synthetic"))}
    assert library == {r[0] for r in EVERY_REWARD}
