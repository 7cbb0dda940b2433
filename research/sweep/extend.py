"""Learning-rate grids that bracket the optimum.

A run trains its grid of rates (``optimizer.learning_rates``) as replicas; the
rate it uses is the one with the best mean validation accuracy over its seeds.
When that rate is at an edge of the grid, the optimum may lie past it. The
sweep then trains the next rate past that edge as a follow-up run, a *piece*
of the same grid: the same config and seeds (so the same initialisations and
batch orders) with only that rate. It repeats until the best rate is interior
or the next rate would pass the optimizer's absolute limit (:data:`LIMITS`).
``sweep.json`` records each piece's root run (``extends``); the analysis joins
a root and its pieces into one grid.

Rates step along the half-decade ladder 1, 3, 10, 30, ... (x 10^k), the
spacing of the studies' grids. A diverged replica counts as validation
accuracy 0 for its rate: a rate that diverges some seeds is not the best
(:func:`research.train.rate_choice.rate_scores`, the one rule of choosing a rate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from research.train.rate_choice import best_rate

LIMITS = {"adam": (1e-5, 1.0), "adamw": (1e-5, 1.0), "sgd": (1e-4, 10.0)}
"""Per optimizer, the smallest and largest rate a grid is extended to (past them a rate is
too small to train in any study's budget, or diverges at any width)."""
DEFAULT_LIMITS = (1e-5, 10.0)
LADDER = tuple(sorted(m * 10.0**k for k in range(-8, 3) for m in (1, 3)))


def limits(optimizer: str) -> tuple[float, float]:
    return LIMITS.get(optimizer, DEFAULT_LIMITS)


def rate_beyond(rate: float, direction: int, optimizer: str) -> float | None:
    """The next ladder rate past ``rate`` (``direction`` +1: larger, -1: smaller), or None
    when it would pass the optimizer's limit."""
    low, high = limits(optimizer)
    if direction > 0:
        nxt = min((r for r in LADDER if r > rate * 1.5), default=math.inf)
        return nxt if nxt <= high * (1 + 1e-9) else None
    nxt = max((r for r in LADDER if r < rate / 1.5), default=0.0)
    return nxt if nxt >= low * (1 - 1e-9) else None


def edge(rates: Sequence[float], scores: Mapping[float, float]) -> int:
    """-1 / +1 when the best-scoring rate is the grid's smallest / largest (of several), else 0."""
    grid = sorted(set(rates))
    if len(grid) < 2 or not scores:
        return 0
    best = best_rate(scores)
    return -1 if best == grid[0] else (1 if best == grid[-1] else 0)


def next_piece(rates: Sequence[float], scores: Mapping[float, float], optimizer: str) -> float | None:
    """The rate to train next for a grid whose best rate is at an edge, or None (interior, or at the limit)."""
    side = edge(rates, scores)
    if side == 0:
        return None
    return rate_beyond(min(rates) if side < 0 else max(rates), side, optimizer)


def piece_id(root: str, rate: float) -> str:
    """The run id of ``root``'s piece at ``rate``."""
    return f"{root}+lr={rate:g}"
