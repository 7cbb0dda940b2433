"""C5: pooling lowers dimension and adds robustness, judged on robustness relative to
clean accuracy (accuracy under shifts minus unshifted accuracy, per replica) of each
pooling layer against plain strided downsampling: the same downsampling by 2 without
pooling, so that only the pooling differs (pooling study). Global heads, comparisons with
no pooling, unshifted accuracy, consistency and the features entering the head are
shown beside it: a head that buys robustness by giving up clean accuracy does not decide."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, consistency_difference, keyed, live
from analysis.load import Results, probe_rows

STATEMENT = "Pooling lowers dimension and adds robustness."
FIGURES = ["F4_shift_robustness"]
RULE = (
    "robustness is accuracy under shifts relative to clean accuracy (mean over every nonzero circular shift minus the "
    "unshifted accuracy, per replica): four outcomes over each pooling layer (max, avg, blur) - plain strided "
    "downsampling by the same factor, against the accuracy margin; global heads and no pooling shown, not deciding"
)

POOLING_KINDS = {
    "max": dict(pooling="max", head="flatten"),
    "avg": dict(pooling="avg", head="flatten"),
    "blur": dict(pooling="blur", head="flatten"),
    "stride": dict(pooling="stride", head="flatten"),
    "global_avg": dict(pooling="none", head="global_avg"),
    "global_max": dict(pooling="none", head="global_max"),
}
LAYERS = ("max", "avg", "blur")
CORRECT = "probe.consistency.consistency_correct_circular"


def _shifted_accuracy(results: Results, runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``runs`` with ``shifted_accuracy`` (mean over every nonzero circular shift of the
    shift probe) and ``shift_drop`` (that minus the probe's unshifted accuracy), per replica;
    NaN without the probe."""
    runs = runs.copy()
    runs["shifted_accuracy"] = runs["shift_drop"] = np.nan
    for _, rows in runs.groupby("run_key"):
        curve = probe_rows(results, rows, "shift", "accuracy_circular")  # by replica: a dropped one drops its row
        if curve is not None and curve.ndim == 2 and curve.shape[1] > 1:
            runs.loc[rows.index, "shifted_accuracy"] = curve[:, 1:].mean(1)
            runs.loc[rows.index, "shift_drop"] = curve[:, 1:].mean(1) - curve[:, 0]
    return runs


def _robustness(c: Claim, dataset: str, name: str, group: pd.DataFrame, control: pd.DataFrame, label: str, deciding: bool):
    """``name`` - ``label``: accuracy under shifts relative to clean accuracy."""
    effect = accuracy_difference(
        f"{dataset}: accuracy under shifts minus clean accuracy, {name} - {label}",
        keyed(group, "shift_drop"),
        keyed(control, "shift_drop"),
        dataset,
    )
    (c.deciding if deciding else c.shown).append(effect)


def _shown(c: Claim, dataset: str, name: str, group: pd.DataFrame, none: pd.DataFrame) -> None:
    """Beside: against no pooling, raw accuracy under shifts, unshifted accuracy, consistency among correct copies."""
    if none.empty:
        return
    _robustness(c, dataset, name, group, none, "no pooling", deciding=False)
    for column, what in (("shifted_accuracy", "accuracy under shifts"), ("test_accuracy", "unshifted accuracy")):
        c.shown.append(
            accuracy_difference(f"{dataset}: {what}, {name} - no pooling", keyed(group, column), keyed(none, column), dataset)
        )
    if CORRECT in group:
        label = f"{dataset}: consistency among correctly classified copies, {name} - no pooling"
        c.shown.append(consistency_difference(label, keyed(group, CORRECT), keyed(none, CORRECT), dataset))


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
        stride = groups["stride"]
        for name, group in groups.items():
            if group.empty or name == "stride":
                continue
            if not stride.empty:
                _robustness(c, dataset, name, group, stride, "plain strided downsampling", deciding=name in LAYERS)
            _shown(c, dataset, name, group, none)
        c.notes += _head_sizes(dataset, groups, none)
    return c.decide()
