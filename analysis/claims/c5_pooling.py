"""C5: pooling lowers dimension and adds robustness, judged on accuracy under shifts
(mean over every nonzero circular shift) of each pooling kind - no pooling (pooling
study); unshifted accuracy, consistency, pooling vs plain strided downsampling and
the features entering the head are shown beside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, consistency_difference, live
from analysis.load import Results, probe_value

STATEMENT = "Pooling lowers dimension and adds robustness."
FIGURES = ["F4_shift_robustness"]
RULE = (
    "robustness is accuracy under shifts (mean over every nonzero circular shift), not agreement: four outcomes "
    "over each pooling kind - no pooling, against the accuracy margin; pooling vs plain strided downsampling shown"
)

POOLING_KINDS = {
    "max": dict(pooling="max", head="flatten"),
    "avg": dict(pooling="avg", head="flatten"),
    "blur": dict(pooling="blur", head="flatten"),
    "stride": dict(pooling="stride", head="flatten"),
    "global_avg": dict(pooling="none", head="global_avg"),
    "global_max": dict(pooling="none", head="global_max"),
}
CORRECT = "probe.consistency.consistency_correct_circular"


def _shifted_accuracy(results: Results, runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``runs`` with ``shifted_accuracy``: accuracy averaged over every nonzero
    circular shift of the shift probe (per replica; NaN without the probe)."""
    runs = runs.copy()
    runs["shifted_accuracy"] = np.nan
    for key, idx in runs.groupby("run_key").groups.items():
        curve = probe_value(results, key, "shift", "accuracy_circular")
        if curve is not None and curve.ndim == 2 and curve.shape[0] == len(idx) and curve.shape[1] > 1:
            runs.loc[idx, "shifted_accuracy"] = curve[:, 1:].mean(1)
    return runs


def _against_no_pooling(c: Claim, dataset: str, name: str, groups: dict[str, pd.DataFrame], none: pd.DataFrame) -> None:
    """Pooling kind ``name`` - no pooling: accuracy under shifts (deciding); unshifted accuracy,
    consistency among correct copies and, for pooling layers, against strided downsampling (shown)."""
    group = groups[name]
    c.deciding.append(
        accuracy_difference(
            f"{dataset}: accuracy under shifts, {name} - no pooling", group["shifted_accuracy"], none["shifted_accuracy"], dataset
        )
    )
    c.shown.append(
        accuracy_difference(
            f"{dataset}: unshifted accuracy, {name} - no pooling", group["test_accuracy"], none["test_accuracy"], dataset
        )
    )
    if CORRECT in group:
        label = f"{dataset}: consistency among correctly classified copies, {name} - no pooling"
        c.shown.append(consistency_difference(label, group[CORRECT], none[CORRECT], dataset))
    if name in ("max", "avg", "blur") and not groups["stride"].empty:
        label = f"{dataset}: accuracy under shifts, {name} pooling - plain strided downsampling"
        c.shown.append(accuracy_difference(label, group["shifted_accuracy"], groups["stride"]["shifted_accuracy"], dataset))


def _head_sizes(dataset: str, groups: dict[str, pd.DataFrame], none: pd.DataFrame) -> list[str]:
    """A note with the features entering the head, per pooling kind (none without the numbers)."""
    sizes = [
        f"{name} {int(g['head_inputs'].iloc[0])}"
        for name, g in groups.items()
        if len(g) and np.isfinite(g["head_inputs"].iloc[0])
    ]
    if sizes and len(none) and np.isfinite(none["head_inputs"].iloc[0]):
        return [f"{dataset}: features entering the head: no pooling {int(none['head_inputs'].iloc[0])}, " + ", ".join(sizes)]
    return []


@claim("C5", STATEMENT, figures=FIGURES, study="pooling", rule=RULE)
def pooling(c: Claim, results: Results) -> Claim:
    runs = live(results.study("pooling"))
    if runs.empty:
        return c.decide(judged=False)
    runs = _shifted_accuracy(results, runs)
    for dataset in sorted(runs["dataset"].unique()):
        sub = runs[runs["dataset"] == dataset]
        groups = {name: sub[(sub["pooling"] == w["pooling"]) & (sub["head"] == w["head"])] for name, w in POOLING_KINDS.items()}
        none = sub[(sub["pooling"] == "none") & (sub["head"] == "flatten")]
        for name, group in groups.items():
            if not (group.empty or none.empty or name == "stride"):
                _against_no_pooling(c, dataset, name, groups, none)
        c.notes += _head_sizes(dataset, groups, none)
    return c.decide()
