"""ranking.ndcg / ranking.recall: hand-computed cases, edge cases, and scikit-learn agreement."""

import json
import math
import random

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from rewards.base import REWARDS
from rewards.verifiable.ranking import NDCG, Recall, parse_json_completion
from rlhf.errors import UserError

L2_3 = math.log2(3)  # discount denominator of rank 2; rank 1 -> log2(2) = 1, rank 3 -> 2
REL = {"a": 0, "b": 2, "c": 1}


def one(reward, completion, **row):
    return reward.score_batch(["p"], [completion], **{k: [v] for k, v in row.items()})[0]


def test_registered_by_short_name():
    assert REWARDS.get("ranking.ndcg") is NDCG and REWARDS.get("ranking.recall") is Recall


def test_graded_ndcg_by_hand():
    s = one(NDCG(), '["a", "b", "c"]', relevance=REL)
    dcg = 0 / 1 + 2 / L2_3 + 1 / 2  # 1.7618595...
    idcg = 2 / 1 + 1 / L2_3  # ideal order b, c, a: 2.6309297...
    assert s.details == {"valid": True, "dcg": pytest.approx(dcg), "idcg": pytest.approx(idcg)}
    assert s.value == pytest.approx(dcg / idcg) == pytest.approx(0.6696718165)


def test_k_truncates_the_list_and_the_ideal():
    assert one(NDCG(k=2), '["a", "b", "c"]', relevance=REL).value == pytest.approx(
        (2 / L2_3) / (2 + 1 / L2_3))  # 0.47963...
    assert one(NDCG(k=1), '["a", "b", "c"]', relevance=REL).value == 0.0
    assert one(NDCG(k=1), '["b", "a"]', relevance=REL).value == 1.0
    with pytest.raises(UserError):
        NDCG(k=0)


def test_perfect_order_and_ids_without_relevance():
    assert one(NDCG(), '["b", "c", "a"]', relevance=REL).value == pytest.approx(1.0)
    # unknown ids gain 0 but take positions: b at rank 2, c at rank 3
    assert one(NDCG(), '["zz", "b", "c"]', relevance=REL).value == pytest.approx(
        (2 / L2_3 + 1 / 2) / (2 + 1 / L2_3))


def test_target_form():
    assert one(NDCG(), '["a", "b", "c"]', target="c").value == pytest.approx(1 / 2)
    assert one(NDCG(), '["c"]', target="c").value == 1.0
    assert one(NDCG(k=2), '["a", "b", "c"]', target="c").value == 0.0
    assert one(Recall(k=2), '["a", "b", "c"]', target="c").value == 0.0
    assert one(Recall(k=3), '["a", "b", "c"]', target="c").value == 1.0


def test_relevance_wins_over_target():
    assert one(NDCG(), '["c"]', relevance={"c": 1}, target="zz").value == 1.0


def test_duplicates_count_once_and_take_no_position():
    rel = {"b": 2, "c": 1}
    assert one(NDCG(), '["b", "b", "c"]', relevance=rel).value == pytest.approx(1.0)
    assert one(NDCG(), '["b", "b", "b"]', relevance=rel).value == pytest.approx(
        2 / (2 + 1 / L2_3))  # 0.76018...
    assert one(Recall(k=2), '["b", "b", "c"]', relevance=rel).value == 1.0


def test_string_and_int_ids_compare_as_strings():
    rel = {"5": 1, "7": 2}
    assert one(NDCG(), "[7, 5]", relevance=rel).value == pytest.approx(1.0)
    assert one(NDCG(), '["7", 5.0]', relevance={5: 1, 7: 2}).value == pytest.approx(1.0)
    assert one(NDCG(), '["5"]', target=5).value == 1.0
    # 5 and "5" are the same item: the repeat is skipped, 7 is at rank 2
    assert one(NDCG(), '[5, "5", 7]', relevance=rel).value == pytest.approx(
        (1 + 2 / L2_3) / (2 + 1 / L2_3))
    assert one(NDCG(), '["5"]', relevance={5: 1, "5": 2}).value is None


@pytest.mark.parametrize("completion", ["", "not json", '{"foo": [1]}', "[[1]]", "[null]",
                                        "[true]", "3", '["a"] trailing', "```json\n[\"a\"]"])
def test_unparseable_completion_is_zero_and_invalid(completion):
    for reward in (NDCG(), Recall()):
        s = one(reward, completion, relevance=REL)
        assert (s.value, s.details) == (0.0, {"valid": False})


@pytest.mark.parametrize("completion", ['  ["b", "c"]\n', '```json\n["b", "c"]\n```',
                                        '```\n["b","c"]```', '{"recommendations": ["b", "c"]}',
                                        '```json\n{"explanation": "x", "recommendations": '
                                        '["b", "c"]}\n```',
                                        [{"role": "assistant", "content": '["b", "c"]'}]])
def test_accepted_forms(completion):
    s = one(NDCG(), completion, relevance=REL)
    assert s.value == pytest.approx(1.0) and s.details["valid"] is True


def test_relevance_as_json_text():
    assert one(NDCG(), '["a", "b", "c"]', relevance=json.dumps(REL)).value == pytest.approx(
        0.6696718165)


@pytest.mark.parametrize("row", [{}, {"relevance": None, "target": None},
                                 {"relevance": {"a": -1}}, {"relevance": {"a": "2"}},
                                 {"relevance": {"a": float("nan")}}, {"relevance": "{oops"},
                                 {"relevance": [1, 2]}, {"target": [1, 2]}])
def test_unusable_truth_scores_none(row):
    s = one(NDCG(), '["a"]', **row)
    assert s.value is None and s.details["error"]


def test_missing_truth_message_names_both_columns():
    s = one(Recall(), '["a"]')
    assert "'relevance'" in s.details["error"] and "'target'" in s.details["error"]


def test_no_relevant_item_gives_zero_with_a_note():
    for reward in (NDCG(), Recall()):
        s = one(reward, '["a"]', relevance={"a": 0})
        assert s.value == 0.0 and "note" in s.details and s.details["valid"] is True


def test_recall_by_hand():
    rel = {"a": 0, "b": 2, "c": 1, "d": 3}  # relevant: b, c, d
    assert one(Recall(k=2), '["b", "a", "c"]', relevance=rel).value == pytest.approx(1 / 3)
    s = one(Recall(k=3), '["b", "a", "c"]', relevance=rel)
    assert s.value == pytest.approx(2 / 3) and s.details == {"valid": True, "hits": 2,
                                                             "n_relevant": 3}


def test_batch_shares_truth_and_isolates_bad_rows():
    reward = NDCG()
    completions = ['["b", "c", "a"]', "junk", '["a", "b", "c"]', '["c"]']
    values = reward(["p"] * 4, completions, relevance=[REL, REL, REL, None],
                    target=[None, None, None, "c"])
    assert values == [pytest.approx(1.0), 0.0, pytest.approx(0.6696718165), 1.0]
    broadcast = reward(["p"] * 2, completions[:2], relevance=REL)  # one object for every row
    assert broadcast == [pytest.approx(1.0), 0.0]
    assert reward.score_row("p", '["b"]', relevance=REL).value == pytest.approx(2 / (2 + 1 / L2_3))


def test_fast_and_general_paths_agree():
    # plain string list (fast path) vs int ids, fences and the object form (general path)
    rel = {str(i): i % 4 for i in range(12)}
    order = [3, 1, 11, 7, 0, 2]
    texts = [json.dumps([str(i) for i in order]), json.dumps(order),
             "```json\n" + json.dumps({"recommendations": order}) + "\n```"]
    values = NDCG(k=5)(["p"] * 3, texts, relevance=rel)
    assert values[0] == pytest.approx(values[1]) == pytest.approx(values[2])


def test_parse_json_completion():
    assert parse_json_completion(' ```JSON\n{"a": 1}\n``` ') == {"a": 1}
    with pytest.raises(ValueError):
        parse_json_completion("[1] [2]")


def test_ndcg_matches_sklearn_on_random_cases():
    rng = random.Random(1234)
    for case in range(200):
        n = rng.randint(2, 30)
        k = rng.randint(1, 15)
        ids = rng.sample(range(1000), n)
        graded = case % 2 == 0  # integer grades, or real-valued relevances
        rel = {i: (rng.choice([0, 0, 1, 2, 3]) if graded else rng.random() * 5)
               for i in ids if rng.random() < 0.8}  # some ids have no relevance (0)
        order = rng.sample(ids, n)  # the predicted ranking: every item, in this order
        as_str = case % 3 != 0
        completion = json.dumps([str(i) for i in order] if as_str else order)
        relevance = {str(i): v for i, v in rel.items()} if as_str else rel
        ours = one(NDCG(k=k), completion, relevance=relevance).value
        y_true = np.array([[rel.get(i, 0) for i in order]], dtype=float)
        y_score = np.arange(n, 0, -1, dtype=float)[None, :]  # distinct: list order is the rank
        assert ours == pytest.approx(ndcg_score(y_true, y_score, k=k), abs=1e-9), case
