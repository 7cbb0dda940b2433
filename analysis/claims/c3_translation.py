"""C3: convolutional layers give translation invariance, judged against invariance itself:
each conv net (stride x padding x head) has its consistency under random shifts held
against 100%, and the components that make a net invariant are compared one factor at
a time (translation study). Conv - dense, consistency among correctly classified
copies, what shift augmentation buys dense, equivariance errors and the position study
are shown beside it."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from analysis.claims import (
    THRESHOLDS,
    Claim,
    accuracy_difference,
    claim,
    consistency_difference,
    keyed,
    live,
    select,
    strides_text,
)
from analysis.load import Results
from analysis.verdicts import Effect, keeps_outcome, level, runs_of

STATEMENT = "Convolutional layers give translation invariance."
FIGURES = ["F4_shift_robustness", "F6_equivariance_error", "F5_position_generalisation"]
RULE = (
    "each conv net (stride x padding x head, trained without shifts) against invariance: it is invariant when the CI of "
    "its consistency under random circular shifts - 100% lies within +-{consistency_points:g} points (exactly 100% on every "
    "seed counts); supported when every conv net is invariant, not supported when none is, depends when only some are "
    "(the components shown, one factor at a time, say which)"
)

CONSISTENCY = "probe.consistency.consistency_circular"
CORRECT = "probe.consistency.consistency_correct_circular"
FACTORS = ("strides", "padding", "head")
UNIT = "points of consistency"


def _setting(values: tuple) -> str:
    strides, padding, head = values
    return f"stride {strides}, {str(padding).lower()} padding, {head} head"


def against_invariance(label: str, values: pd.Series, dataset: str) -> Effect:
    """Consistency - 100 over seeds, against the consistency margin: exactly 100 on every seed
    (at least two) is exact invariance, a zero-width CI that counts."""
    margin = THRESHOLDS["consistency_points"]
    finite = values[np.isfinite(values.to_numpy(float))]
    if len(finite) >= 2 and bool((finite == 100.0).all()):
        return Effect(label, 0.0, 0.0, 0.0, len(finite), margin, dataset, UNIT, 1.0, 0.0, "exact", runs_of(values), exact=True)
    return level(label, values - 100.0, margin, dataset=dataset, unit=UNIT, scale=1.0)


def _invariance(c: Claim, dataset: str, conv: pd.DataFrame) -> None:
    """Per conv setting: consistency - 100% (deciding) and among correctly classified copies (shown);
    then every pair of settings that differ in one factor (shown)."""
    settings = {key: rows for key, rows in conv.groupby([conv["strides"].map(strides_text), "padding", "head"])}
    for key, rows in settings.items():
        where = f"{dataset}, conv, {_setting(key)}"
        c.deciding.append(against_invariance(f"{where}: consistency - 100% (invariant)", keyed(rows, CONSISTENCY), dataset))
        if CORRECT in rows and rows[CORRECT].notna().any():
            c.shown.append(against_invariance(f"{where}: consistency among correct copies - 100%", keyed(rows, CORRECT), dataset))
    for (ka, a), (kb, b) in combinations(sorted(settings.items()), 2):
        differs = [f for f, x, y in zip(FACTORS, ka, kb) if x != y]
        if len(differs) == 1:
            same = _setting(ka).split(", ")
            fixed = ", ".join(part for part, f in zip(same, FACTORS) if f != differs[0])
            label = f"{dataset}, conv, {fixed}: consistency, {differs[0]} {ka[FACTORS.index(differs[0])]} - {kb[FACTORS.index(differs[0])]}"
            c.shown.append(consistency_difference(label, keyed(a, CONSISTENCY), keyed(b, CONSISTENCY), dataset))


def _against_dense(c: Claim, dataset: str, runs: pd.DataFrame) -> None:
    """Conv - dense (and - locally connected) at every setting both ran; what shift augmentation
    buys dense against what the architecture buys conv."""
    for key, sub in runs.groupby([runs["strides"].map(strides_text), "padding", "head"]):
        plain = sub[sub["augment_shift"] == 0]
        for other in ("dense", "locally_connected"):
            a, b = select(plain, CONSISTENCY, family="conv"), select(plain, CONSISTENCY, family=other)
            if len(a) and len(b):
                c.shown.append(consistency_difference(f"{dataset}, {_setting(key)}: consistency, conv - {other}", a, b, dataset))
        augmented = sub[(sub["augment_shift"] > 0) & (sub["family"] == "dense")]
        dense = select(plain, CONSISTENCY, family="dense")
        if len(augmented) and len(dense):
            where = f"{dataset}, {_setting(key)}"
            aug = keyed(augmented, CONSISTENCY)
            c.shown.append(
                consistency_difference(
                    f"{where}: consistency, dense shift-augmented - dense (what augmentation buys)", aug, dense, dataset
                )
            )
            conv = select(plain, CONSISTENCY, family="conv")
            if len(conv):
                c.shown.append(consistency_difference(f"{where}: consistency, conv - dense shift-augmented", conv, aug, dataset))


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
    for (family, strides), sub in circular.groupby(["family", circular["strides"].map(strides_text)], sort=False):
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


def _position(results: Results) -> list[Effect]:
    """Position study: off-region - in-region accuracy per family and head (the same replicas: paired)."""
    pos = live(results.study("position"))
    if pos.empty or "probe.position.accuracy_in_region" not in pos:
        return []
    return [
        accuracy_difference(
            f"position study, {family} with {head} head: off-region - in-region accuracy",
            keyed(group, "probe.position.accuracy_off_region"),
            keyed(group, "probe.position.accuracy_in_region"),
            str(group["dataset"].iloc[0]),
            pair=True,  # the same replicas, read in and off the region
        )
        for (family, head), group in pos.groupby(["family", "head"])
    ]


@claim("C3", STATEMENT, figures=FIGURES, study="translation", rule=RULE)
def translation(c: Claim, results: Results) -> Claim:
    runs = live(results.study("translation"))
    if not runs.empty and CONSISTENCY in runs:
        for dataset in sorted(runs["dataset"].unique()):
            sub = runs[runs["dataset"] == dataset]
            _invariance(c, dataset, sub[(sub["family"] == "conv") & (sub["augment_shift"] == 0)])
            _against_dense(c, dataset, sub)
        c.notes += _equivariance_notes(results, runs[runs["augment_shift"] == 0])
    c.shown += _position(results)
    return c.decide(keeps_outcome)
