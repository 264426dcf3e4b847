"""Token-id preference records for ``dpo``: pairs of generated token sequences.

A token-id preference file is JSON Lines, one pair per line::

    {"prompt_ids": [12, 7, 1026],          # the policy's input ids (no padding)
     "chosen_ids": [1031, 1062, 1025],     # the preferred completion's ids (end token included)
     "rejected_ids": [1040, 1090, 1033, 1071, 1025],
     "prompt": "the cat sat", "id": "pair-00003", "margin": 0.4}   # optional, ignored by DPO

It is what a policy that writes non-text tokens (codec-token TTS, :mod:`rlhf.policies.audio.
codec_tts`) produces: the exact ids it sampled, so DPO scores the same sequences (text records go
through the tokenizer, which need not map a decoded completion back to the same ids). The ``dpo``
stage takes such a file when its first row has ``chosen_ids``. Every bad row is reported as
``<file>:<line>: <field>: <problem>`` (up to :data:`MAX_REPORTED`) in one :class:`DataError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlhf.errors import DataError

ID_FIELDS = ("prompt_ids", "chosen_ids", "rejected_ids")
MAX_REPORTED = 20


def is_token_file(path: str | Path) -> bool:
    """Whether the first non-empty row of a JSONL file has ``chosen_ids`` (token-id records)."""
    p = Path(path)
    if p.suffix.lower() not in {".jsonl", ".json"} or not p.is_file():
        return False
    with p.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "chosen_ids" in row
    return False


def _ids_problem(value: Any, vocab_size: int) -> str | None:
    if not isinstance(value, list) or not value:
        return "expected a non-empty list of token ids"
    for i, x in enumerate(value):
        if isinstance(x, bool) or not isinstance(x, int):
            return f"item {i}: expected an integer token id, got {x!r}"
        if not 0 <= x < vocab_size:
            return f"item {i}: token id {x} outside the vocabulary [0, {vocab_size})"
    return None


def load_token_pairs(path: str | Path, vocab_size: int) -> Any:
    """The pairs of a token-id preference file as a ``datasets.Dataset`` with the columns
    ``prompt_ids``, ``chosen_ids``, ``rejected_ids``. Raises :class:`DataError` naming every bad
    row (``file:line: field: problem``)."""
    from datasets import Dataset

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    rows: dict[str, list[list[int]]] = {f: [] for f in ID_FIELDS}
    problems: list[str] = []
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(f"{p}:{lineno}: not valid JSON ({exc.msg}, column {exc.colno})")
                continue
            if not isinstance(row, dict):
                problems.append(f"{p}:{lineno}: expected a JSON object")
                continue
            bad = [(f, "missing" if f not in row else _ids_problem(row[f], vocab_size))
                   for f in ID_FIELDS]
            bad = [(f, m) for f, m in bad if m]
            if bad:
                problems.extend(f"{p}:{lineno}: {f}: {m}" for f, m in bad)
                continue
            for f in ID_FIELDS:
                rows[f].append(row[f])
    if problems:
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        raise DataError(f"bad token-id preference rows in {p}:\n" + "\n".join(shown)
                        + (f"\n... and {more} more" if more else ""))
    if not rows["chosen_ids"]:
        raise DataError(f"{p}: no preference pairs (the file is empty)")
    return Dataset.from_dict(rows)


def token_dpo_trainer(base: type, layout: Any = None) -> type:
    """A subclass of TRL's ``DPOTrainer`` (``base``) that trains on already tokenized pairs
    as they are (TRL would re-tokenize text and append an end token). With a ``layout``, every
    log-prob (reference log-probs precomputed in ``__init__`` included) is that of the
    restricted distribution (:func:`restrict_to_layout`)."""

    class TokenDPOTrainer(base):  # type: ignore[misc, valid-type]
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any,
                             dataset_name: str) -> Any:
            if set(ID_FIELDS) <= set(dataset.column_names):
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

        def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
            if layout is not None:  # runs inside __init__, after TRL's fused head is added
                restrict_to_layout(self, layout)
            return super()._precompute_ref_logps(dataset, name, batch_size)

    return TokenDPOTrainer


def restrict_to_layout(trainer: Any, layout: Any) -> None:
    """Score completions under a policy's restricted distribution (e.g. a ``codec_tts`` layout:
    at completion position ``t`` only ``layout.mask`` tokens; others at -1e9), as the policy
    samples. Patches the fused forward TRL gives the policy and the reference model (called with
    ``fused_lm_head=True`` and ``labels``; completion positions are the labelled ones)."""
    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is not None:  # a PEFT model: TRL patched its base model
            _patch(model.get_base_model() if hasattr(model, "get_base_model") else model, layout)


def _patch(model: Any, layout: Any) -> None:
    import types

    if getattr(model, "_rlhf_layout", None) is layout:
        return  # already restricted

    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    from rlhf.policies.text import MASKED

    fused = model.forward  # TRL's patched forward (its non-fused branch is the original)

    def forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: Any = None,
                num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head:
            return fused(*args, labels=labels, num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        logits = fused(*args, **kwargs).logits[:, :-1].float()  # [B, L-1, V]
        target = labels[:, 1:]
        valid = target != -100
        t = (valid.long().cumsum(dim=1) - 1).clamp(min=0)  # completion position of each label
        allowed = layout.mask(int(t.max()) + 1).to(logits.device)[:, :logits.shape[-1]]
        logits = logits.masked_fill(~allowed[t], MASKED)
        logp = torch.log_softmax(logits, dim=-1)
        ids = target.clamp(min=0).unsqueeze(-1)
        log_probs = logp.gather(-1, ids).squeeze(-1) * valid
        with torch.no_grad():
            probs = logp.exp()
            entropy = -(probs * logp).sum(-1) * valid
            mean_logits = logits.mean(-1) * valid
            is_top1 = (logits.argmax(-1) == target) & valid
            log_sum_sq = torch.log((probs ** 2).sum(-1)) * valid
        n = num_items_in_batch if num_items_in_batch is not None else valid.sum().clamp(min=1)
        return FusedCausalLMOutput(loss=-log_probs.sum() / n, log_probs=log_probs,
                                   entropy=entropy, log_sum_sq_probs=log_sum_sq,
                                   mean_logits=mean_logits, is_top1=is_top1)

    model.forward = types.MethodType(forward, model)
    model._rlhf_layout = layout


def policy_layout(policy_path: str) -> Any:
    """The restricted layout of a saved ``codec_tts`` policy at ``policy_path`` (None when it
    is not one)."""
    from rlhf.policies.audio.codec_tts import load_layout

    return load_layout(policy_path)


def copy_layout(src_dir: str | Path, dst_dir: str | Path) -> None:
    import shutil

    from rlhf.policies.audio.codec_tts import LAYOUT_FILE

    shutil.copyfile(Path(src_dir) / LAYOUT_FILE, Path(dst_dir) / LAYOUT_FILE)
