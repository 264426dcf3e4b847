"""Stage ``tts_prompts``: sentences for the TTS recipes (``rl_prompts.jsonl``,
``eval_prompts.jsonl``), rows ``{"prompt": sentence}``.

Sentences are ``subject verb object`` from fixed word lists, every word in pocketsphinx's
CMUdict (so ``audio.intelligibility`` can align them), 4-7 words long. Held-out sentences are
drawn first and never repeated in the training file.
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec

SUBJECTS = ("the cat", "my neighbor", "a small bird", "the old train", "our teacher",
            "the river", "a tired runner", "the baker", "my sister", "the young doctor")
VERBS = ("likes", "watches", "follows", "remembers", "carries", "finds", "paints", "hears",
         "brings", "wants")
OBJECTS = ("the morning rain", "a red balloon", "the quiet harbor", "two green apples",
           "the evening news", "a paper map", "the last bus home", "a warm blanket",
           "seven blue cups", "the city lights")


def sentences() -> list[str]:
    """Every sentence of the word lists (1000), in a fixed order."""
    return [f"{s} {v} {o}" for s in SUBJECTS for v in VERBS for o in OBJECTS]


class TTSPromptOptions(StageOptions):
    n_train: int = Field(200, ge=1)
    """Training sentences (``rl_prompts.jsonl``)."""
    n_eval: int = Field(16, ge=1)
    """Held-out sentences (``eval_prompts.jsonl``)."""

    @model_validator(mode="after")
    def _enough(self) -> "TTSPromptOptions":
        if self.n_train + self.n_eval > len(sentences()):
            raise ValueError(f"n_train + n_eval exceeds the {len(sentences())} sentences")
        return self


def run(ctx: StageContext, opts: TTSPromptOptions) -> StageResult:
    from rlhf.data import write_jsonl

    pool = sentences()
    random.Random(ctx.seed).shuffle(pool)
    held, train = pool[:opts.n_eval], pool[opts.n_eval:opts.n_eval + opts.n_train]
    write_jsonl(ctx.stage_dir / "eval_prompts.jsonl", [{"prompt": s} for s in held])
    write_jsonl(ctx.stage_dir / "rl_prompts.jsonl", [{"prompt": s} for s in train])
    return StageResult(metrics={"data/n_train": len(train), "data/n_eval": len(held)},
                       outputs={"rl_prompts": "rl_prompts.jsonl",
                                "eval_prompts": "eval_prompts.jsonl"},
                       summary=[f"{len(train)} training / {len(held)} held-out sentences"])


STAGE = StageSpec(TTSPromptOptions, run, "Sentences for the TTS recipes (words in CMUdict)")
