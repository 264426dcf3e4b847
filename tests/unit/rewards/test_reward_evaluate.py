"""Hand-computed checks of the reward-model evaluation metrics (rewards.evaluate)."""

import math

import pytest

from rewards.evaluate import (
    accuracy, annotator_agreement, calibration_bins, evaluate_scores, expected_calibration_error,
    pair_probabilities, reliability_diagram, reward_gap,
)


def test_accuracy_counts_equal_scores_half_and_gap_is_the_mean_difference():
    chosen, rejected = [2.0, 0.0, 1.0], [0.0, 0.0, 3.0]
    assert accuracy(chosen, rejected) == pytest.approx((1 + 0.5 + 0) / 3)
    assert reward_gap(chosen, rejected) == pytest.approx((2 + 0 - 2) / 3)
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy([1.0], [])


def test_ece_by_hand_and_bin_edges():
    # bin 9: p .9,.9 labels 1,0 -> |0.5 - 0.9| * 2/3; bin 2: p .2 label 0 -> |0 - .2| * 1/3
    assert expected_calibration_error([0.9, 0.9, 0.2], [1, 0, 0]) == pytest.approx(1 / 3)
    bins = calibration_bins([0.0, 0.1, 1.0], [0, 1, 1], n_bins=10)
    assert [b["count"] for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]  # p = 1 -> last bin
    assert bins[1]["lo"] == pytest.approx(0.1) and bins[1]["frequency"] == 1.0
    assert math.isnan(bins[5]["confidence"])
    assert expected_calibration_error([0.3, 0.7], [0, 1], n_bins=1) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        calibration_bins([1.5], [1])


def test_both_orientations_make_a_calibrated_model_score_zero():
    # 3 pairs at p = 0.75 for the chosen side, 1 at p = 0.25: 75% of the model's 0.75 calls win.
    d = math.log(3)
    chosen, rejected = [d, d, d, 0.0], [0.0, 0.0, 0.0, d]
    probs, labels = pair_probabilities(chosen, rejected)
    assert probs[:4] == pytest.approx([0.75, 0.75, 0.75, 0.25])
    assert probs[4:] == pytest.approx([0.25, 0.25, 0.25, 0.75]) and labels == [1] * 4 + [0] * 4
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    # the same scores seen only as (p, 1) would look badly calibrated
    # (3 x |1 - .75| + 1 x |1 - .25|) / 4
    assert expected_calibration_error(probs[:4], labels[:4]) == pytest.approx(0.375)


def test_annotator_agreement_per_annotator():
    rows = [{"annotator": "a"}, {"metadata": {"annotator": 7}}, {}, {"annotator": "a"}]
    got = annotator_agreement(rows, [1.0, 0.0, 5.0, 0.0], [0.0, 1.0, 0.0, 2.0])
    assert got == {"7": {"accuracy": 0.0, "n": 1.0}, "a": {"accuracy": 0.5, "n": 2.0}}
    assert annotator_agreement([{}], [1.0], [0.0]) == {}


def test_evaluate_scores_and_reliability_png(tmp_path):
    result = evaluate_scores([1.0, 2.0], [0.0, 3.0], rows=[{"annotator": 1}, {"annotator": 1}])
    assert set(result) >= {"accuracy", "ece", "reward_gap", "n", "per_annotator"}
    assert result["n"] == 2 and result["accuracy"] == 0.5 and result["reward_gap"] == 0.0
    assert result["per_annotator"] == {"1": {"accuracy": 0.5, "n": 2.0}}
    path = reliability_diagram(*pair_probabilities([1.0, 2.0], [0.0, 3.0]), tmp_path / "d.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
