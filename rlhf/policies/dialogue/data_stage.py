"""Stage ``persona_dialogue``: the synthetic persona-dialogue task (see
:mod:`rlhf.policies.dialogue.persona`).

The bot plays one of ``n_personas`` characters drawn with the seed; a user introduces themself
and asks about one slot. Writes to the stage directory:

- ``sft.jsonl`` (``prompt``, ``completion``): the warm start, an unaligned bot that answers the
  asked slot with the persona's value with probability ``sft_consistent``, says something
  neutral with ``sft_neutral``, and otherwise names a wrong value (a contradiction);
- ``rl_prompts.jsonl`` / ``eval_prompts.jsonl`` (``prompt``, ``facts``, ``slot``): RL and
  held-out prompts; held-out prompts never occur in the training files;
- ``judge_train.jsonl`` / ``judge_eval.jsonl`` (``prompt``, ``response``, ``label`` 1..5):
  pointwise judgment records for the ``judge`` stage, labelled by the exact ground truth, over
  six turn kinds in equal shares (the asked slot right or wrong, another slot right or
  wrong, neutral, word salad).
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field, model_validator

from rlhf.policies.dialogue import persona as P
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec


class PersonaDialogueOptions(StageOptions):
    n_sft: int = Field(1024, ge=8)
    """Warm-start rows (prompt + bot turn)."""
    n_rl_prompts: int = Field(256, ge=1)
    n_eval_prompts: int = Field(32, ge=1)
    n_judge_train: int = Field(1024, ge=8)
    """Pointwise judgment records to train the judge on."""
    n_judge_eval: int = Field(128, ge=8)
    sft_consistent: float = Field(0.4, ge=0, le=1)
    """Share of warm-start turns that name the persona's value of the asked slot."""
    sft_neutral: float = Field(0.2, ge=0, le=1)
    """Share of neutral warm-start turns; the rest contradict the persona."""
    n_personas: int = Field(1, ge=1, le=16)
    """Bot characters (personas drawn with the seed). The tiny judge learns a one-persona rubric
    in ~50 steps; with 4 or more personas it must match the turn against the prompt's facts,
    which it did not learn in 600 steps (measured), so the tiny recipe keeps one."""

    @model_validator(mode="after")
    def _shares(self) -> "PersonaDialogueOptions":
        if self.sft_consistent + self.sft_neutral > 1:
            raise ValueError("sft_consistent + sft_neutral must be at most 1")
        room = P.n_contexts(self.n_personas) // 4
        if self.n_eval_prompts > room:
            raise ValueError(f"n_eval_prompts must be at most {room} with {self.n_personas} "
                             "persona(s): held-out prompts are distinct and leave 3/4 of the "
                             f"{P.n_contexts(self.n_personas)} prompts for training")
        return self


def word_salad(rng: random.Random) -> str:
    """An incoherent turn, like a drifting policy's: maybe a turn's start, then 2-5 corpus words
    or word pieces, glued or spaced, maybe capitalised, maybe without a final mark."""
    from rlhf.models.tokenizer import corpus_lines

    global _WORDS
    if not _WORDS:
        words = {w.strip(".,!?:;\"'") for line in corpus_lines() for w in line.split()}
        _WORDS = sorted(words - {""})
    pieces = [w if rng.random() < 0.6 else w[:rng.randint(1, max(1, len(w) - 1))]
              for w in rng.sample(_WORDS, rng.randint(2, 5))]
    text = rng.choice(("I like", "I have", "I live", "I do", "")) + " " + \
        rng.choice((" ", "", ", ")).join(pieces)
    return " " + text.strip() + rng.choice((".", "", " ,", "?"))


_WORDS: list[str] = []


def judge_response(rng: random.Random, facts: dict[str, str], slot: str) -> str:
    """A turn for a judgment record, one of six kinds with equal odds: neutral, word salad, the
    asked slot with the persona's value or a wrong one, another slot with the persona's value
    (neutral: true but not an answer) or a wrong one."""
    kind = rng.randrange(6)
    if kind == 0:
        return " " + rng.choice(P.NEUTRAL)
    if kind == 5:
        return word_salad(rng)
    about = slot if kind <= 2 else rng.choice([s for s in P.SLOTS if s != slot])
    right = kind in (1, 3)
    value = facts[about] if right else rng.choice([v for v in P.SLOTS[about] if v != facts[about]])
    return " " + P.FACT[about].format(v=value)


def judgment(rng: random.Random, case: dict[str, Any]) -> dict[str, Any]:
    """One pointwise judgment record for a prompt row, labelled by the ground truth."""
    response = judge_response(rng, case["facts"], case["slot"])
    kind = P.classify(response, case["facts"], case["slot"])
    return {"prompt": case["prompt"], "response": response, "label": P.LABELS[kind],
            "kind": kind}


def run(ctx: StageContext, opts: PersonaDialogueOptions) -> StageResult:
    from rlhf.data import write_jsonl

    rng = random.Random(ctx.seed)
    cast = P.sample_cast(rng, opts.n_personas)
    held: dict[str, dict[str, Any]] = {}
    while len(held) < opts.n_eval_prompts:
        case = P.sample_case(rng, cast)
        held.setdefault(case["prompt"], case)

    def fresh() -> dict[str, Any]:
        while True:
            case = P.sample_case(rng, cast)
            if case["prompt"] not in held:
                return case

    sft = []
    for _ in range(opts.n_sft):
        case = fresh()
        sft.append({"prompt": case["prompt"], "completion": P.sample_turn(
            rng, case["facts"], case["slot"], opts.sft_consistent, opts.sft_neutral)})
    files = {
        "sft": sft,
        "rl_prompts": [fresh() for _ in range(opts.n_rl_prompts)],
        "eval_prompts": list(held.values()),
        "judge_train": [judgment(rng, fresh()) for _ in range(opts.n_judge_train)],
        "judge_eval": [judgment(rng, case) for case in
                       (list(held.values()) * (opts.n_judge_eval // len(held) + 1))
                       [:opts.n_judge_eval]],
    }
    for name, rows in files.items():
        write_jsonl(ctx.stage_dir / f"{name}.jsonl", rows)
    labels = [r["label"] for r in files["judge_train"]]
    metrics = {"data/n_sft": float(len(sft)), "data/n_rl_prompts": float(len(files["rl_prompts"])),
               "data/n_eval_prompts": float(len(held)),
               **{f"data/judge_label_{k}_share": labels.count(v) / len(labels)
                  for k, v in P.LABELS.items()}}
    return StageResult(metrics=metrics, outputs={n: f"{n}.jsonl" for n in files},
                       summary=[f"{len(sft)} warm-start turns, {len(files['rl_prompts'])} RL / "
                                f"{len(held)} held-out prompts, {len(labels)} judgments",
                                "personas: " + "; ".join(P.persona_text(c) for c in cast)])


STAGE = StageSpec(PersonaDialogueOptions, run,
                  "Persona dialogue data: warm-start turns, RL/held-out prompts, judgments")
