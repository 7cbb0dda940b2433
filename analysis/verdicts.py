"""Effects with confidence intervals, pooled over points, and the four-outcome rule.

An :class:`Effect` is one measured difference at one point (a data set, a
width, a kernel size...) with its 95% CI over seeds. Against a margin it is
``above`` (CI beyond +margin), ``below`` (beyond -margin), ``within`` (CI inside
+-margin: no effect worth the name), ``straddles`` (CI crosses a margin: the
data cannot tell) or ``n=1`` (one seed or no spread: no CI, never decides).

A claim's verdict over its points (:func:`four_outcomes`):

* ``supported``: every decisive point is above the margin and so is the pooled effect;
* ``not supported``: no decisive point is above, and the pooled effect is not above;
* ``depends``: decisive points disagree (some above, others below or within);
* ``inconclusive``: no point is decisive, or the decisive ones agree but the pooled
  effect straddles.

Variants for claims that are not one difference against a margin:
:func:`keeps_outcome` (non-inferiority), :func:`ratio_outcome` (a ratio against a
threshold, no CI), :func:`controlled` (a decisive verdict stands only when the
controls show no effect), :func:`conjunction` (one effect read against several
references, all of which it must clear) and :func:`joint` (a claim decided on
several distinct effects, each judged on its own).

The pooled effect is the inverse-variance (fixed-effect) mean of the points with
a CI; Cochran's Q says when the points disagree more than their CIs allow
(heterogeneity, with I^2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats

from analysis.stats import CONFIDENCE, diff_ci, mean_ci

SUPPORTED, NOT_SUPPORTED, DEPENDS, INCONCLUSIVE, NO_DATA = "supported", "not supported", "depends", "inconclusive", "no data"
ABOVE, BELOW, WITHIN, STRADDLES, NO_CI = "above", "below", "within", "straddles", "n=1"
Z = float(_stats.norm.ppf(0.5 + CONFIDENCE / 2))
DECISIVE = (SUPPORTED, NOT_SUPPORTED, DEPENDS)


@dataclass
class Effect:
    """A difference (in fractions for accuracy) with its 95% CI at one point."""

    label: str
    diff: float
    low: float
    high: float
    n: int  # seeds in the smaller group
    margin: float  # same units as diff
    dataset: str = ""
    unit: str = "points"
    scale: float = 100.0  # display: fractions -> points

    @property
    def has_ci(self) -> bool:
        return self.n >= 2 and bool(np.isfinite(self.low) and np.isfinite(self.high)) and self.high > self.low

    @property
    def outcome(self) -> str:
        if not self.has_ci:
            return NO_CI
        if self.low > self.margin:
            return ABOVE
        if self.high < -self.margin:
            return BELOW
        if self.low > -self.margin and self.high < self.margin:
            return WITHIN
        return STRADDLES

    def text(self) -> str:
        s = self.scale
        if not np.isfinite(self.diff):
            return f"{self.label}: n/a"
        digits = 1 if self.unit else 3  # an index without a unit: three decimals
        ci = f"95% CI {s * self.low:+.{digits}f} to {s * self.high:+.{digits}f}" if self.has_ci else "no CI"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.label}: {s * self.diff:+.{digits}f}{unit} ({ci}; n={self.n}) [{self.outcome}]"


def difference(label: str, a, b, margin: float, *, dataset: str = "", unit: str = "points", scale: float = 100.0) -> Effect:
    """``mean(a) - mean(b)`` with a Welch 95% CI (independent groups of seeds)."""
    a, b = (np.asarray(v, float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    diff, low, high = diff_ci(a, b)
    return Effect(label, diff, low, high, int(min(len(a), len(b))), margin, dataset, unit, scale)


def level(label: str, values, margin: float, *, dataset: str = "", unit: str = "points", scale: float = 100.0) -> Effect:
    """A mean (e.g. a paired change) with its t CI, judged against +-margin."""
    mean, low, high, n = mean_ci(values)
    return Effect(label, mean, low, high, n, margin, dataset, unit, scale)


@dataclass
class Pooled:
    effect: Effect
    points: int
    q_p: float  # Cochran's Q test p-value (NaN with one point)
    i2: float  # share of the spread beyond what the CIs explain

    @property
    def heterogeneous(self) -> bool:
        return bool(np.isfinite(self.q_p) and self.q_p < 1 - CONFIDENCE)

    def text(self) -> str:
        line = f"pooled over {self.points} points (inverse-variance): " + self.effect.text().split(": ", 1)[1]
        if self.heterogeneous:
            line += f"; the points disagree beyond their CIs (Cochran's Q p = {self.q_p:.2g}, I^2 = {100 * self.i2:.0f}%)"
        return line


def pooled(effects: list[Effect], label: str = "pooled") -> Pooled | None:
    """The fixed-effect mean of the effects that have a CI (None without any)."""
    usable = [e for e in effects if e.has_ci]
    if not usable:
        return None
    se = np.array([(e.high - e.low) / (2 * Z) for e in usable])
    d = np.array([e.diff for e in usable])
    w = 1 / se**2
    mean = float((w * d).sum() / w.sum())
    half = Z / np.sqrt(w.sum())
    q = float((w * (d - mean) ** 2).sum())
    k = len(usable)
    q_p = float(_stats.chi2.sf(q, k - 1)) if k > 1 else float("nan")
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    first = usable[0]
    n = min(e.n for e in usable)
    effect = Effect(label, mean, mean - half, mean + half, n, first.margin, "", first.unit, first.scale)
    return Pooled(effect, k, q_p, i2)


def four_outcomes(effects: list[Effect], pool: Pooled | None = None) -> str:
    """supported / not supported / depends / inconclusive (module docstring); no data without effects."""
    if not effects:
        return NO_DATA
    pool = pool if pool is not None else pooled(effects)
    clear = {e.outcome for e in effects} - {STRADDLES, NO_CI}
    pooled_outcome = pool.effect.outcome if pool else NO_CI
    if ABOVE in clear and clear & {BELOW, WITHIN}:
        return DEPENDS
    if clear == {ABOVE}:
        return SUPPORTED if pooled_outcome == ABOVE else INCONCLUSIVE
    if clear:
        return NOT_SUPPORTED if pooled_outcome != ABOVE else INCONCLUSIVE
    return INCONCLUSIVE


OutcomeRule = Callable[[list[Effect]], str]  # a claim's effects -> its verdict


def keeps_outcome(effects: list[Effect]) -> str:
    """Non-inferiority, with the same handling of undecided points as :func:`four_outcomes`:
    a point keeps the solution when its CI lies above -margin (above or within)."""
    if not effects:
        return NO_DATA
    keeps = {ABOVE, WITHIN}
    clear = {e.outcome for e in effects} & (keeps | {BELOW})
    pool = pooled(effects)
    pool_keeps = pool is not None and pool.effect.low > -pool.effect.margin
    if clear & keeps and BELOW in clear:
        return DEPENDS
    if clear and clear <= keeps:
        return SUPPORTED if pool_keeps else INCONCLUSIVE
    if clear == {BELOW}:
        return NOT_SUPPORTED if not pool_keeps else INCONCLUSIVE
    return INCONCLUSIVE


def ratio_outcome(ratios: Sequence[float], threshold: float) -> str:
    """Ratios (one measurement each, no CI) against ``threshold``: supported when every one is
    at least ``threshold``, not supported when every one is at most ``1 / threshold``, depends
    when some are each; inconclusive otherwise; no data without ratios."""
    if not ratios:
        return NO_DATA
    high = [r >= threshold for r in ratios]
    low = [r <= 1 / threshold for r in ratios]
    if all(high):
        return SUPPORTED
    if all(low):
        return NOT_SUPPORTED
    if any(high) and any(low):
        return DEPENDS
    return INCONCLUSIVE


def controlled(verdict: str, controls: Sequence[Effect]) -> str:
    """``verdict``, unless controls were measured and not every one is shown equivalent to zero
    (CI within its margin): then a decisive verdict becomes inconclusive (the test has no control)."""
    if controls and {e.outcome for e in controls} != {WITHIN} and verdict in DECISIVE:
        return INCONCLUSIVE
    return verdict


def conjunction(*verdicts: str) -> str:
    """One effect that must clear several references at once (each verdict from its own rule):
    supported when every one is, not supported when any one is not; otherwise depends when
    one depends, else inconclusive; no data when none has data."""
    if not verdicts or set(verdicts) == {NO_DATA}:
        return NO_DATA
    if set(verdicts) == {SUPPORTED}:
        return SUPPORTED
    if NOT_SUPPORTED in verdicts:
        return NOT_SUPPORTED
    return DEPENDS if DEPENDS in verdicts else INCONCLUSIVE


def joint(*verdicts: str) -> str:
    """A claim decided on several distinct effects (each verdict from its own rule, never pooled
    together: their units differ): supported when every one is, not supported when every one
    is not; depends when they are decisive and disagree; inconclusive when any one is (or has
    no data while another has); no data when none has data."""
    if not verdicts or set(verdicts) == {NO_DATA}:
        return NO_DATA
    if INCONCLUSIVE in verdicts or NO_DATA in verdicts:
        return INCONCLUSIVE
    if set(verdicts) == {SUPPORTED}:
        return SUPPORTED
    if set(verdicts) == {NOT_SUPPORTED}:
        return NOT_SUPPORTED
    return DEPENDS
