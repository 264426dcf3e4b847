"""The text reward model learns a known Bradley–Terry utility up to the Bayes-optimal accuracy.

Data (:func:`rewards.preference.data.bradley_terry_pairs`): responses are lexicon sentences,
utility ``u(y) = 0.5 · (#positive − #negative)`` logits, and each label is sampled with
``P(chosen = y1) = σ(u(y1) − u(y2))``, so preferences are noisy. No scorer can beat the
Bayes-optimal accuracy ``E[max(p, 1 − p)]`` on the held-out pairs (about 0.72 here, computed
exactly from the known utilities); the trained ``tiny:reward`` must come within 0.05 of it.
"""

from __future__ import annotations

import json
import time

from rewards.preference.data import bayes_accuracy, bradley_terry_pairs
from rlhf.recipe.loader import validate_recipe
from rlhf.recipe.runner import run_recipe

N_TRAIN, N_EVAL, STEPS, BATCH = 2000, 1500, 150, 16
TOLERANCE = 0.05


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_reward_model_reaches_bayes_optimal_accuracy(tmp_path):
    import torch

    held = bradley_terry_pairs(N_EVAL, seed=2)
    raw = {"name": "rm_learns", "seed": 0, "tracking": {"enabled": False}, "stages": [{
        "name": "rm", "kind": "reward_model", "model": {"model": "tiny:reward"},
        "data": {"train": write(tmp_path / "train.jsonl", bradley_terry_pairs(N_TRAIN, seed=1)),
                 "eval": write(tmp_path / "eval.jsonl", held)},
        "trainer": {"max_steps": STEPS, "learning_rate": 4e-3,
                    "per_device_train_batch_size": BATCH, "save_strategy": "no"}}]}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and fair on a shared machine
    try:
        start = time.perf_counter()
        outcome = run_recipe(validate_recipe(raw, "test", []), run_dir=tmp_path / "run")
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    metrics = outcome.results["rm"].metrics
    bayes = bayes_accuracy(held)
    print(f"\nheld-out accuracy {metrics['eval/accuracy']:.3f}, Bayes-optimal {bayes:.3f}, "
          f"ECE {metrics['eval/ece']:.3f}, reward gap {metrics['eval/reward_gap']:.3f}, "
          f"{seconds:.0f} s")
    assert metrics["eval/n_pairs"] == N_EVAL
    assert metrics["eval/accuracy"] >= bayes - TOLERANCE
    assert metrics["eval/ece"] < 0.15  # a BT-trained model is roughly calibrated, too
