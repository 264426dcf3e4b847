"""Judgment records: synthetic ones, reading and validating files, and SFT examples.

A judgment record holds the template's fields and a ``label``:

- pairwise modes: ``response_a``, ``response_b``, ``label`` in ``A``/``B``/``tie`` (which answer
  is better), plus whatever else the template uses (``prompt``, ``reference``, ``rubric``);
- ``pointwise``: ``response``, ``label`` an integer score in ``1..scale``, plus the rest.

:func:`sft_examples` renders records into prompt/completion pairs (the completion is the
canonical verdict, ``[[A]]`` or ``Score: 4``). Pairwise records are also added in the swapped
order with the label swapped, so a judge cannot learn a prior for a position.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from rewards.generative.judge import as_text, verdict_kind
from rewards.generative.templates import PAIR_SLOTS, JudgeTemplate
from rewards.generative.verdict import check_label, verdict_text
from rlhf.data.records import Problem
from rlhf.errors import DataError

_SWAPPED_LABEL = {"A": "B", "B": "A", "tie": "tie"}


def synthetic_judgments(n: int, seed: int = 0, min_margin: float = 0.0, min_words: int = 5,
                        max_words: int = 9) -> list[dict[str, Any]]:
    """``n`` pairwise judgment records over the quickstart lexicon task.

    Two answers to one prompt are drawn as in the ``synthetic_preferences`` stage (word
    sequences from the positive / negative / neutral lexicon); the label is ``A`` when
    ``sentiment_score(response_a) > sentiment_score(response_b)``, else ``B``; ties are redrawn,
    as are pairs whose score gap is below ``min_margin``. Which answer sits in slot A is a coin
    flip, so labels are balanced. ``margin`` is the score gap.
    """
    from rlhf.stages.synthetic import SyntheticPreferenceOptions, make_pairs

    rng = random.Random(seed)
    opts = SyntheticPreferenceOptions(min_words=min_words, max_words=max_words)
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        pair = make_pairs(rng, 1, opts)[0]
        if pair["margin"] < min_margin:
            continue
        chosen_first = rng.random() < 0.5
        a, b = (pair["chosen"], pair["rejected"]) if chosen_first else \
            (pair["rejected"], pair["chosen"])
        rows.append({"id": f"judgment-{len(rows)}", "prompt": pair["prompt"], "response_a": a,
                     "response_b": b, "label": "A" if chosen_first else "B",
                     "margin": pair["margin"]})
    return rows


def record_fields(template: JudgeTemplate, mode: str, rubric: str | None = None) -> list[str]:
    """The fields a record must have for ``template`` in ``mode`` (``label`` last).

    ``rubric`` is not required when a fixed rubric text is given."""
    slots = list(PAIR_SLOTS) if verdict_kind(mode) == "pairwise" else ["response"]
    others = [p for p in template.placeholders if p not in slots and
              not (p == "rubric" and rubric is not None)]
    return others + slots + ["label"]


def validate_judgment(row: Any, fields: list[str], mode: str, scale: int) -> list[Problem]:
    """Every problem of one record as ``(field, problem)`` pairs; empty when it is valid."""
    if not isinstance(row, dict):
        return [("", f"expected an object, got {type(row).__name__}")]
    problems: list[Problem] = []
    for name in fields[:-1]:
        value = as_text(row.get(name))
        if value is None:
            problems.append((name, "missing"))
        elif not value.strip():
            problems.append((name, "empty"))
    if row.get("label") is None:
        problems.append(("label", "missing"))
    else:
        try:
            check_label(verdict_kind(mode), row["label"], scale)
        except ValueError as exc:
            problems.append(("label", str(exc)))
    return problems


def load_judgments(path: str | os.PathLike[str], fields: list[str], mode: str, scale: int = 5,
                   on_bad_rows: str = "error",
                   rejected_path: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """The valid judgment records of a file (JSONL, JSON, Parquet, a saved dataset).

    A bad row raises :class:`~rlhf.data.BadRowError` (``file:line: field: problem``), or with
    ``on_bad_rows="skip"`` goes to ``rejected_path``; a file with no good row raises.
    """
    from rlhf.data.readers import iter_entries, write_jsonl
    from rlhf.data.validate import BadRowError, rejected_row

    rows, rejected = [], []
    for entry in iter_entries(path):
        problems = [("", entry.problem)] if entry.problem else \
            validate_judgment(entry.row, fields, mode, scale)
        if not problems:
            rows.append(entry.row)
        elif on_bad_rows == "skip":
            rejected.append(rejected_row(entry, problems))
        else:
            raise BadRowError(entry.location, problems)
    if rejected_path is not None and on_bad_rows == "skip":
        write_jsonl(Path(rejected_path), rejected)
    if not rows:
        raise DataError(f"{path}: no valid judgment records"
                        + (f" (bad rows are in {rejected_path})" if rejected else ""))
    return rows


def swapped(row: dict[str, Any]) -> dict[str, Any]:
    """A pairwise record with its answers in the other slots and its label swapped."""
    return {**row, "response_a": row["response_b"], "response_b": row["response_a"],
            "label": _SWAPPED_LABEL[row["label"]]}


def render_record(template: JudgeTemplate, row: dict[str, Any],
                  rubric: str | None = None) -> str:
    """The judge prompt of one record (a ``rubric`` column wins over the fixed ``rubric``)."""
    values = {name: as_text(row.get(name)) for name in template.placeholders}
    if "rubric" in values and values["rubric"] is None:
        values["rubric"] = rubric
    return template.render(values)


def sft_examples(rows: list[dict[str, Any]], template: JudgeTemplate, mode: str,
                 rubric: str | None = None, swap_augment: bool = True) -> list[dict[str, str]]:
    """``{"prompt": judge prompt, "completion": verdict}`` per record; pairwise records twice
    (both orders) when ``swap_augment``. The prompt is the rendered template, not yet wrapped
    in a chat template."""
    kind = verdict_kind(mode)
    out = []
    for row in rows:
        variants = [row, swapped(row)] if kind == "pairwise" and swap_augment else [row]
        for variant in variants:
            out.append({"prompt": render_record(template, variant, rubric),
                        "completion": verdict_text(kind, variant["label"])})
    return out
