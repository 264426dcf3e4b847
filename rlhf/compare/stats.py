"""Means, standard deviations and percentile-bootstrap intervals over seeds.

The procedure (everything ``rlhf compare`` reports rests on it):

- ``n`` values of a metric, one per finished run (seed) of a group;
- ``mean`` = their mean; ``std`` = sample standard deviation (``ddof=1``), ``None`` for ``n < 2``;
- 95% interval of the mean: percentile bootstrap. ``B = 10,000`` resamples of ``n`` values drawn
  with replacement (``numpy.random.default_rng(0)``, a fresh generator per interval, so a result
  is reproducible and does not depend on what else was computed), the mean of each, and the
  2.5% and 97.5% quantiles of those means (``numpy.quantile``, linear interpolation). For
  ``n < 2`` there is no interval: ``None`` (a single seed says nothing about seed variance);
- difference of two groups ``a - b``: ``mean(a) - mean(b)``; its interval resamples each group
  independently (unpaired, as the groups may hold different seeds), ``B`` times from one
  generator seeded 0 (``a``'s indices drawn first, then ``b``'s), and takes the same quantiles.
  ``excludes_zero`` says whether the interval lies wholly above or below 0; ``None`` when either
  group has fewer than 2 values.

With few seeds the bootstrap interval is narrow for its nominal level (with ``n = 2`` it spans
at most the two values); read it as "the spread of the seeds", not as a test with 5% error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

RESAMPLES = 10_000
SEED = 0
CONFIDENCE = 0.95


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values], dtype=float)
    return arr[np.isfinite(arr)]


def _bounds(means: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_mean_ci(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED,
                      confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of the mean; ``(None, None)`` for fewer than 2 values."""
    x = _clean(values)
    if len(x) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    return _bounds(x[idx].mean(axis=1), confidence)


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES,
                      seed: int = SEED, confidence: float = CONFIDENCE
                      ) -> tuple[float | None, float | None]:
    """Percentile-bootstrap interval of ``mean(a) - mean(b)`` (groups resampled independently);
    ``(None, None)`` when either group has fewer than 2 values."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(xa), size=(resamples, len(xa)))
    ib = rng.integers(0, len(xb), size=(resamples, len(xb)))
    return _bounds(xa[ia].mean(axis=1) - xb[ib].mean(axis=1), confidence)


def summarize(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{"n", "mean", "std", "ci_low", "ci_high"}`` of the finite values (``None`` where there
    is nothing to report)."""
    x = _clean(values)
    n = len(x)
    lo, hi = bootstrap_mean_ci(x, resamples, seed, confidence)
    return {"n": n, "mean": float(x.mean()) if n else None,
            "std": float(x.std(ddof=1)) if n >= 2 else None, "ci_low": lo, "ci_high": hi}


def difference(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES,
               seed: int = SEED, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """``{"diff", "ci_low", "ci_high", "excludes_zero"}`` of ``mean(a) - mean(b)``."""
    xa, xb = _clean(a), _clean(b)
    diff = float(xa.mean() - xb.mean()) if len(xa) and len(xb) else None
    lo, hi = bootstrap_diff_ci(xa, xb, resamples, seed, confidence)
    excludes = None if lo is None or hi is None else bool(lo > 0 or hi < 0)
    return {"diff": diff, "ci_low": lo, "ci_high": hi, "excludes_zero": excludes}


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
