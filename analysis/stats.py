"""Seed aggregation: means, differences and their 95% intervals, each saying how it was made.

* :func:`mean_ci`: a mean over seeds with its Student-t interval;
* :func:`diff_ci` / :func:`welch`: the difference of two independent groups of seeds,
  a Welch t interval (Welch-Satterthwaite degrees of freedom);
* :func:`paired`: the difference of two groups whose replicas are paired (same seed:
  same initialisation stream and batch order), a Student-t interval of the per-seed
  differences.

Each returns the standard error too: random-effects pooling
(:func:`analysis.verdicts.pooled`) weighs points by it, never by a width recovered
from an interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean or difference with its standard error, degrees of freedom and 95% interval."""

    value: float
    se: float
    df: float
    n: int  # seeds (the smaller group for a difference)
    method: str  # "t", "Welch" or "paired t"

    @property
    def half(self) -> float:
        if not (np.isfinite(self.se) and np.isfinite(self.df) and self.df > 0):
            return 0.0 if self.n == 1 or self.se == 0 else np.nan
        return float(_stats.t.ppf(0.5 + CONFIDENCE / 2, self.df) * self.se)

    @property
    def low(self) -> float:
        return self.value - self.half

    @property
    def high(self) -> float:
        return self.value + self.half


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v)]


def mean_estimate(values) -> Estimate:
    """The mean of the finite values, its standard error and n - 1 degrees of freedom."""
    v = _finite(values)
    n = len(v)
    if n == 0:
        return Estimate(np.nan, np.nan, np.nan, 0, "t")
    se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0
    return Estimate(float(v.mean()), se, float(n - 1), n, "t")


def mean_ci(values) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of the finite values; a 95% Student-t interval
    (zero width for n = 1, NaN for n = 0)."""
    e = mean_estimate(values)
    if e.n == 0:
        return np.nan, np.nan, np.nan, 0
    return e.value, e.low, e.high, e.n


def aggregate(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """One row per group: ``mean``, ``low``, ``high``, ``n`` of ``value`` over seeds."""
    rows = []
    for key, group in frame.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high, n = mean_ci(group[value])
        rows.append({**dict(zip(by, key)), "mean": mean, "low": low, "high": high, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high", "n"])


def welch(a, b) -> Estimate:
    """``mean(a) - mean(b)`` of two independent groups of seeds: Welch's standard error
    and Welch-Satterthwaite degrees of freedom (NaN when either group is empty)."""
    a, b = _finite(a), _finite(b)
    n = int(min(len(a), len(b)))
    if n == 0:
        return Estimate(np.nan, np.nan, np.nan, 0, "Welch")
    diff = float(a.mean() - b.mean())
    va = a.var(ddof=1) / len(a) if len(a) > 1 else 0.0
    vb = b.var(ddof=1) / len(b) if len(b) > 1 else 0.0
    se = float(np.sqrt(va + vb))
    if se == 0:
        return Estimate(diff, 0.0, np.nan, n, "Welch")
    dof = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if len(a) > 1 else 0) + (vb**2 / (len(b) - 1) if len(b) > 1 else 0))
    return Estimate(diff, se, float(dof), n, "Welch")


def paired(a: pd.Series, b: pd.Series) -> Estimate:
    """``a - b`` over the seeds both hold (``a`` and ``b`` indexed by seed): the mean of the
    per-seed differences with its Student-t standard error."""
    diffs = (a - b).dropna()
    e = mean_estimate(diffs.to_numpy())
    return Estimate(e.value, e.se, e.df, e.n, "paired t")


def diff_ci(a, b) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: a 95% Welch t interval of the
    difference of two independent groups of seeds (NaN when either is empty)."""
    e = welch(a, b)
    return e.value, e.low, e.high
