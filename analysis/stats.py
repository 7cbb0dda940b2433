"""Seed aggregation: mean, a 95% t confidence interval and n."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as _stats

CONFIDENCE = 0.95


def mean_ci(values) -> tuple[float, float, float, int]:
    """``(mean, low, high, n)`` of the finite values; a 95% Student-t interval
    (zero width for n = 1, NaN for n = 0)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(v.mean())
    if n == 1:
        return mean, mean, mean, 1
    half = float(_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def aggregate(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """One row per group: ``mean``, ``low``, ``high``, ``n`` of ``value`` over seeds."""
    rows = []
    for key, group in frame.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high, n = mean_ci(group[value])
        rows.append({**dict(zip(by, key)), "mean": mean, "low": low, "high": high, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high", "n"])


def diff_ci(a, b) -> tuple[float, float, float]:
    """``(mean(a) - mean(b), low, high)``: a 95% Welch t interval of the
    difference of two independent groups of seeds (NaN when either is empty)."""
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return np.nan, np.nan, np.nan
    diff = float(a.mean() - b.mean())
    va = a.var(ddof=1) / len(a) if len(a) > 1 else 0.0
    vb = b.var(ddof=1) / len(b) if len(b) > 1 else 0.0
    se = np.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if len(a) > 1 else 0) + (vb**2 / (len(b) - 1) if len(b) > 1 else 0))
    half = float(_stats.t.ppf(0.5 + CONFIDENCE / 2, dof) * se)
    return diff, diff - half, diff + half
