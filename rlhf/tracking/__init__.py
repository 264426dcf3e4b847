"""MLflow tracking for recipe runs: one parent run per recipe run, one child run per stage.

- :mod:`.store`: tracking URI (``./mlflow.db`` by default), experiment, ``mlflow ui`` command.
- :mod:`.params`: config -> flat, redacted MLflow params.
- :mod:`.fingerprint`: reward-design fingerprint and toolkit git commit (run tags).
- :mod:`.tracker`: :class:`RecipeTracker` (parent run) and :class:`StageTracker` (child run,
  batched metrics, artifacts, curves at close).
- :mod:`.plots`: metric curves as PNG.
- :mod:`.callback`: ``transformers`` callback (import it from ``rlhf.tracking.callback``; it is not
  re-exported here so that importing this package does not import ``transformers``).

Importing this package imports neither MLflow nor matplotlib nor transformers.
"""

from rlhf.tracking.fingerprint import git_commit, reward_fingerprint
from rlhf.tracking.params import flatten, redact, redact_tree, to_params
from rlhf.tracking.plots import plot_curves
from rlhf.tracking.store import (
    default_tracking_uri,
    get_or_create_experiment,
    resolve_uri,
    ui_command,
)
from rlhf.tracking.tracker import RecipeTracker, StageTracker

__all__ = [
    "RecipeTracker",
    "StageTracker",
    "default_tracking_uri",
    "flatten",
    "get_or_create_experiment",
    "git_commit",
    "plot_curves",
    "redact",
    "redact_tree",
    "resolve_uri",
    "reward_fingerprint",
    "to_params",
    "ui_command",
]
