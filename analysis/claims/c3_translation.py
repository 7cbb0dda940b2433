"""C3: convolutional layers give translation invariance, judged on conv - dense
consistency under random shifts, one factor (head, padding) at a time (translation
study); equivariance errors and the position study are shown beside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import THRESHOLDS, Claim, accuracy_difference, claim, consistency_difference, live, select
from analysis.load import Results
from analysis.stats import mean_ci
from analysis.verdicts import Effect

STATEMENT = "Convolutional layers give translation invariance."
FIGURES = ["F4_shift_robustness", "F6_equivariance_error", "F5_position_generalisation"]
RULE = (
    "four outcomes over conv - dense consistency under random shifts at each head x padding setting "
    "(one factor at a time), against the consistency margin"
)

CONSISTENCY = "probe.consistency.consistency_circular"


def _consistency(sub: pd.DataFrame, label: str, dataset: str, first: dict, second: dict) -> Effect:
    """Consistency of the rows matching ``first`` - of those matching ``second``."""
    return consistency_difference(label, select(sub, CONSISTENCY, **first), select(sub, CONSISTENCY, **second), dataset)


def _largest(results: Results, keys: np.ndarray, key: str) -> float | None:
    values = [
        np.asarray(results.probes[k]["equivariance"].get(key, []), float)
        for k in keys
        if "equivariance" in results.probes.get(k, {})
    ]
    values = [v[np.isfinite(v)] for v in values if v.size and np.isfinite(v).any()]
    return float(np.max(np.concatenate([v.ravel() for v in values]))) if values else None


def _equivariance_notes(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per family with circular padding: the largest per-layer equivariance error under
    shifts by the layer's total stride, and under 1-pixel input shifts (below the stride)."""
    notes = []
    circular = runs[runs["padding"] == "CIRCULAR"]
    for (family, strides), sub in circular.groupby(["family", circular["strides"].astype(str)], sort=False):
        keys = sub["run_key"].unique()
        by_stride, one_pixel = _largest(results, keys, "error"), _largest(results, keys, "error_one_pixel")
        if by_stride is not None:
            exact = " (exact)" if by_stride < THRESHOLDS["equivariance_exact"] else ""
            line = (
                f"{family}, strides {strides}, circular padding: largest per-layer equivariance error, shifts by the total "
                f"stride {by_stride:.2g}{exact}"
            )
            if one_pixel is not None:
                line += f"; 1-pixel input shifts {one_pixel:.2g}"
            notes.append(line)
    return notes


def _conv_factors(c: Claim, conv: pd.DataFrame) -> None:
    """Conv's consistency per setting (notes), then one factor at a time: each pooling head
    against flatten, and circular against zero padding (shown)."""
    for (dataset, head, padding), sub in conv.groupby(["dataset", "head", "padding"]):
        mean, low, high, n = mean_ci(sub[CONSISTENCY])
        c.notes.append(
            f"{dataset}, conv, {head} head, {padding} padding: consistency {mean:.1f}% (95% CI {low:.1f} to {high:.1f}; n={n}); 100% is invariant"
        )
    for (dataset, padding), sub in conv.groupby(["dataset", "padding"]):  # one factor: the head
        for head in sorted(set(sub["head"]) - {"flatten"}):
            label = f"{dataset}, conv, {padding} padding: consistency, {head} - flatten head"
            c.shown.append(_consistency(sub, label, dataset, {"head": head}, {"head": "flatten"}))
    for (dataset, head), sub in conv.groupby(["dataset", "head"]):  # one factor: the padding
        if {"CIRCULAR", "SAME"} <= set(sub["padding"]):
            label = f"{dataset}, conv, {head} head: consistency, circular - zero padding"
            c.shown.append(_consistency(sub, label, dataset, {"padding": "CIRCULAR"}, {"padding": "SAME"}))


def _translation(c: Claim, results: Results, runs: pd.DataFrame) -> None:
    """Conv - dense consistency per data set x head x padding (deciding), conv - locally
    connected (shown), conv's factors and the equivariance notes."""
    plain = runs[runs["augment_shift"] == 0]
    strided = plain[plain["strides"].astype(str) != "1"]  # the stride-1 conv nets have no dense partner
    for (dataset, head, padding), sub in strided.groupby(["dataset", "head", "padding"]):
        where = f"{dataset}, {head} head, {padding} padding"
        for other, target in (("dense", c.deciding), ("locally_connected", c.shown)):
            label = f"{where}: consistency, conv - {other}"
            target.append(_consistency(sub, label, dataset, {"family": "conv"}, {"family": other}))
    _conv_factors(c, strided[strided["family"] == "conv"])
    c.notes += _equivariance_notes(results, plain)


def _position(results: Results) -> list[Effect]:
    """Position study: off-region - in-region accuracy per family and head."""
    pos = live(results.study("position"))
    if pos.empty or "probe.position.accuracy_in_region" not in pos:
        return []
    return [
        accuracy_difference(
            f"position study, {family} with {head} head: off-region - in-region accuracy",
            group["probe.position.accuracy_off_region"],
            group["probe.position.accuracy_in_region"],
            str(group["dataset"].iloc[0]),
        )
        for (family, head), group in pos.groupby(["family", "head"])
    ]


@claim("C3", STATEMENT, figures=FIGURES, study="translation", rule=RULE)
def translation(c: Claim, results: Results) -> Claim:
    runs = live(results.study("translation"))
    if not runs.empty and CONSISTENCY in runs:
        _translation(c, results, runs)
    c.shown += _position(results)
    return c.decide()
