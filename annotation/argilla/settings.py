"""The Argilla dataset of a pairwise speech comparison: fields, questions, guidelines.

Fields (markdown): ``prompt`` (escaped text), ``clip_a`` and ``clip_b`` (audio players, shown as
"A" and "B"). Questions: ``preference`` (A / B / tie, required), ``naturalness_a`` and
``naturalness_b`` (1-5, required; the margin of a preference comes from them), ``comment``
(optional text). Metadata: ``order`` (``AB``/``BA``, hidden from annotators) plus extra metadata
(pair id, original paths, the pair's own metadata) that only owners and admins see.
``TaskDistribution(min_submitted=N)``: a pair is complete after N annotators submitted.
"""

from __future__ import annotations

from typing import Any

from annotation.argilla.records import (
    FIELD_FIRST, FIELD_PROMPT, FIELD_SECOND, META_ORDER, ORDERS, Q_COMMENT, Q_NATURAL_FIRST,
    Q_NATURAL_SECOND, Q_PREFERENCE,
)
from rlhf.errors import UserError

LABELS = {"A": "A is better", "B": "B is better", "tie": "About the same"}

GUIDELINES = """\
## Which recording is better?

Each task shows a **prompt** and two recordings, **A** and **B**, made for it.

1. Play both recordings to the end (the order on screen is random).
2. Answer **Which is better?**: pick the recording you would rather hear as the response to the
   prompt. Judge, in this order: does it say what the prompt asks (no missing, extra or wrong
   words); does it sound natural (rhythm, speed, intonation, no glitches); is it clear and easy
   to follow. Choose **About the same** only when you really cannot prefer one.
3. Rate the **naturalness** of A and of B from 1 to 5:
   1 = robotic or broken, 2 = clearly synthetic, 3 = acceptable, 4 = good, 5 = like a person.
4. Add a **comment** if something is wrong with the task (silence, clipped audio, a prompt that
   makes no sense), or **Discard** the task when it cannot be judged.

Do not search for who or what produced the recordings; rate only what you hear.
"""


def dataset_settings(min_submitted: int = 1, guidelines: str | None = None) -> Any:
    """``rg.Settings`` of a pairwise speech comparison dataset."""
    import argilla as rg

    if min_submitted < 1:
        raise UserError(f"annotators per pair must be at least 1, got {min_submitted}")
    return rg.Settings(
        fields=[
            rg.TextField(FIELD_PROMPT, title="Prompt", use_markdown=True),
            rg.TextField(FIELD_FIRST, title="A", use_markdown=True),
            rg.TextField(FIELD_SECOND, title="B", use_markdown=True),
        ],
        questions=[
            rg.LabelQuestion(Q_PREFERENCE, labels=dict(LABELS), title="Which is better?",
                             description="The recording you would rather hear for this prompt."),
            rg.RatingQuestion(Q_NATURAL_FIRST, values=[1, 2, 3, 4, 5],
                              title="How natural does A sound? (1 = robotic, 5 = like a person)"),
            rg.RatingQuestion(Q_NATURAL_SECOND, values=[1, 2, 3, 4, 5],
                              title="How natural does B sound? (1 = robotic, 5 = like a person)"),
            rg.TextQuestion(Q_COMMENT, title="Comment (optional)", required=False),
        ],
        metadata=[rg.TermsMetadataProperty(META_ORDER, options=list(ORDERS), title="A/B order",
                                           visible_for_annotators=False)],
        guidelines=guidelines or GUIDELINES,
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


REQUIRED_FIELDS = (FIELD_PROMPT, FIELD_FIRST, FIELD_SECOND)
REQUIRED_QUESTIONS = (Q_PREFERENCE, Q_NATURAL_FIRST, Q_NATURAL_SECOND)


def check_compatible(dataset: Any) -> None:
    """Raise :class:`UserError` when an existing dataset lacks what a pair record needs."""
    fields = {f.name for f in dataset.settings.fields}
    questions = {q.name for q in dataset.settings.questions}
    metadata = {m.name for m in dataset.settings.metadata}
    missing = ([f"field {f!r}" for f in REQUIRED_FIELDS if f not in fields]
               + [f"question {q!r}" for q in REQUIRED_QUESTIONS if q not in questions]
               + ([f"metadata property {META_ORDER!r}"] if META_ORDER not in metadata else []))
    if missing:
        raise UserError(f"dataset {dataset.name!r} exists but is not a speech-pair dataset "
                        f"(it lacks {', '.join(missing)}); choose another --dataset name")
