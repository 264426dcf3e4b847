"""GRPO of the eSpeak prosody TTS policy raises the held-out speaking-rate reward: the shipped
``tts_grpo`` recipe, shortened and on ``audio.duration`` alone (the intelligibility reward's
forced alignment is too slow for a unit-time budget; it has its own tests)."""

from __future__ import annotations

import json

from rlhf.recipe import load_recipe
from rlhf.recipe.runner import run_recipe

OVERRIDES = [
    "tracking.enabled=false",
    "stages.rl.rewards=[{name: audio.duration, params: {lo: 140, hi: 170, width: 40}}]",
    "stages.rl.steps=24",
    "stages.rl.save_every=24",
    "stages.rl.log_completions_every=12",
]


def test_tts_grpo_raises_the_held_out_speaking_rate_reward(tmp_path):
    recipe = load_recipe("tts_grpo", OVERRIDES)
    run_recipe(recipe, run_dir=tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "rl" / "result.json").read_text())["metrics"]
    assert metrics["eval/reward_after"] - metrics["eval/reward_before"] >= 0.25, metrics
    assert metrics["eval/reward_after"] >= 0.85, metrics
    table = tmp_path / "run" / "rl" / "completions" / "step-000024.jsonl"
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert all(r["completion"].startswith("<") or r["completion"] == "" for r in rows)
    assert (tmp_path / "run" / "rl" / "model" / "tokenizer.json").is_file()
