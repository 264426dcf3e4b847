"""The contract of an annotation backend: push pairs out, pull preferences in, report progress.

:class:`annotation.argilla.ArgillaBackend` implements it against an Argilla server (embedded or
remote). Another tool (Label Studio, a spreadsheet round trip) would implement the same three
methods; the ``annotate`` stage and the CLI only use these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from annotation.aggregate import Agreement, PairOutcome
from annotation.pairs import Pair


@dataclass
class PushReport:
    """What a push did: pairs in the outbox, newly journalled, sent now, sent before."""

    total: int
    """Pairs in the outbox for this dataset."""
    added: int
    """Pairs journalled by this push (new to the outbox)."""
    sent: int
    """Pairs the server acknowledged during this push."""
    already_sent: int
    """Pairs acknowledged by an earlier push (not sent again)."""
    batches: int = 0
    seconds: float = 0.0
    dataset_id: str | None = None

    @property
    def complete(self) -> bool:
        return self.sent + self.already_sent == self.total


@dataclass
class Progress:
    """Annotation progress of a dataset (pairs = records)."""

    total: int
    completed: int
    """Pairs with the required number of submitted answers (the task distribution's target)."""
    pending: int
    users: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per annotator: ``{"submitted": n, "discarded": n, "draft": n}``."""

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "completed": self.completed, "pending": self.pending,
                "users": self.users}


@dataclass
class PullResult:
    """Preference rows (decided pairs that pass the filters), every pair's outcome, agreement."""

    preferences: list[dict[str, Any]]
    outcomes: dict[str, PairOutcome]
    """Pair id → outcome, for every record on the server."""
    agreement: Agreement
    counts: dict[str, int]
    """Pairs per decision (:func:`annotation.aggregate.summarize`) plus ``kept`` (preference rows)."""

    def metrics(self, prefix: str = "annotation/") -> dict[str, float]:
        """Scalars for MLflow, the headline ones first: pairs kept and decided, Fleiss' and
        mean Cohen's kappa, mean margin; then every count and the per-pair Cohen's kappas."""
        agreement = self.agreement.metrics(prefix=f"{prefix}agreement/")
        out = {f"{prefix}pairs/kept": float(self.counts.get("kept", len(self.preferences))),
               f"{prefix}pairs/decided": float(self.counts.get("decided", 0))}
        for key in ("fleiss_kappa", "mean_cohen_kappa"):
            out[f"{prefix}agreement/{key}"] = agreement.pop(f"{prefix}agreement/{key}")
        margins = [r["margin"] for r in self.preferences if r.get("margin") is not None]
        if margins:
            out[f"{prefix}mean_margin"] = sum(margins) / len(margins)
        out.update({f"{prefix}pairs/{k}": float(v) for k, v in self.counts.items()
                    if f"{prefix}pairs/{k}" not in out})
        out.update(agreement)
        return out


@runtime_checkable
class AnnotationBackend(Protocol):
    """Where annotators work. Implementations must make ``push`` idempotent and loss-free."""

    def push(self, pairs: Sequence[Pair],
             on_batch: Callable[[int, int], None] | None = None) -> PushReport:
        """Send the pairs not sent yet. ``on_batch(sent_so_far, total)`` after each batch."""
        ...

    def pull(self, min_votes: int | None = None, min_margin: float | None = None,
             min_agreement: float | None = None) -> PullResult:
        """Submitted answers → aggregation → preference rows (original audio paths).
        ``min_votes`` (default: the annotators each pair needs) votes decide a pair."""
        ...

    def progress(self) -> Progress:
        """How many pairs are done."""
        ...
