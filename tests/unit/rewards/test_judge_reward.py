"""Reward ``judge.generative``: templates, position swap, modes, rubric, errors, a model judge."""

from __future__ import annotations

import pickle

import pytest

from rewards.base import REWARDS
from rewards.generative.judge import CallableJudge, ModelJudge, judge_pairs
from rewards.generative.reward import GenerativeJudgeReward, position_consistency
from rewards.generative.templates import load_template
from rlhf.errors import UserError

JUDGES = "tests.unit.rewards.scripted_judges"


def make(**params):
    return REWARDS.get("judge.generative")(**params)


def test_a_judge_that_always_says_a_is_neutral_and_inconsistent():
    reward = make(judge_fn=f"{JUDGES}:always_a", mode="pairwise")
    scored = reward.score_batch(["Q"] * 3, ["short", "a much longer answer", "x"],
                                other=["mid size", "y", "a much longer answer"])
    assert [s.value for s in scored] == [0.5, 0.5, 0.5]        # mean of A-win (1) and B-win (0)
    assert position_consistency(scored) == 0.0
    assert all(s.details["verdict_ab"] == "A" and s.details["verdict_ba"] == "A" for s in scored)


def test_a_position_free_judge_gets_full_rewards_and_full_consistency():
    reward = make(judge_fn=f"{JUDGES}:longer_wins", mode="pairwise_reference")
    completions = ["a long long answer", "no", "same"]
    scored = reward.score_batch(["Q"] * 3, completions, reference=["short", "longer", "abcd"])
    assert [s.value for s in scored] == [1.0, 0.0, 0.5]
    assert position_consistency(scored) == 1.0
    assert scored[0].details["rewards"] == [1.0, 1.0]


def test_without_swap_the_judge_sees_one_order_only():
    seen = []

    def spy(texts):
        seen.extend(texts)
        return ["[[A]]" for _ in texts]

    template = load_template("pairwise")
    pairs = judge_pairs(CallableJudge(spy), template, [{"prompt": "Q"}], ["cand"], ["other"],
                        swap=False)
    assert len(seen) == 1 and "Answer A: cand" in seen[0] and pairs[0].consistent is None
    seen.clear()
    judge_pairs(CallableJudge(spy), template, [{"prompt": "Q"}], ["cand"], ["other"], swap=True)
    assert "Answer A: cand" in seen[0] and "Answer A: other" in seen[1]  # swapped slots


def test_an_unreadable_order_leaves_the_row_unscored_with_raw_text():
    reward = make(judge_fn=f"{JUDGES}:longer_wins", mode="pairwise")
    scored = reward.score_batch(["Q"], ["??? what"], other=["fine answer"])
    assert scored[0].value is None
    assert scored[0].details["raw_ab"] == "I cannot tell"
    assert "no [[A]]" in scored[0].details["problem"]
    assert scored[0].details["consistent"] is False


def test_a_custom_monotone_mapping_is_applied():
    reward = make(judge_fn=f"{JUDGES}:longer_wins", mode="pairwise",
                  mapping={"A": 2.0, "tie": 0.0, "B": -2.0})
    assert reward(["Q", "Q"], ["long answer", "s"], other=["s", "s"]) == [2.0, 0.0]
    assert reward.value_range == (-2.0, 2.0)


def test_pointwise_with_rubric_from_params_or_column():
    reward = make(judge_fn=f"{JUDGES}:words_score", mode="pointwise", rubric="Be verbose.")
    assert reward(["Q", "Q"], ["one", "one two three"]) == [0.0, 0.5]   # scores 1 and 3
    by_column = make(judge_fn=f"{JUDGES}:words_score", mode="pointwise")
    assert by_column.columns == ("rubric",)
    assert by_column(["Q"], ["a b c d e f"], rubric=["Be verbose."]) == [1.0]


def test_user_errors_name_the_problem():
    with pytest.raises(UserError, match="exactly one of `model`"):
        make(mode="pairwise")
    with pytest.raises(UserError, match="does not fit mode pointwise"):
        make(judge_fn=f"{JUDGES}:always_a", mode="pointwise", template="pairwise")
    with pytest.raises(UserError, match="unknown judge template 'pairwize'.*pairwise"):
        make(judge_fn=f"{JUDGES}:always_a", template="pairwize")
    with pytest.raises(UserError, match="not monotone"):
        make(judge_fn=f"{JUDGES}:always_a", mapping={"A": 0, "tie": 0.5, "B": 1})
    reward = make(judge_fn=f"{JUDGES}:always_a", mode="pairwise_reference")
    with pytest.raises(UserError, match="needs the column.*reference"):
        reward(["Q"], ["a"])
    wrong = make(judge_fn=f"{JUDGES}:wrong_count", mode="pairwise")
    with pytest.raises(UserError, match="returned 1 judgments for 4 prompts"):
        wrong(["Q", "Q"], ["a", "b"], other=["c", "d"])


def test_template_files_are_checked(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Prompt: {prompt}\nA: {respnse_a}\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"unknown placeholder \{respnse_a\}.*response_a"):
        load_template(str(bad))
    good = tmp_path / "mine.txt"
    good.write_text('{prompt} | {response_a} | {response_b} | JSON: {"k": 1}\n', encoding="utf-8")
    template = load_template(str(good))
    assert template.render({"prompt": "P {response_a}", "response_a": "x", "response_b": "y"}) \
        == 'P {response_a} | x | y | JSON: {"k": 1}'           # one pass; other braces kept
    with pytest.raises(UserError, match=r"uses \{prompt\} but no value"):
        template.render({"response_a": "x", "response_b": "y"})


def test_reward_pickles_by_name_and_a_model_judge_generates_in_batches():
    reward = make(judge_fn=f"{JUDGES}:always_a", mode="pairwise")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone(["Q"], ["a"], other=["b"]) == [0.5]
    judge = ModelJudge("tiny:lm", max_new_tokens=3, batch_size=2)
    assert pickle.loads(pickle.dumps(judge)).model is None          # never travels
    texts = judge.generate(["one", "two two", "three three three"])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    model_reward = make(model="tiny:lm", mode="pairwise", max_new_tokens=3)
    scored = model_reward.score_batch(["Q"], ["a"], other=["b"])
    assert scored[0].value is None or 0.0 <= scored[0].value <= 1.0  # untrained: usually None
    assert "raw_ab" in scored[0].details and "raw_ba" in scored[0].details
