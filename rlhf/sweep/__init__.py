"""Sweeps: one recipe, several reward designs (variants) x seeds, run as ordinary recipe runs.

- :mod:`.spec`: the sweep file (pydantic), expansion into variant x seed runs, validation of
  every run before any compute.
- :mod:`.runner`: running them (in process, or ``--parallel N`` subprocesses of ``rlhf run``),
  the ``sweep.json`` state and ``--resume``.

``rlhf compare`` (:mod:`rlhf.compare`) reads the runs back from MLflow.
"""

from rlhf.sweep.runner import (
    SEED_TAG,
    SWEEP_TAG,
    VARIANT_TAG,
    SweepOutcome,
    SweepState,
    prepare,
    run_sweep,
)
from rlhf.sweep.spec import PlannedRun, Sweep, SweepSpec, load_sweep, validate_runs

__all__ = [
    "SEED_TAG",
    "SWEEP_TAG",
    "VARIANT_TAG",
    "PlannedRun",
    "Sweep",
    "SweepOutcome",
    "SweepSpec",
    "SweepState",
    "load_sweep",
    "prepare",
    "run_sweep",
    "validate_runs",
]
