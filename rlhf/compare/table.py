"""Group finished runs, summarise each metric per group, and compare the groups pairwise.

Groups: by ``rlhf.variant`` when every selected run carries one and they come from one sweep
(or ``by="variant"``); else by reward-design fingerprint (``rlhf.reward_fingerprint``, keyed
with the recipe when several recipes are mixed). Groups are ordered by their first run's start
time (a sweep's variants therefore in file order). Runs that did not finish (status other than
``FINISHED``) are left out of every group and listed in ``excluded`` with the reason.

See :mod:`rlhf.compare.stats` for the statistics.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

from rlhf.compare import stats
from rlhf.compare.collect import SWEEP_TAG, RunRecord
from rlhf.errors import UserError, did_you_mean

GroupBy = Literal["auto", "variant", "fingerprint"]


@dataclass
class Group:
    name: str
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return ",".join(sorted({r.fingerprint for r in self.runs}))

    def values(self, metric: str) -> list[float]:
        return [r.metrics[metric] for r in self.runs if metric in r.metrics]


def grouping(records: list[RunRecord], by: GroupBy = "auto") -> str:
    """``"variant"`` or ``"fingerprint"``: how ``records`` are grouped (see module docstring)."""
    if by != "auto":
        return by
    sweeps = {r.tags.get(SWEEP_TAG) for r in records}
    if records and all(r.variant for r in records) and len(sweeps) == 1:
        return "variant"
    return "fingerprint"


def make_groups(records: list[RunRecord], by: str) -> list[Group]:
    recipes = {r.tags.get("rlhf.recipe") for r in records}
    groups: dict[str, Group] = {}
    for r in sorted(records, key=lambda r: r.start_time):
        if by == "variant":
            key = r.variant or "(no variant)"
        else:
            key = (r.fingerprint if len(recipes) < 2
                   else f"{r.tags.get('rlhf.recipe')}:{r.fingerprint}")
        groups.setdefault(key, Group(key)).runs.append(r)
    for g in groups.values():
        g.runs.sort(key=lambda r: (r.seed if r.seed is not None else 1 << 62, r.start_time))
    return list(groups.values())


def select_metrics(records: list[RunRecord], patterns: list[str] | None) -> list[str]:
    """The metrics to compare: the runs' ``eval`` metrics by default, else those matching
    ``patterns`` (exact names or ``fnmatch`` globs such as ``evaluate/*``); a pattern matching
    nothing is a user error naming the metrics there are."""
    available = sorted({m for r in records for m in r.metrics})
    if not patterns:
        return sorted({m for r in records for m in r.eval_metrics})
    chosen: list[str] = []
    for pattern in patterns:
        hits = [m for m in available if m == pattern or fnmatch.fnmatchcase(m, pattern)]
        if not hits:
            raise UserError(f"no run has a metric {pattern!r}; {did_you_mean(pattern, available)}")
        chosen += [m for m in hits if m not in chosen]
    return chosen


def compare(records: list[RunRecord], metrics: list[str] | None = None, by: GroupBy = "auto",
            resamples: int = stats.RESAMPLES, seed: int = stats.SEED,
            confidence: float = stats.CONFIDENCE) -> dict[str, Any]:
    """The comparison as one JSON-ready object (see :mod:`rlhf.cli.compare` for its keys)."""
    finished = [r for r in records if r.finished]
    excluded = [{"run_id": r.run_id, "run_name": r.name, "variant": r.variant, "seed": r.seed,
                 "fingerprint": r.fingerprint, "status": r.status, "reason": r.failure()}
                for r in records if not r.finished]
    mode = grouping(finished or records, by)
    names = select_metrics(finished, metrics) if finished else []
    groups = make_groups(finished, mode)
    out_groups = []
    for g in groups:
        out_groups.append({
            "variant": g.name, "fingerprint": g.fingerprint, "n": len(g.runs),
            "seeds": [r.seed for r in g.runs], "run_ids": [r.run_id for r in g.runs],
            "metrics": {m: stats.summarize(g.values(m), resamples, seed, confidence)
                        for m in names},
            "values": {m: g.values(m) for m in names},
        })
    pairs = []
    for a, b in itertools.combinations(groups, 2):
        for m in names:
            if not _has(a, m) or not _has(b, m):
                continue
            pairs.append({"a": a.name, "b": b.name, "metric": m,
                          **stats.difference(a.values(m), b.values(m), resamples, seed,
                                             confidence)})
    return {
        "groups": out_groups,
        "pairs": pairs,
        "excluded": excluded,
        "group_by": mode,
        "metrics": names,
        "method": {"statistic": "mean over runs (seeds)", "std": "sample (ddof=1)",
                   "interval": "percentile bootstrap", "confidence": confidence,
                   "resamples": resamples, "seed": seed,
                   "pairs": "mean(a) - mean(b), groups resampled independently"},
    }


def _has(group: Group, metric: str) -> bool:
    return bool(group.values(metric))


def groups_csv(result: dict[str, Any]) -> str:
    """One row per group x metric: variant, fingerprint, n, metric, n_metric, mean, std, CI."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["variant", "fingerprint", "n", "metric", "metric_n", "mean", "std",
                     "ci_low", "ci_high"])
    for g in result["groups"]:
        for name, s in g["metrics"].items():
            writer.writerow([g["variant"], g["fingerprint"], g["n"], name, s["n"],
                             *(_cell(s[k]) for k in ("mean", "std", "ci_low", "ci_high"))])
    return buf.getvalue()


def pairs_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["a", "b", "metric", "diff", "ci_low", "ci_high", "excludes_zero"])
    for p in result["pairs"]:
        writer.writerow([p["a"], p["b"], p["metric"], _cell(p["diff"]), _cell(p["ci_low"]),
                         _cell(p["ci_high"]), "" if p["excludes_zero"] is None
                         else str(p["excludes_zero"]).lower()])
    return buf.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else repr(float(value))
