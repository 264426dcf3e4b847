"""``emphasis.solver`` and the SQuAD QA metrics it reports, against hand-computed values."""

from __future__ import annotations

import pytest

from rewards.base import REWARDS
from rewards.verifiable.qa import exact_match, f1, normalize_answer
from rlhf.errors import UserError
from rlhf.policies.emphasis.data import synthetic_examples, to_rl_row
from rlhf.policies.emphasis.spans import START_TAG, strip_tags

CALLS: list[tuple[str, str]] = []


def echo_solver(question: str, context: str) -> str:
    """A callable solver for the tests: the first emphasised text, else 'nothing'."""
    CALLS.append((question, context))
    if START_TAG not in context:
        return "nothing"
    return context.split(START_TAG)[1].split("<end_important>")[0]


def test_normalisation_is_squads():
    assert normalize_answer("The  Cat's  hat!") == "cats hat"
    assert normalize_answer("An apple, a pear & the plum.") == "apple pear plum"
    assert normalize_answer("Theatre") == "theatre"  # articles only as whole words


@pytest.mark.parametrize("prediction, golds, em, f", [
    ("Oslo", ["oslo"], 1.0, 1.0),
    ("the Oslo.", ["Oslo"], 1.0, 1.0),
    ("the big red dog", ["red dog"], 0.0, 0.8),          # P 2/3, R 1
    ("x b c", ["b c d"], 0.0, 2 / 3),                    # P 2/3, R 2/3
    ("a b c", ["b c d"], 0.0, 0.8),                      # "a" is an article: P 1, R 2/3
    ("dog dog", ["dog"], 0.0, 2 / 3),                    # multiset: 1 shared, P 1/2, R 1
    ("red", ["blue", "red car"], 0.0, 2 / 3),            # best gold: P 1, R 1/2
    ("market", ["bank", "the market"], 1.0, 1.0),
    ("cat", ["dog"], 0.0, 0.0),
    ("", [], 1.0, 1.0),                                  # unanswerable, abstained
    ("Oslo", [], 0.0, 0.0),                              # unanswerable, answered
    ("", ["Oslo"], 0.0, 0.0),
    ("the", ["a"], 1.0, 1.0),                            # both normalise to nothing
])
def test_exact_match_and_f1(prediction, golds, em, f):
    assert exact_match(prediction, golds) == em
    assert f1(prediction, golds) == pytest.approx(f)


@pytest.fixture(scope="module")
def rows():
    return [to_rl_row(r) for r in synthetic_examples(24, seed=5)]


def score(reward, rows, completions):
    batch = {k: [r[k] for r in rows] for k in ("context", "question", "answers", "n_units")}
    return reward.score_batch([r["prompt"] for r in rows], completions, **batch)


def test_gold_unit_scores_one_plain_fooled_rows_zero(rows):
    reward = REWARDS.get("emphasis.solver")()
    gold = score(reward, rows, [str(r["gold_units"][0]) for r in rows])
    assert [s.value for s in gold] == [1.0] * len(rows)
    assert all(s.details["valid"] and s.details["exact_match"] == 1.0 for s in gold)
    assert all(0 < s.details["marked_fraction"] <= 0.4 for s in gold)
    wrong = [str((r["gold_units"][0] + 1) % r["n_units"]) for r in rows]
    assert all(s.value == 0.0 for s in score(reward, rows, wrong))  # emphasis wins, wrong unit


def test_invalid_outputs_score_the_invalid_param(rows):
    row = rows[:1]
    for invalid, expected in ((0.0, 0.0), (None, None), (-1.0, -1.0)):
        reward = REWARDS.get("emphasis.solver")(invalid=invalid)
        for completion, reason in (("banana", "unparsable"), ("9", "unparsable"),
                                   ("0,1,2", "over budget"), ("1,1", "unparsable")):
            (s,) = score(reward, row, [completion])
            assert s.value == expected and s.details["valid"] is False
            assert s.details["invalid_reason"].startswith(reason)
    loose = REWARDS.get("emphasis.solver")(budget=1.0)
    (s,) = score(loose, row, ["0,1,2"])
    assert s.details["valid"] and s.details["marked_fraction"] > 0.3


def test_f1_metric_and_chat_completions(rows):
    reward = REWARDS.get("emphasis.solver")(metric="f1")
    chat = [[{"role": "assistant", "content": str(rows[0]["gold_units"][0])}]]
    (s,) = score(reward, rows[:1], chat)
    assert s.value == 1.0 and s.details["f1"] == 1.0


def test_rows_built_with_another_unit_are_unscored(rows):
    reward = REWARDS.get("emphasis.solver")(unit="phrase")
    row = dict(rows[0], context=rows[0]["context"].replace(" has ", " has, ", 1))
    (s,) = score(reward, [row], ["0"])
    assert s.value is None and "n_units" in s.details["error"]
    (s,) = score(REWARDS.get("emphasis.solver")(), [dict(rows[0], answers=None)], ["0"])
    assert s.value is None and "answers" in s.details["error"]


def test_callable_solver_sees_tags_and_is_asked_once_per_distinct_input(rows):
    CALLS.clear()
    reward = REWARDS.get("emphasis.solver")(
        solver={"type": "callable", "target": f"{__name__}:echo_solver"}, metric="f1")
    row = rows[0]
    gold = str(row["gold_units"][0])
    values = score(reward, [row] * 4, [gold, gold, "banana", f" {gold} "])
    assert len(CALLS) == 1  # the three valid completions tag the context the same way
    question, tagged = CALLS[0]
    assert question == row["question"] and strip_tags(tagged) == row["context"]
    assert values[2].value == 0.0 and values[0].value == values[1].value == values[3].value
    assert values[0].value > 0  # the fact sentence shares the answer word with the gold


def test_solver_failures_leave_rows_unscored(rows):
    reward = REWARDS.get("emphasis.solver")(
        solver={"type": "callable", "target": "builtins:divmod"})
    (s,) = score(reward, rows[:1], [str(rows[0]["gold_units"][0])])
    assert s.value is None and s.details["error"].startswith("solver:")


def test_parameters_are_checked():
    for bad in ({"budget": 0}, {"budget": 1.5}, {"metric": "bleu"}, {"unit": "word"},
                {"solver": {"type": "telepathy"}}, {"solver": {"type": "openai", "url": "x",
                                                               "model": "m"}},
                {"colour": 1}):
        with pytest.raises(UserError):
            REWARDS.get("emphasis.solver")(**bad)
    assert REWARDS.get("emphasis.solver")(solver="fuzzy").params.solver.type == "fuzzy"
