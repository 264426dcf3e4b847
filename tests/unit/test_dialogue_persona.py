"""The persona-dialogue task: exact ground truth, the proxy reward, data files, TTS of turns."""

from __future__ import annotations

import json
import random

import pytest

from rewards.spec import RewardSpec, build_reward
from rlhf.policies.dialogue import persona as P

FACTS = {"have": "dog", "like": "music", "live": "town"}


@pytest.mark.parametrize("turn, slot, kind, score", [
    (" I like music.", "like", "consistent", 1.0),
    (" I like tea.", "like", "contradiction", 0.0),
    (" I like music and have a cat.", "like", "contradiction", 0.0),     # other slot wrong
    (" I have a dog.", "like", "neutral", 0.25),                        # true, not the asked one
    (" I do not know.", "have", "neutral", 0.25),
    (" Music! I LIKE MUSIC.", "like", "incoherent", 0.0),               # not one plain sentence
    ("", "live", "incoherent", 0.0),
    (" I like�Tell sakind", "like", "incoherent", 0.0),                 # a drifting policy's turn
    (" Yes. I like music.", "like", "incoherent", 0.0),
    (" I live in the town and have a dog.", "live", "consistent", 1.0),
])
def test_classify_and_score(turn, slot, kind, score):
    assert P.classify(turn, FACTS, slot) == kind
    assert P.persona_score(turn, FACTS, slot) == score
    assert score == (P.LABELS[kind] - 1) / 4  # a perfect 1..5 judge's default map


def test_on_topic_cannot_tell_right_from_wrong():
    assert P.on_topic(" I like music.", "like") == 1.0
    assert P.on_topic(" I like tea.", "like") == 1.0   # a contradiction, still on topic
    assert P.on_topic(" I have a dog.", "like") == 0.0
    assert P.on_topic(" I do not know.", "live") == 0.0


def test_prompt_and_sampled_turn_shares():
    assert P.prompt_text(FACTS, "What do you like?") == (
        "Persona: I have a dog. I like music. I live in the town.\nUser: What do you like?\nBot:")
    rng = random.Random(0)
    kinds = [P.classify(P.sample_turn(rng, FACTS, "live", 0.4, 0.2), FACTS, "live")
             for _ in range(4000)]
    assert abs(kinds.count("consistent") / 4000 - 0.4) < 0.03
    assert abs(kinds.count("neutral") / 4000 - 0.2) < 0.03
    assert abs(kinds.count("contradiction") / 4000 - 0.4) < 0.03


def test_rewards_from_the_registry_take_json_or_dict_facts():
    persona = build_reward(RewardSpec(name="dialogue.persona"))
    topic = build_reward(RewardSpec(name="dialogue.on_topic"))
    turns = [" I like music.", " I like tea.", " Let me think."]
    facts = [FACTS, json.dumps(FACTS), FACTS]
    assert persona(["p"] * 3, turns, facts=facts, slot=["like"] * 3) == [1.0, 0.0, 0.25]
    assert topic(["p"] * 3, turns, slot=["like"] * 3) == [1.0, 1.0, 0.0]
    bad = persona.score_batch(["p"], [" I like tea."], facts=[{"have": "dog"}], slot=["like"])
    assert bad[0].value is None and "facts must map" in bad[0].details["error"]


def test_data_stage_files(tmp_path):
    from rlhf.data import read_jsonl
    from rlhf.policies.dialogue.data_stage import PersonaDialogueOptions, run
    from rlhf.stages.base import StageContext
    from rlhf.tracking import StageTracker

    stage = tmp_path / "data"
    stage.mkdir()
    ctx = StageContext("data", "persona_dialogue", tmp_path, stage, 0,
                       StageTracker(None, None, "data", "persona_dialogue"))
    opts = PersonaDialogueOptions(n_sft=64, n_rl_prompts=64, n_eval_prompts=16,
                                  n_judge_train=64, n_judge_eval=16)
    result = run(ctx, opts)
    held = read_jsonl(stage / "eval_prompts.jsonl")
    assert len({r["prompt"] for r in held}) == 16
    for name in ("sft", "rl_prompts", "judge_train"):  # held-out prompts stay held out
        assert not {r["prompt"] for r in held} & \
            {r["prompt"] for r in read_jsonl(stage / f"{name}.jsonl")}, name
    facts_of = {r["prompt"]: (r["facts"], r["slot"]) for r in held}
    for row in read_jsonl(stage / "judge_eval.jsonl"):  # labels are the exact ground truth
        facts, slot = facts_of[row["prompt"]]
        assert row["label"] == P.LABELS[P.classify(row["response"], facts, slot)]
    for row in read_jsonl(stage / "rl_prompts.jsonl"):
        assert row["prompt"] == P.prompt_text(row["facts"], row["prompt"].split("User: ")[1]
                                              .split("\n")[0])
    assert set(result.outputs) == {"sft", "rl_prompts", "eval_prompts", "judge_train",
                                   "judge_eval"}
