"""Effects with confidence intervals, pooled over points, and the four-outcome rule.

An :class:`Effect` is one measured difference at one point (a data set, a
width, a kernel size...) with its 95% CI over seeds: a Welch interval for
independent groups, a paired t interval where the replicas are paired (same seed:
same initialisation stream and batch order), a t interval for a mean; each effect
says which. Against a margin it is ``above`` (CI beyond +margin), ``below`` (beyond
-margin), ``within`` (CI inside +-margin: no effect worth the name), ``straddles``
(CI crosses a margin: the data cannot tell) or ``n=1`` (one seed or no spread: no
CI, never decides).

A claim's verdict over its points (:func:`four_outcomes`); the decision stays with
the points, the pooled effect only summarises them:

* ``supported``: every decisive point is above the margin;
* ``not supported``: decisive points exist and none is above;
* ``depends``: decisive points disagree (some above, others below or within);
* ``inconclusive``: no point is decisive.

Variants for claims that are not one difference against a margin:
:func:`keeps_outcome` (non-inferiority), :func:`ratio_outcome` (a ratio against a
threshold, no CI), :func:`controlled` (a decisive verdict stands only when the
controls show no effect), :func:`conjunction` (one effect read against several
references, all of which it must clear) and :func:`joint` (a claim decided on
several distinct effects, each judged on its own).

The pooled effect (:func:`pooled`) is a random-effects mean over distinct points (a
point that reads a run an earlier point already counted is left out of it):
DerSimonian-Laird between-point variance and a Hartung-Knapp-Sidik-Jonkman t
interval, computed by ``statsmodels.stats.meta_analysis.combine_effects`` from each
point's standard error. Cochran's Q says when the points disagree more than their
CIs allow (heterogeneity, with I^2).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as _stats
from statsmodels.stats.meta_analysis import combine_effects

from analysis.stats import CONFIDENCE, Estimate, mean_estimate, paired, welch

SUPPORTED, NOT_SUPPORTED, DEPENDS, INCONCLUSIVE, NO_DATA = "supported", "not supported", "depends", "inconclusive", "no data"
ABOVE, BELOW, WITHIN, STRADDLES, NO_CI = "above", "below", "within", "straddles", "n=1"
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
    se: float = float("nan")  # standard error of diff: what pooling weighs
    method: str = ""  # how the CI was made: "Welch", "paired t", "t", "HKSJ"
    runs: frozenset = field(default_factory=frozenset)  # the run keys it reads (pooling counts a run once)
    exact: bool = False  # an exact value on every seed (e.g. 100% consistency): a zero-width CI that counts

    @property
    def has_ci(self) -> bool:
        finite = bool(np.isfinite(self.low) and np.isfinite(self.high))
        return self.n >= 2 and finite and (self.high > self.low or self.exact)

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

    def number(self, value: float) -> str:
        """``value`` in display units (one decimal with a unit, three for an index)."""
        return f"{self.scale * value:+.{1 if self.unit else 3}f}"

    def interval(self) -> str:
        """``95% CI low to high (method)``, or ``no CI``."""
        if not self.has_ci:
            return "no CI"
        return f"95% CI {self.number(self.low)} to {self.number(self.high)}" + (f", {self.method}" if self.method else "")

    def text(self) -> str:
        if not np.isfinite(self.diff):
            return f"{self.label}: n/a"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.label}: {self.number(self.diff)}{unit} ({self.interval()}; n={self.n}) [{self.outcome}]"


def _from(label: str, e: Estimate, margin: float, runs: frozenset, dataset: str, unit: str, scale: float) -> Effect:
    return Effect(label, e.value, e.low, e.high, e.n, margin, dataset, unit, scale, e.se, e.method, runs)


def runs_of(*values) -> frozenset:
    """The run keys behind values indexed by ``(run_key, seed)`` (empty for plain arrays)."""
    keys: set = set()
    for v in values:
        index = getattr(v, "index", None)
        if isinstance(index, pd.MultiIndex) and "run_key" in index.names:
            keys |= set(index.get_level_values("run_key"))
    return frozenset(keys)


def _by_seed(values) -> pd.Series | None:
    """Finite values indexed by seed alone, or None when the seeds are unknown or repeat."""
    index = getattr(values, "index", None)
    if not isinstance(index, pd.MultiIndex) or "seed" not in index.names:
        return None
    series = pd.Series(np.asarray(values, float), index=index.get_level_values("seed"))
    series = series[np.isfinite(series.to_numpy())]
    if series.index.hasnans or not series.index.is_unique:
        return None
    return series


def difference(
    label: str,
    a,
    b,
    margin: float,
    *,
    dataset: str = "",
    unit: str = "points",
    scale: float = 100.0,
    pair: bool = False,
) -> Effect:
    """``mean(a) - mean(b)`` with its 95% CI: with ``pair``, a paired t interval over the seeds
    both hold where ``a`` and ``b`` are indexed by ``(run_key, seed)`` and share at least two
    seeds; otherwise (independent groups) a Welch interval."""
    runs = runs_of(a, b)
    if pair:
        sa, sb = _by_seed(a), _by_seed(b)
        if sa is not None and sb is not None and len(sa.index.intersection(sb.index)) >= 2:
            return _from(label, paired(sa, sb), margin, runs, dataset, unit, scale)
    return _from(label, welch(a, b), margin, runs, dataset, unit, scale)


def _seed_differences(a, b) -> np.ndarray | None:
    """``a - b`` per seed both hold (at least two), or None when they cannot be paired."""
    sa, sb = _by_seed(a), _by_seed(b)
    if sa is None or sb is None or len(sa.index.intersection(sb.index)) < 2:
        return None
    return (sa - sb).dropna().to_numpy()


def interaction(
    label: str, first: tuple, second: tuple, margin: float, *, dataset: str = "", unit: str = "points", scale: float = 100.0
) -> Effect:
    """``(a1 - b1) - (a2 - b2)`` for ``first = (a1, b1)``, ``second = (a2, b2)``: each pair's
    per-seed differences (paired, where the seeds allow), the two sets compared by Welch; without
    seeds, the two Welch differences combined (standard errors in quadrature, the fewer degrees
    of freedom)."""
    (a1, b1), (a2, b2) = first, second
    runs = runs_of(a1, b1, a2, b2)
    d1, d2 = _seed_differences(a1, b1), _seed_differences(a2, b2)
    if d1 is not None and d2 is not None:
        e = welch(d1, d2)
        return _from(
            label, Estimate(e.value, e.se, e.df, e.n, "Welch of per-seed differences"), margin, runs, dataset, unit, scale
        )
    e1, e2 = welch(a1, b1), welch(a2, b2)
    combined = Estimate(e1.value - e2.value, float(np.hypot(e1.se, e2.se)), min(e1.df, e2.df), min(e1.n, e2.n), "Welch")
    return _from(label, combined, margin, runs, dataset, unit, scale)


def level(label: str, values, margin: float, *, dataset: str = "", unit: str = "points", scale: float = 100.0) -> Effect:
    """A mean (e.g. a paired change) with its t CI, judged against +-margin."""
    return _from(label, mean_estimate(values), margin, runs_of(values), dataset, unit, scale)


@dataclass
class Pooled:
    effect: Effect
    points: int  # distinct points pooled
    q_p: float  # Cochran's Q test p-value
    i2: float  # share of the spread beyond what the CIs explain
    tau2: float = 0.0  # between-point variance (DerSimonian-Laird)
    shared: int = 0  # points left out because they read a run an earlier point counted

    @property
    def heterogeneous(self) -> bool:
        return bool(np.isfinite(self.q_p) and self.q_p < 1 - CONFIDENCE)

    def text(self) -> str:
        e = self.effect
        unit = f" {e.unit}" if e.unit else ""
        line = (
            f"{e.label} over {self.points} distinct points (random effects, DerSimonian-Laird; Hartung-Knapp-Sidik-Jonkman "
            f"95% CI): {e.number(e.diff)}{unit} (95% CI {e.number(e.low)} to {e.number(e.high)}) [{e.outcome}]"
        )
        if self.shared:
            line += f"; {self.shared} points left out of the pool (they reuse a run already counted)"
        if self.heterogeneous:
            line += f"; the points disagree beyond their CIs (Cochran's Q p = {self.q_p:.2g}, I^2 = {100 * self.i2:.0f}%)"
        return line


def distinct_points(effects: Sequence[Effect]) -> tuple[list[Effect], int]:
    """The effects with a CI and a standard error, in order, leaving out each one that reads a
    run an earlier kept one read (a shared control counts once); and how many were left out."""
    kept, seen, shared = [], set(), 0
    for e in effects:
        if not (e.has_ci and np.isfinite(e.se) and e.se > 0):
            continue
        if e.runs & seen:
            shared += 1
            continue
        kept.append(e)
        seen |= e.runs
    return kept, shared


def pooled(effects: Sequence[Effect], label: str = "pooled") -> Pooled | None:
    """The random-effects mean of the distinct points (:func:`distinct_points`) by
    ``statsmodels``' ``combine_effects`` (DerSimonian-Laird, HKSJ interval); None with fewer
    than two points.

    DerSimonian-Laird truncates the between-point variance at 0; statsmodels 0.15 returns it
    negative when the points agree better than their CIs expect (Q < k - 1). Then the
    random-effects weights are the fixed-effect ones, and so are the mean and its HKSJ
    interval, which statsmodels gives as the fixed-effect WLS row."""
    usable, shared = distinct_points(effects)
    if len(usable) < 2:
        return None
    d = np.array([e.diff for e in usable])
    var = np.array([e.se for e in usable]) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-point t intervals it cannot make (no n given) and a negative tau^2
        res = combine_effects(d, var, method_re="dl", use_t=True, alpha=1 - CONFIDENCE)
        intervals = res.conf_int(alpha=1 - CONFIDENCE, use_t=True)  # fixed, random, fixed WLS, random WLS (HKSJ)
    tau2 = max(0.0, float(res.tau2))
    mean = float(res.mean_effect_re if tau2 > 0 else res.mean_effect_fe)
    low, high = (float(v) for v in intervals[3 if tau2 > 0 else 2])
    k = len(usable)
    first = usable[0]
    se = (high - low) / 2 / float(_stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1))
    effect = Effect(label, mean, low, high, k, first.margin, "", first.unit, first.scale, se, "HKSJ")
    i2 = float(np.clip(res.i2, 0.0, 1.0)) if res.q > k - 1 else 0.0  # statsmodels leaves it unbounded below k - 1
    return Pooled(effect, k, float(res.test_homogeneity().pvalue), i2, tau2, shared)


def four_outcomes(effects: list[Effect]) -> str:
    """supported / not supported / depends / inconclusive (module docstring); no data without effects."""
    if not effects:
        return NO_DATA
    clear = {e.outcome for e in effects} - {STRADDLES, NO_CI}
    if ABOVE in clear and clear & {BELOW, WITHIN}:
        return DEPENDS
    if clear == {ABOVE}:
        return SUPPORTED
    if clear:
        return NOT_SUPPORTED
    return INCONCLUSIVE


OutcomeRule = Callable[[list[Effect]], str]  # a claim's effects -> its verdict


def keeps_outcome(effects: list[Effect]) -> str:
    """Non-inferiority, with the same handling of undecided points as :func:`four_outcomes`:
    a point keeps the solution when its CI lies above -margin (above or within)."""
    if not effects:
        return NO_DATA
    keeps = {ABOVE, WITHIN}
    clear = {e.outcome for e in effects} & (keeps | {BELOW})
    if clear & keeps and BELOW in clear:
        return DEPENDS
    if clear and clear <= keeps:
        return SUPPORTED
    if clear == {BELOW}:
        return NOT_SUPPORTED
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
