"""Find recipe runs in MLflow and read back their metrics, tags and metric histories.

A recipe run is a parent run (tag ``rlhf.recipe``, no ``mlflow.parentRunId``) with one child run
per stage. Where its metrics live:

- the parent run holds what a stage chose to record for the whole recipe run (e.g. an evaluation
  stage's ``eval/<model>/<metric>`` via ``StageTracker.log_parent_metrics``): read as is;
- each stage's child run holds its own metrics (the RL stages' ``eval/reward_before|after|gain``,
  ``evaluate_policy``'s ``eval/<label>/reward_mean``, per-step ``train/...``): read as
  ``<stage>/<metric>``, e.g. ``rl/eval/reward_after``.

A metric's value is its latest one (MLflow's ``run.data.metrics``); curves come from
``get_metric_history``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlhf.errors import UserError

PARENT_TAG = "mlflow.parentRunId"
RECIPE_TAG = "rlhf.recipe"
STAGE_TAG = "rlhf.stage"
FINGERPRINT_TAG = "rlhf.reward_fingerprint"
COMPARISON_TAG = "rlhf.comparison"
SWEEP_TAG, VARIANT_TAG, SEED_TAG = "rlhf.sweep", "rlhf.variant", "rlhf.seed"


@dataclass
class RunRecord:
    """One recipe run (parent MLflow run) with its stages' metrics."""

    run_id: str
    experiment_id: str
    name: str
    status: str
    start_time: int
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    """Parent metrics under their own names, stage metrics as ``<stage>/<metric>``."""
    eval_metrics: list[str] = field(default_factory=list)
    """The default metrics of a comparison: parent ``eval/...`` and ``<stage>/eval/...``."""
    stages: dict[str, str] = field(default_factory=dict)
    """Stage name -> child run id."""
    stage_status: dict[str, str] = field(default_factory=dict)

    @property
    def variant(self) -> str | None:
        return self.tags.get(VARIANT_TAG)

    @property
    def seed(self) -> int | None:
        value = self.tags.get(SEED_TAG)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    @property
    def fingerprint(self) -> str:
        return self.tags.get(FINGERPRINT_TAG, "?")

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"

    def metric_run(self, name: str) -> tuple[str, str] | None:
        """(MLflow run id, metric key in that run) of a metric name of this record."""
        if name not in self.metrics:
            return None
        stage, _, rest = name.partition("/")
        if stage in self.stages and rest:
            return self.stages[stage], rest
        return self.run_id, name

    def failure(self) -> str:
        """Why the run is not usable: its status and the stages that did not finish."""
        bad = [f"{s} {st.lower()}" for s, st in self.stage_status.items() if st != "FINISHED"]
        return f"status {self.status}" + (f" ({', '.join(bad)})" if bad else "")


def _search(client: Any, experiment_ids: list[str], filter_string: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return runs


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def experiment_ids(client: Any, name: str | None) -> list[str]:
    """The id of experiment ``name``, or of every active experiment when ``name`` is None."""
    if name is not None:
        found = client.get_experiment_by_name(name)
        if found is None:
            from rlhf.errors import did_you_mean

            names = [e.name for e in client.search_experiments()]
            raise UserError(f"no MLflow experiment {name!r} in this store; "
                            f"{did_you_mean(name, names)}")
        return [found.experiment_id]
    return [e.experiment_id for e in client.search_experiments()]


def find_runs(client: Any, experiment: str | None = None, tags: dict[str, str] | None = None
              ) -> list[RunRecord]:
    """Every recipe parent run (any status) whose tags equal ``tags``, oldest first, with the
    metrics of the run and of its stages. Comparison runs are left out."""
    ids = experiment_ids(client, experiment)
    if not ids:
        return []
    clauses = [f"tags.`{RECIPE_TAG}` != ''"]
    clauses += [f"tags.`{k}` = {_quote(v)}" for k, v in (tags or {}).items()]
    records = []
    for run in _search(client, ids, " and ".join(clauses)):
        run_tags = dict(run.data.tags)
        if PARENT_TAG in run_tags or COMPARISON_TAG in run_tags:
            continue
        record = RunRecord(run.info.run_id, run.info.experiment_id, run.info.run_name or "",
                           run.info.status, run.info.start_time or 0, run_tags)
        record.metrics.update(run.data.metrics)
        record.eval_metrics += [k for k in run.data.metrics if k.startswith("eval/")]
        children = _search(client, [run.info.experiment_id],
                           f"tags.`{PARENT_TAG}` = {_quote(run.info.run_id)}")
        for child in children:  # oldest first: a stage's newest run wins
            stage = child.data.tags.get(STAGE_TAG, child.info.run_name)
            record.stages[stage] = child.info.run_id
            record.stage_status[stage] = child.info.status
            for key, value in child.data.metrics.items():
                name = f"{stage}/{key}"
                record.metrics[name] = value
                if key.startswith("eval/") and name not in record.eval_metrics:
                    record.eval_metrics.append(name)
        records.append(record)
    return records


def metric_history(client: Any, record: RunRecord, name: str) -> list[tuple[int, float]]:
    """``(step, value)`` points of metric ``name`` of a run, one per step (the last logged)."""
    where = record.metric_run(name)
    if where is None:
        return []
    by_step: dict[int, float] = {}
    for m in sorted(client.get_metric_history(*where), key=lambda m: (m.step, m.timestamp)):
        by_step[int(m.step)] = float(m.value)
    return sorted(by_step.items())
