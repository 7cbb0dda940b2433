"""Which replicas count: the one filter every claim and every figure reads through.

A replica counts when its run finished (it has a test accuracy) and it did not diverge
(a diverged replica's numbers mean nothing: the report counts it, no mean includes it).
A run flagged as not converged (:func:`unconverged`: validation accuracy still rising
at the end by more than its noise, and it did not stop early) never decides a verdict
and is left out of the figures too, so that a figure shows the points its claim decides
on. Per-replica probe arrays are aligned with the counted rows by
:func:`analysis.load.probe_rows`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def unconverged(runs: pd.DataFrame, gain_points: float) -> pd.Series:
    """Per run key: True when the mean validation accuracy of its chosen replicas still rose,
    over the last fifth of training, by more than both ``gain_points`` and two standard errors
    of one validation accuracy of its size (sqrt(p (1 - p) / n)): a rise the split's noise does
    not explain. A run that stopped early (every replica past its patience) is converged."""
    by_run = runs.groupby("run_key")
    gain = by_run["val_accuracy_gain_last_fifth"].mean()
    p, n = by_run["val_accuracy"].mean(), by_run["val_examples"].first()
    noise = 2 * np.sqrt(p * (1 - p) / n)
    margin = np.maximum(gain_points / 100, noise.fillna(0.0))
    return (gain > margin) & ~by_run["stopped_early"].first().astype(bool)


def counted(frame: pd.DataFrame, gain_points: float) -> pd.DataFrame:
    """The rows of ``frame`` that count: finished, not diverged, of a converged run."""
    frame = frame.dropna(subset=["test_accuracy"])
    frame = frame[~frame["diverged"].astype(bool)]
    if frame.empty:
        return frame
    flagged = unconverged(frame, gain_points)
    return frame[~frame["run_key"].map(flagged).fillna(False).astype(bool).to_numpy()]
