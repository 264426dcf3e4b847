"""The statistics of ``rlhf compare``: means, sd, percentile-bootstrap intervals, as documented."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.compare import stats


def reference_ci(values, resamples=10_000, seed=0):
    """The documented procedure, written out independently."""
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    return tuple(np.quantile(means, [0.025, 0.975]))


def test_summary_matches_the_documented_procedure():
    values = [0.1, 0.4, 0.35, 0.9]
    s = stats.summarize(values)
    assert s["n"] == 4
    assert s["mean"] == pytest.approx(np.mean(values))
    assert s["std"] == pytest.approx(np.std(values, ddof=1))
    lo, hi = reference_ci(values)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((lo, hi))
    assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    assert stats.summarize(values) == s  # reproducible: a fresh generator per interval


def test_one_value_gets_no_interval_and_no_sd():
    assert stats.summarize([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci_low": None,
                                      "ci_high": None}
    assert stats.summarize([]) == {"n": 0, "mean": None, "std": None, "ci_low": None,
                                   "ci_high": None}
    assert stats.summarize([float("nan"), 2.0])["n"] == 1  # non-finite values are dropped
    assert stats.difference([0.5], [0.1, 0.2]) == {"diff": pytest.approx(0.35), "ci_low": None,
                                                   "ci_high": None, "excludes_zero": None}


def test_difference_interval_and_excludes_zero():
    a, b = [1.0, 1.1, 0.9, 1.05], [0.0, 0.1, -0.1, 0.05]
    d = stats.difference(a, b)
    assert d["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    rng = np.random.default_rng(0)
    xa, xb = np.asarray(a), np.asarray(b)
    ia = rng.integers(0, 4, size=(10_000, 4))
    ib = rng.integers(0, 4, size=(10_000, 4))
    lo, hi = np.quantile(xa[ia].mean(1) - xb[ib].mean(1), [0.025, 0.975])
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((lo, hi))
    assert d["excludes_zero"] is True
    same = stats.difference([0.1, 0.5, 0.3], [0.2, 0.4, 0.3])
    assert same["ci_low"] < 0 < same["ci_high"] and same["excludes_zero"] is False
