"""How a run's learning rate is chosen, and successive halving over its rate replicas.

A run trains a grid of rates as replicas (every rate with every seed). The rate
it uses is the one with the best mean validation accuracy over its seeds, at
each replica's best validation epoch, a diverged replica counting as 0: a rate
that diverges some seeds is not the best (:func:`rate_scores`, :func:`best_rate`;
the sweep's grid extension and the analysis use the same two functions).

Successive halving (Jamieson & Talwalkar 2016, the inner loop of Hyperband, Li
et al. 2018) makes a wide grid cheap. With ``train.halve_rates_at = f`` the run
evaluates every rate up to epoch ``ceil(f * train.epochs)``; at the first
validation evaluation at or past it, it keeps the better half of the rates (by
:func:`rate_scores` on the best validation accuracy so far; ties: the smaller
rate) and trains only their replicas from there on, in a program recompiled once
for the smaller replica axis. The dropped replicas keep the state they had at
the decision: they are checkpointed, evaluated and summarised there (their
``summary.json`` entries say ``dropped_at_epoch``), so checkpoints, probes and
the summary keep the full replica axis. The decision is a pure function of the
validation records in ``metrics.jsonl``, so a resumed run re-makes it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import jax
import numpy as np


def replica_validation(replica: Mapping) -> float | None:
    """A replica's validation accuracy (at its best epoch where recorded; a diverged one: 0)."""
    if replica.get("diverged"):
        return 0.0
    for key in ("val_accuracy_at_best", "val_accuracy"):
        value = replica.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
    return None


def rate_scores(replicas: Iterable[Mapping]) -> dict[float, float]:
    """Mean validation accuracy per rate over its replicas (summary or analysis rows), a
    diverged replica counting as 0. Rates without validation numbers are left out, and so are
    replicas without a rate (kernel regression's)."""
    values: dict[float, list[float]] = {}
    for replica in replicas:
        val = replica_validation(replica)
        if val is not None and replica.get("learning_rate") is not None:
            values.setdefault(float(replica["learning_rate"]), []).append(val)
    return {rate: sum(v) / len(v) for rate, v in values.items()}


def best_rate(scores: Mapping[float, float]) -> float:
    """The rate with the best score (ties: the smaller rate)."""
    return min(scores, key=lambda rate: (-scores[rate], rate))


def chosen_replicas(replicas: Sequence[Mapping]) -> list[int] | None:
    """Indices of the replicas (a run's summary entries) at the rate :func:`best_rate` chooses
    among the run's own rates; None when the run has fewer than two scored rates (every
    replica counts). The analysis chooses among a run and its grid pieces with the same two
    functions, so its choice is this one or a piece's rate (a piece has one rate)."""
    scores = rate_scores(replicas)
    if len(scores) < 2:
        return None
    best = best_rate(scores)
    return [
        i
        for i, replica in enumerate(replicas)
        if replica.get("learning_rate") is not None and float(replica["learning_rate"]) == best
    ]


def halved_count(rates: int) -> int:
    """How many of ``rates`` rates halving keeps: ``ceil(rates / 2)``."""
    return math.ceil(rates / 2)


def better_half(scores: Mapping[float, float]) -> list[float]:
    """The :func:`halved_count` best-scoring rates (ties: the smaller rate), sorted."""
    ranked = sorted(scores, key=lambda rate: (-scores[rate], rate))
    return sorted(ranked[: halved_count(len(ranked))])


def halving_epoch(fraction: float, epochs: int) -> int | None:
    """The epoch (1-based) from which the first validation evaluation halves the rates; None: off."""
    return max(1, math.ceil(fraction * epochs)) if fraction > 0 else None


def _take(tree, index: np.ndarray):
    return jax.tree.map(lambda a: a[index], tree)


@dataclass
class RateHalving:
    """A run's halving decision: which replicas (original indices) still train, and the
    dropped replicas' state at the decision (host arrays, full replica axis)."""

    learning_rates: Sequence[float]  # per replica
    epoch: int | None  # evaluations at or after this epoch decide (None: off)
    kept: np.ndarray | None = None  # replicas still training, once decided
    decided_at: int | None = None  # the evaluation epoch that decided
    frozen: dict | None = None  # the full train state at the decision, on the host

    def due(self, epoch: int) -> bool:
        """Whether the evaluation after ``epoch`` (1-based) decides."""
        return self.epoch is not None and self.kept is None and epoch >= self.epoch and len(set(self.learning_rates)) > 1

    def choose(self, best_val: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """The replicas of the better half of the rates by best validation accuracy so far."""
        rows = [
            {"learning_rate": rate, "val_accuracy_at_best": float(v), "diverged": not bool(a)}
            for rate, v, a in zip(self.learning_rates, best_val, alive)
        ]
        keep = set(better_half(rate_scores(rows)))
        return np.array([r for r, rate in enumerate(self.learning_rates) if float(rate) in keep])

    def settle(self, epoch: int, best_val: np.ndarray, alive: np.ndarray) -> bool:
        """After the evaluation of ``epoch`` (1-based), halve if due; True when it did. Called
        live and when a resumed run replays its validation records, so both decide alike."""
        if not self.due(epoch):
            return False
        self.kept, self.decided_at = self.choose(best_val, alive), epoch
        return True

    def split(self, state):
        """The full train ``state`` at (or restored after) the decision: the dropped replicas'
        part kept on the host, the kept replicas' part returned."""
        self.frozen = jax.device_get(state)
        return _take(state, self.kept)

    def full(self, state):
        """The full replica axis: the kept replicas' ``state`` put back among the frozen ones."""
        if self.kept is None:
            return state

        def put(frozen, part):
            whole = np.array(frozen, copy=True)
            whole[self.kept] = np.asarray(jax.device_get(part))
            return whole

        return jax.tree.map(put, self.frozen, state)
