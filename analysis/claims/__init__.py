"""The claims (C1-C9), one module each, and what they share.

Each module registers its claim with :func:`claim`: the statement as commonly
made, the figures that show it, the study that tests it and its rule (text built
from :data:`THRESHOLDS`), on a function that fills a :class:`Claim` from the
loaded :class:`~analysis.load.Results` (replicas at each run's chosen learning
rate that count, by :func:`live`: diverged replicas and unconverged runs left out,
the same filter the figures use):
the effects that decide it (one factor at a time, against the right control), the
effects shown beside them, and its verdict, always from :meth:`Claim.decide` or
:meth:`Claim.decide_ratios` by the rules of :mod:`analysis.verdicts`, overall and
per data set. :func:`evaluate_claims` runs them all, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from analysis.load import Results
from analysis.replicas import counted
from analysis.verdicts import (
    NO_DATA,
    Effect,
    OutcomeRule,
    Pooled,
    controlled,
    difference,
    four_outcomes,
    pooled,
    ratio_outcome,
)

THRESHOLDS = {
    "accuracy_points": 1.0,  # an accuracy difference counts when its whole 95% CI is beyond +-1 point
    "consistency_points": 5.0,  # a consistency difference counts beyond +-5 points
    "equivariance_exact": 1e-4,  # relative equivariance error below this is "exact"
    "throughput_ratio": 1.25,  # conv parallelises better when it trains 1.25x the examples/s at matched FLOPs
    "unconverged_val_gain_points": 0.5,  # flagged: mean val accuracy still rose by more than this over the last fifth
    "locality_index_margin": 0.02,  # a locality-index difference counts when its whole 95% CI is beyond +-0.02 (C9)
    # A difference of power-law exponents (error = a n^-b) counts beyond +-0.03: over the 64x range of the paper's
    # training sets it changes the error ratio by 64^0.03 = 1.13x (C8)
    "scaling_exponent_margin": 0.03,
}


def format_rule(template: str) -> str:
    """A rule's text with its ``{key}`` fields filled from the current :data:`THRESHOLDS`."""
    return template.format(**THRESHOLDS)


@dataclass
class Claim:
    """One claim judged on the results: its verdict, the effects and notes behind it, its rule."""

    id: str
    statement: str
    figures: list[str]
    study: str
    verdict: str = NO_DATA
    deciding: list[Effect] = field(default_factory=list)  # the effects the verdict is computed from
    shown: list[Effect] = field(default_factory=list)  # effects reported beside them
    notes: list[str] = field(default_factory=list)
    rule: str = ""  # how the verdict is reached, stated once it is judged on data
    pool: Pooled | None = None  # over every distinct point: a summary, never the decision
    pools: dict[str, Pooled] = field(default_factory=dict)  # per data set, with more than one
    per_dataset: dict[str, str] = field(default_factory=dict)
    rule_template: str = field(default="", repr=False)  # the rule, with {THRESHOLDS key} fields

    def _judged(self, judged: bool) -> None:
        """State the rule, its numbers from the current :data:`THRESHOLDS` (not when nothing was judged)."""
        if judged:
            self.rule = format_rule(self.rule_template)

    def decide(
        self,
        outcome_rule: OutcomeRule = four_outcomes,
        *,
        controls: Sequence[Effect] = (),
        uncontrolled_note: str = "",
        judged: bool = True,
    ) -> Claim:
        """Verdict overall and per data set from the deciding effects (effects without data dropped),
        and the rule stated unless ``judged`` is false (the claim's study has no runs to judge).

        With ``controls``, the overall verdict is :func:`~analysis.verdicts.controlled` by them
        (``uncontrolled_note`` added when they void it); the per-data-set verdicts are not."""
        self._judged(judged)
        self.deciding = [e for e in self.deciding if e.n > 0]
        self.shown = [e for e in self.shown if e.n > 0]
        self.pool = pooled(self.deciding)
        verdict = outcome_rule(self.deciding)
        self.verdict = controlled(verdict, controls)
        if self.verdict != verdict and uncontrolled_note:
            self.notes.append(uncontrolled_note)
        datasets = sorted({e.dataset for e in self.deciding if e.dataset})
        if len(datasets) > 1:
            by_dataset = {d: [e for e in self.deciding if e.dataset == d] for d in datasets}
            self.per_dataset = {d: outcome_rule(effects) for d, effects in by_dataset.items()}
            self.pools = {d: pool for d, effects in by_dataset.items() if (pool := pooled(effects, f"{d}: pooled"))}
        return self

    def decide_ratios(self, points: list[tuple[str, float]], threshold: float, *, judged: bool = True) -> Claim:
        """Verdict overall and per point from ``(point, ratio)`` pairs by
        :func:`~analysis.verdicts.ratio_outcome` (a point measured twice keeps its last ratio);
        the rule stated unless ``judged`` is false."""
        self._judged(judged)
        self.verdict = ratio_outcome([ratio for _, ratio in points], threshold)
        self.per_dataset = {point: ratio_outcome([ratio], threshold) for point, ratio in points}
        return self


Evaluate = Callable[[Claim, Results], Claim]  # fills and decides a new claim from the results


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: what it says, where it is shown and tested, its rule, how it is judged."""

    id: str
    statement: str
    figures: tuple[str, ...]
    study: str
    rule: str  # how the verdict is reached, with {THRESHOLDS key} fields for its numbers
    evaluate: Evaluate

    def rule_text(self) -> str:
        """The rule with its numbers from the current :data:`THRESHOLDS`."""
        return format_rule(self.rule)

    def __call__(self, results: Results) -> Claim:
        fresh = Claim(self.id, self.statement, list(self.figures), self.study, rule_template=self.rule)
        return self.evaluate(fresh, results)


CLAIMS: dict[str, ClaimSpec] = {}


def claim(claim_id: str, statement: str, *, figures: Sequence[str], study: str, rule: str) -> Callable[[Evaluate], Evaluate]:
    """Register the decorated ``evaluate(claim, results) -> claim`` as claim ``claim_id``."""

    def register(evaluate: Evaluate) -> Evaluate:
        if claim_id in CLAIMS:
            raise ValueError(f"claim {claim_id!r} registered twice")
        CLAIMS[claim_id] = ClaimSpec(claim_id, statement, tuple(figures), study, rule, evaluate)
        return evaluate

    return register


def live(frame: pd.DataFrame) -> pd.DataFrame:
    """The replicas that count, for claims and figures alike (:func:`analysis.replicas.counted`):
    finished, not diverged, of a run not flagged as unconverged."""
    return counted(frame, THRESHOLDS["unconverged_val_gain_points"])


def strides_text(value) -> str:
    """A strides value as the config wrote it: ``2`` (not ``2.0`` from a column with gaps), ``2x1``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def keyed(frame: pd.DataFrame, column: str = "test_accuracy") -> pd.Series:
    """``frame[column]`` indexed by ``(run_key, seed)``: the runs an effect reads (pooling counts
    each once) and the seeds that pair replicas."""
    return pd.Series(frame[column].to_numpy(), index=pd.MultiIndex.from_arrays([frame["run_key"], frame["seed"]]), name=column)


def select(frame: pd.DataFrame, column: str = "test_accuracy", **where: object) -> pd.Series:
    """``frame[column]`` on the rows where every ``key == value`` of ``where`` holds, :func:`keyed`."""
    mask = np.ones(len(frame), bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    return keyed(frame[mask], column)


def accuracy_difference(label: str, a: npt.ArrayLike, b: npt.ArrayLike, dataset: str, *, pair: bool = False) -> Effect:
    """``a - b`` in accuracy (fractions), against the accuracy margin; ``pair`` when the replicas
    of ``a`` and ``b`` are paired by seed (see :func:`~analysis.verdicts.difference`)."""
    return difference(label, a, b, THRESHOLDS["accuracy_points"] / 100, dataset=dataset, pair=pair)


def consistency_difference(label: str, a: npt.ArrayLike, b: npt.ArrayLike, dataset: str, *, pair: bool = False) -> Effect:
    """``a - b`` in points of consistency (already percentages), against the consistency margin."""
    margin = THRESHOLDS["consistency_points"]
    return difference(label, a, b, margin, dataset=dataset, unit="points of consistency", scale=1.0, pair=pair)


def matched_shapes(runs: pd.DataFrame, family_a: str, family_b: str, label: str) -> Iterator[tuple[Effect, pd.DataFrame]]:
    """``a - b`` test accuracy at every (data set, widths) point where both ran at the same shapes."""
    for dataset, widths in sorted({(d, w) for d, w in zip(runs["dataset"], runs["widths"])}):
        sub = runs[(runs["dataset"] == dataset) & (runs["widths"] == widths)]
        a, b = select(sub, family=family_a), select(sub, family=family_b)
        if len(a) and len(b):
            yield accuracy_difference(f"{dataset}, widths {widths}: {label}", a, b, dataset), sub


def evaluate_claims(results: Results) -> list[Claim]:
    """Every registered claim, judged on ``results``, in order of id (C2 before C10)."""
    return [CLAIMS[claim_id](results) for claim_id in sorted(CLAIMS, key=claim_order)]


def claim_order(claim_id: str) -> tuple[int, str]:
    """Sort key of a claim id: its number, so C10 follows C9."""
    digits = claim_id.lstrip("C")
    return (int(digits), "") if digits.isdigit() else (10**9, claim_id)


from analysis.claims import (  # noqa: E402,F401  (each module registers its claim)
    c1_weight_sharing,
    c2_locality,
    c3_translation,
    c4_compute,
    c5_pooling,
    c6_permuted_pixels,
    c7_embedding,
    c8_data_scaling,
    c9_learned_locality,
)

__all__ = ["CLAIMS", "THRESHOLDS", "Claim", "ClaimSpec", "claim", "evaluate_claims", "strides_text"]
