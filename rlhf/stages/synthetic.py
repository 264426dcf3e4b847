"""Stage ``synthetic_preferences``: the quickstart's text task with a known ground truth.

Each completion is a short sequence of words drawn from a positive / negative / neutral lexicon
with per-completion mixing weights. Preference pairs compare two completions for one prompt; the
chosen one has the higher ground-truth score (``rewards.synthetic.sentiment_score``); ties are
redrawn. Writes ``train.jsonl`` and ``eval.jsonl`` (preference pairs with ``margin``),
``sft.jsonl`` (prompt + completion, the unaligned "pretraining" distribution) and
``eval_prompts.jsonl`` and ``rl_prompts.jsonl`` (prompts only).
"""

from __future__ import annotations

import random

from pydantic import Field

from rewards.synthetic import NEGATIVE, NEUTRAL, POSITIVE, TOPICS, sentiment_score
from rlhf.stages.base import StageContext, StageOptions, StageResult, StageSpec

TEMPLATES = ("Tell me about the {t}.", "Say something about the {t}.", "Describe the {t}.",
             "Write a line on the {t}.")


class SyntheticPreferenceOptions(StageOptions):
    n_train_pairs: int = Field(512, ge=8)
    n_eval_pairs: int = Field(128, ge=8)
    n_sft: int = Field(1024, ge=8)
    """Prompt + completion rows for the warm start."""
    n_eval_prompts: int = Field(32, ge=1)
    n_rl_prompts: int = Field(256, ge=1)
    """Prompt-only rows for RL stages (``rl_prompts.jsonl``)."""
    min_words: int = Field(5, ge=1)
    max_words: int = Field(9, ge=1)


def _prompt(rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(t=rng.choice(TOPICS))


def _completion(rng: random.Random, opts: SyntheticPreferenceOptions) -> str:
    n = rng.randint(opts.min_words, max(opts.min_words, opts.max_words))
    p_pos, p_neg = rng.uniform(0, 0.5), rng.uniform(0, 0.5)
    words = []
    for _ in range(n):
        u = rng.random()
        pool = POSITIVE if u < p_pos else NEGATIVE if u < p_pos + p_neg else NEUTRAL
        words.append(rng.choice(pool))
    return " " + " ".join(words) + "."


def make_pairs(rng: random.Random, n: int, opts: SyntheticPreferenceOptions) -> list[dict]:
    rows = []
    while len(rows) < n:
        prompt = _prompt(rng)
        a, b = _completion(rng, opts), _completion(rng, opts)
        sa, sb = sentiment_score(a), sentiment_score(b)
        if sa == sb:
            continue
        chosen, rejected = (a, b) if sa > sb else (b, a)
        rows.append({"id": f"pair-{len(rows)}", "prompt": prompt, "chosen": chosen,
                     "rejected": rejected, "margin": round(abs(sa - sb), 6)})
    return rows


def run(ctx: StageContext, opts: SyntheticPreferenceOptions) -> StageResult:
    from rlhf.data import write_jsonl

    rng = random.Random(ctx.seed)
    train = make_pairs(rng, opts.n_train_pairs, opts)
    evals = make_pairs(rng, opts.n_eval_pairs, opts)
    sft = [{"prompt": _prompt(rng), "completion": _completion(rng, opts)} for _ in range(opts.n_sft)]
    prompts = [{"prompt": _prompt(rng)} for _ in range(opts.n_eval_prompts)]
    rl_prompts = [{"prompt": _prompt(rng)} for _ in range(opts.n_rl_prompts)]
    files = (("train", train), ("eval", evals), ("sft", sft), ("eval_prompts", prompts),
             ("rl_prompts", rl_prompts))
    for name, rows in files:
        write_jsonl(ctx.stage_dir / f"{name}.jsonl", rows)
    mean_margin = sum(r["margin"] for r in train) / len(train)
    return StageResult(
        metrics={"data/n_train_pairs": len(train), "data/n_eval_pairs": len(evals),
                 "data/mean_margin": mean_margin},
        outputs={n: f"{n}.jsonl" for n, _ in files},
        summary=[f"{len(train)} train / {len(evals)} held-out pairs, {len(sft)} warm-start rows"],
    )


STAGE = StageSpec(SyntheticPreferenceOptions, run,
                  "Generate a synthetic preference task with a known ground-truth reward")
