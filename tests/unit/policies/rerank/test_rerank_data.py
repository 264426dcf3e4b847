"""Reranking data: synthetic generator, pre-ranker, teacher, interaction loader, prompts and
metrics."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest

from rewards.rerank import ConditionalRerank, PlainRerank
from rlhf.errors import DataError
from rlhf.policies.rerank import data
from rlhf.policies.rerank.metrics import ndcg_at, rank_of, ranking_metrics, recall_at
from rlhf.policies.rerank.prompts import (
    build_prompt, candidate_labels, explanation, format_answer, parse_recommendations,
)
from rlhf.policies.rerank.semantic_ids import find_sids, sid_string


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    cfg = data.SyntheticConfig(n_items=300)
    catalogue, subs = data.synthetic_catalogue(cfg, rng)
    sequences = data.synthetic_sequences(cfg, catalogue, subs, 400, 6, rng)
    return cfg, catalogue, sequences


def test_synthetic_sequences_have_distinct_items_and_tastes(world):
    cfg, catalogue, sequences = world
    assert len(catalogue.item_ids) == 300 and catalogue.embeddings.shape == (300, cfg.dim)
    for s in sequences:
        assert len(s.items) == 6 and len(set(s.items)) == 6
        assert s.taste is not None and s.taste.shape == (cfg.dim,)


def test_next_item_follows_the_user_and_the_last_item(world):
    """The true next item scores far above a random item under the generator's own score."""
    cfg, catalogue, sequences = world
    examples = data.make_examples(catalogue, sequences, 5, data.PrerankConfig(hit_rate=1.0),
                                  np.random.default_rng(1))
    ranks = []
    for e in examples:
        scores = data.next_item_scores(cfg, catalogue, e)
        ranks.append(int((scores > scores[catalogue.index[e.target]]).sum()))
    assert np.median(ranks) < 10  # among the top few of 300 items


@pytest.mark.parametrize("hit_rate", [0.0, 0.5, 0.9, 1.0])
def test_pre_ranker_includes_the_target_at_the_configured_rate(world, hit_rate):
    _, catalogue, sequences = world
    cfg = data.PrerankConfig(n_candidates=10, hit_rate=hit_rate, n_hard=2, noise=1.0)
    examples = data.make_examples(catalogue, sequences, 5, cfg, np.random.default_rng(2))
    assert len(examples) == len(sequences)
    for e in examples:
        assert len(e.candidates) == 10 and len(set(e.candidates)) == 10
        assert not set(e.candidates) & set(e.history)
        assert e.history == next(s.items[:5] for s in sequences if s.user == e.user)
    rate = np.mean([e.hit for e in examples])
    assert abs(rate - hit_rate) <= 3 * math.sqrt(hit_rate * (1 - hit_rate) / len(examples))


def test_pre_rank_noise_decides_how_often_the_target_is_first(world):
    _, catalogue, sequences = world

    def first(noise):
        cfg = data.PrerankConfig(hit_rate=1.0, n_hard=0, noise=noise)
        examples = data.make_examples(catalogue, sequences, 5, cfg, np.random.default_rng(3))
        return np.mean([e.candidates[0] == e.target for e in examples])

    assert first(0.0) > 0.9 > first(1.0) > first(4.0)


def test_teacher_rejection_sampling_keeps_only_the_target(world):
    cfg, catalogue, sequences = world
    examples = data.make_examples(catalogue, sequences, 5, data.PrerankConfig(hit_rate=1.0),
                                  np.random.default_rng(4))
    rng = np.random.default_rng(5)
    one_try = data.TeacherConfig(noise=1.0, max_tries=1)
    many = data.TeacherConfig(noise=1.0, max_tries=8)
    kept_one = [data.teacher_trace(e, catalogue, cfg, one_try, rng)[0] for e in examples]
    kept_many = [data.teacher_trace(e, catalogue, cfg, many, rng)[0] for e in examples]
    for e, pick in zip(examples, kept_one + kept_many, strict=False):
        assert pick in (None, e.target)
    assert sum(p is not None for p in kept_many) > sum(p is not None for p in kept_one)
    assert data.promote(["a", "b", "c", "d"], "c") == ["c", "a", "b", "d"]


def test_interaction_loader_reads_amazon_forms(tmp_path):
    rows_2018 = [{"reviewerID": "u1", "asin": "B2", "unixReviewTime": 20, "overall": 5.0},
                 {"reviewerID": "u1", "asin": "B1", "unixReviewTime": 10},
                 {"reviewerID": "u1", "asin": "B1", "unixReviewTime": 30},  # repeat: dropped
                 {"reviewerID": "u2", "asin": "B3", "unixReviewTime": 5},
                 {"reviewerID": "u3", "asin": "B1", "unixReviewTime": 1},
                 {"reviewerID": "u3", "asin": "B3", "unixReviewTime": 2}]
    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows_2018))
    meta = tmp_path / "meta.jsonl"
    meta.write_text(json.dumps({"asin": "B1", "title": "Soap", "categories": [["Beauty", "Bath"]]})
                    + "\n" + json.dumps({"asin": "B2", "title": "Comb", "main_category": "Hair"}))
    sequences, titles, categories = data.load_interactions(path, meta)
    assert [(s.user, s.items) for s in sequences] == [("u1", ["B1", "B2"]), ("u3", ["B1", "B3"])]
    assert titles == {"B1": "Soap", "B2": "Comb"}
    assert categories == {"B1": "Bath", "B2": "Hair"}

    csv_path = tmp_path / "ratings.csv"  # ratings-only dump: user,item,rating,timestamp
    csv_path.write_text("u1,i2,5,200\nu1,i1,4,100\nu2,i1,3,1\nu2,i3,3,2\n")
    sequences, _, _ = data.load_interactions(csv_path)
    assert [(s.user, s.items) for s in sequences] == [("u1", ["i1", "i2"]), ("u2", ["i1", "i3"])]
    modern = tmp_path / "reviews.jsonl"  # 2023 form, ISO dates also accepted
    modern.write_text("\n".join(json.dumps(r) for r in [
        {"user_id": "a", "parent_asin": "p1", "timestamp": "2020-01-02T00:00:00",
         "title": "T"},
        {"user_id": "a", "parent_asin": "p2", "timestamp": "2020-01-01T00:00:00"}]))
    sequences, titles, _ = data.load_interactions(modern)
    assert sequences[0].items == ["p2", "p1"] and titles == {"p1": "T"}

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"user": "a", "item": "x"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:1: timestamp: missing"):
        data.load_interactions(bad)


def test_svd_embeddings_put_co_consumed_items_together():
    sequences = [data.Sequence(f"u{n}", ["a", "b"] if n % 2 else ["c", "d"]) for n in range(20)]
    ids, emb = data.svd_item_embeddings(sequences, dim=4)
    assert ids == ["a", "b", "c", "d"] and emb.shape == (4, 4)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > 0.99 and abs(unit[0] @ unit[2]) < 0.01


SIDS = [sid_string((n, n + 1, 0, 0)) for n in range(10)]


def test_prompt_lists_history_and_labelled_candidates():
    labels = candidate_labels(10)
    prompt = build_prompt(SIDS[:3], SIDS, labels=labels)
    lines = prompt.splitlines()
    assert lines[0] == "History: " + "".join(SIDS[:3])
    assert lines[1] == "Candidates: " + "".join(f"{lab}{s}" for lab, s in zip(labels, SIDS,
                                                                                strict=True))
    assert lines[2] == "Answer:" and prompt.endswith("\n")
    assert find_sids(lines[1]) == SIDS
    with_meta = build_prompt(SIDS[:1], SIDS[:2], info=lambda s: "cat" + s[-15], labels=["A", "B"])
    assert with_meta.splitlines()[0].endswith(")") and "(cat" in with_meta
    after = build_prompt(SIDS[:3], SIDS[:3], labels=labels[:3], label_after=True)
    assert after.splitlines()[1] == "Candidates: " + "".join(
        f"{s}{lab}" for lab, s in zip(labels, SIDS[:3], strict=False))
    sid_form = build_prompt(SIDS[:1], SIDS[:2])
    assert sid_form.splitlines()[1] == "Candidates: " + json.dumps(SIDS[:2], separators=(",", ":"))
    with pytest.raises(ValueError):
        candidate_labels(27)


def test_answers_are_scored_by_the_rerank_rewards():
    labels = candidate_labels(10)
    expl = explanation(SIDS[:3], SIDS[4])
    assert expl == "after <s_a_2><s_b_3> comes <s_a_4><s_b_5>"
    copied = explanation(SIDS[:3], SIDS[4], "E")  # label_position: after names SID + letter
    assert copied == f"after <s_a_2><s_b_3> comes {SIDS[4]}E" and find_sids(copied) == [SIDS[4]]
    promoted = data.promote(labels, "E")
    answer = format_answer(promoted, expl)
    assert parse_recommendations(answer) == promoted
    for reward, value in ((ConditionalRerank(), 0.4 + 0.1), (PlainRerank(), 0.4 + 0.1)):
        assert reward(["p"], [answer], candidates=[labels], target=["E"]) == [pytest.approx(value)]
    copy = format_answer(labels, expl)
    assert ConditionalRerank()(["p"], [copy], candidates=[labels], target=["E"]) == [0.0]
    assert PlainRerank()(["p"], [copy], candidates=[labels], target=["E"]) == [pytest.approx(0.1)]
    sid_answer = format_answer(data.promote(SIDS, SIDS[4]), expl)  # the sid id form
    assert ConditionalRerank()(["p"], [sid_answer], candidates=[SIDS],
                               target=[SIDS[4]]) == [pytest.approx(0.5)]


def test_metrics_match_hand_computed_values():
    assert rank_of("c", ["a", "b", "c"]) == 3 and rank_of("x", ["a"]) is None
    assert recall_at(3, 5) == 1.0 and recall_at(6, 5) == 0.0 and recall_at(None, 5) == 0.0
    assert ndcg_at(1, 5) == 1.0 and ndcg_at(3, 5) == pytest.approx(0.5)
    assert ndcg_at(2, 5) == pytest.approx(1 / math.log2(3)) and ndcg_at(6, 5) == 0.0
    cands = [list("abcdefghij")] * 4
    rankings = [list("cabdefghij"),  # target c promoted to 1
                list("abcdefghij"),  # copy: target f stays at 6
                list("abcdefghi"),  # not a permutation: counts as a miss
                list("jihgfedcba")]  # reversed: target b at 9
    targets = ["c", "f", "a", "b"]
    m = ranking_metrics(rankings, cands, targets)
    assert m["recall_at_1"] == pytest.approx(1 / 4)
    assert m["recall_at_5"] == pytest.approx(1 / 4)
    assert m["ndcg_at_5"] == pytest.approx(1 / 4)
    assert m["order_copy_rate"] == pytest.approx(1 / 4)
    assert m["valid_rate"] == pytest.approx(3 / 4)
    m = ranking_metrics([list("abcdefghij")], [list("abcdefghij")], ["d"])
    assert m == {"recall_at_1": 0.0, "recall_at_5": 1.0,
                 "ndcg_at_5": pytest.approx(1 / math.log2(5)),
                 "order_copy_rate": 1.0, "valid_rate": 1.0}
    with pytest.raises(ValueError):
        ranking_metrics([], [], [])
