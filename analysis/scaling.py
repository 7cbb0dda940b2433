"""Power laws of test error against training-set size, fitted per seed, with CIs over seeds.

The model is ``error(n) = a * n**-b``, a line in log-log coordinates
(``log error = log a - b log n``), fitted by ordinary least squares
(``scipy.stats.linregress``) to each seed's curve: the replicas of one seed
(the same initialisation stream and batch order) across the training-set sizes.
Seeds are independent replications of the whole curve, so the exponent's 95% CI
is a Student-t interval over the per-seed exponents (:func:`analysis.stats.mean_estimate`).

No asymptote ``c``: with a handful of sizes and a few seeds a third parameter is
poorly identified, and MNIST-1D's classes are separable enough that the measured
range shows no floor; a floor, if one were reached, bends the curves, and the fit's
residuals say so (:attr:`PowerLaw.r2`).

The comparison of two families is the slope of ``log(error_a / error_b)`` against
``log n``, per seed over the sizes both measured: by OLS it equals ``b_b - b_a``
exactly, so a negative slope means ``a``'s exponent is the steeper and its
disadvantage shrinks with data. Where the fitted ratio crosses 1 the curves
cross (:func:`crossing`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _stats

from analysis.stats import CONFIDENCE, Estimate, mean_estimate


@dataclass(frozen=True)
class PowerLaw:
    """``error = a * n**-b``, fitted on ``sizes`` distinct sizes; ``r2`` of the log-log line."""

    a: float
    b: float
    r2: float
    sizes: int

    def __call__(self, n) -> np.ndarray:
        return self.a * np.asarray(n, float) ** -self.b


def fit_power_law(n, error) -> PowerLaw:
    """The OLS line through ``(log n, log error)``; needs two distinct sizes and errors > 0
    (a zero error has no logarithm: the caller leaves it out)."""
    n, error = np.asarray(n, float), np.asarray(error, float)
    if len(np.unique(n)) < 2:
        raise ValueError(f"a power law needs at least two distinct sizes, got {sorted(set(n.tolist()))}")
    if np.any(error <= 0) or np.any(n <= 0):
        raise ValueError("sizes and errors must be > 0 to fit in log-log")
    fit = _stats.linregress(np.log(n), np.log(error))
    r2 = float(fit.rvalue**2) if len(n) > 2 else float("nan")
    return PowerLaw(float(np.exp(fit.intercept)), float(-fit.slope), r2, int(len(np.unique(n))))


def _usable(frame: pd.DataFrame, size: str, error: str) -> pd.DataFrame:
    """Rows with a seed, a size and an error > 0 (a zero error has no logarithm)."""
    ok = frame["seed"].notna() & frame[size].notna() & (frame[error] > 0)
    return frame[ok]


def seed_fits(frame: pd.DataFrame, *, size: str = "train_examples", error: str = "test_error") -> pd.DataFrame:
    """One power law per seed with at least two sizes: columns ``seed``, ``a``, ``b``, ``r2``, ``sizes``."""
    rows = []
    for seed, curve in _usable(frame, size, error).groupby("seed"):
        curve = curve.groupby(size)[error].mean()  # one value a size (a run lists a seed once)
        if len(curve) >= 2:
            law = fit_power_law(curve.index, curve.to_numpy())
            rows.append({"seed": seed, "a": law.a, "b": law.b, "r2": law.r2, "sizes": law.sizes})
    return pd.DataFrame(rows, columns=["seed", "a", "b", "r2", "sizes"])


def exponent(frame: pd.DataFrame, **columns) -> Estimate:
    """The exponent ``b``: its mean over the per-seed fits with a t 95% CI over seeds."""
    return mean_estimate(seed_fits(frame, **columns)["b"].to_numpy())


@dataclass(frozen=True)
class RatioSlopes:
    """Per seed, the line ``log(error_a / error_b) = intercept + slope * (log n - centre)``."""

    slopes: np.ndarray
    intercepts: np.ndarray  # at log n = centre
    centre: float  # the mean log size the lines are centred on
    sizes: tuple[float, ...]  # the sizes both families measured

    @property
    def slope(self) -> Estimate:
        return mean_estimate(self.slopes)


def ratio_slopes(a: pd.DataFrame, b: pd.DataFrame, *, size: str = "train_examples", error: str = "test_error") -> RatioSlopes:
    """The slope of ``log(error_a / error_b)`` against ``log n`` for every seed both families
    measured at two or more common sizes (paired by seed and size)."""
    keys = ["seed", size]
    joined = pd.merge(
        _usable(a, size, error).groupby(keys)[error].mean().rename("a"),
        _usable(b, size, error).groupby(keys)[error].mean().rename("b"),
        left_index=True,
        right_index=True,
    ).reset_index()
    sizes = tuple(sorted(joined[size].unique()))
    centre = float(np.mean(np.log(sizes))) if sizes else float("nan")
    slopes, intercepts = [], []
    for _, curve in joined.groupby("seed"):
        if curve[size].nunique() < 2:
            continue
        fit = _stats.linregress(np.log(curve[size].to_numpy(float)) - centre, np.log(curve["a"] / curve["b"]))
        slopes.append(fit.slope)
        intercepts.append(fit.intercept)
    return RatioSlopes(np.asarray(slopes, float), np.asarray(intercepts, float), centre, sizes)


def crossing(ratios: RatioSlopes) -> float | None:
    """The size where the mean fitted ratio ``error_a / error_b`` reaches 1 (the fitted curves
    cross); None when the mean line is flat or there is none."""
    if not len(ratios.slopes):
        return None
    slope, intercept = float(np.mean(ratios.slopes)), float(np.mean(ratios.intercepts))
    if slope == 0:
        return None
    return float(np.exp(ratios.centre - intercept / slope))


def crossing_text(ratios: RatioSlopes, a: str, b: str) -> str:
    """Where the fitted curves of ``a`` and ``b`` cross, relative to the measured sizes (none
    placed when the ratio's slope is not told apart from 0 over seeds)."""
    n = crossing(ratios)
    if n is None or not ratios.sizes:
        return f"{a} and {b}: no fitted crossing"
    slope = ratios.slope
    if slope.n > 1 and slope.low <= 0 <= slope.high:
        return (
            f"{a} and {b}: no fitted crossing: the slope of log(error ratio) against log n, {slope.value:+.3f} "
            f"(95% CI {slope.low:+.3f} to {slope.high:+.3f}), is not told apart from 0"
        )
    low, high = ratios.sizes[0], ratios.sizes[-1]
    if low <= n <= high:
        where = f"inside the measured range ({low:.0f} to {high:.0f})"
    elif n > high:
        where = f"{n / high:.3g}x beyond the largest measured size ({high:.0f})"
    else:
        where = f"{low / n:.3g}x below the smallest measured size ({low:.0f})"
    direction = "falls" if np.mean(ratios.slopes) < 0 else "rises"
    return f"{a} and {b}: the fitted error ratio {a} / {b} {direction} through 1 at n = {n:.3g}, {where}"


def curve_band(fits: pd.DataFrame, sizes) -> pd.DataFrame:
    """The fitted error at ``sizes``: mean over the per-seed fits (in log) with a t 95% band
    over seeds; columns ``n``, ``mean``, ``low``, ``high``."""
    sizes = np.asarray(sizes, float)
    if fits.empty:
        return pd.DataFrame(columns=["n", "mean", "low", "high"])
    logs = np.log(fits["a"].to_numpy())[:, None] - fits["b"].to_numpy()[:, None] * np.log(sizes)[None, :]
    mean = logs.mean(axis=0)
    k = len(fits)
    half = _stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1) * logs.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else 0.0 * mean
    return pd.DataFrame({"n": sizes, "mean": np.exp(mean), "low": np.exp(mean - half), "high": np.exp(mean + half)})


__all__ = [
    "PowerLaw",
    "RatioSlopes",
    "crossing",
    "crossing_text",
    "curve_band",
    "exponent",
    "fit_power_law",
    "ratio_slopes",
    "seed_fits",
]
