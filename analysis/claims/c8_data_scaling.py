"""C8: conv's advantage over dense shrinks as training data grows, judged in scale-free
terms on the data_scaling study.

Test error against training-set size is fitted as a power law ``a n^-b`` per family
and seed (:mod:`analysis.scaling`). Deciding, per data set and augmentation arm: the
exponent difference ``b_dense - b_conv``, which is exactly minus the slope of
log(error_dense / error_conv) against log n, with its t CI over seeds; beyond
``+scaling_exponent_margin`` dense's error falls faster and conv's advantage shrinks.
Shown beside it: the same for locally connected against conv (what weight sharing
buys), each family's exponent, the gap in accuracy points at the smallest and largest
sizes (which does not decide: near 100% a gap shrinks by arithmetic alone), and where
the fitted curves would cross, in factors of n beyond the measured range.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import THRESHOLDS, Claim, accuracy_difference, claim, keyed, live
from analysis.load import Results
from analysis.scaling import crossing_text, ratio_slopes, seed_fits
from analysis.stats import mean_estimate
from analysis.verdicts import Effect, level

STUDY = "data_scaling"
STATEMENT = "Conv's advantage over dense shrinks as training data grows."
FIGURES = ["F14_data_scaling"]
RULE = (
    "four outcomes over the exponent difference b_dense - b_conv of test error = a n^-b (minus the slope of "
    "log(error_dense / error_conv) against log n, fitted per seed; t CI over seeds), per data set and augmentation arm, "
    "against +-{scaling_exponent_margin:g}: supported when dense's error falls faster beyond the margin; locally "
    "connected against conv, the exponents and the gap in accuracy points at the smallest and largest sizes are "
    "shown, not deciding"
)
ARMS = ("conv", "locally_connected", "dense", "mlp")


def with_arms(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``arm`` (the lattice family, or ``mlp`` for the reference MLP) and ``test_error``."""
    family = runs["family"] if "family" in runs else pd.Series(np.nan, index=runs.index)
    arm = family.where(family.notna() & (runs["model"] == "lattice"), runs["model"].str.replace("mnist1d_", "", regex=False))
    return runs.assign(arm=arm, test_error=1 - runs["test_accuracy"])


def arm_label(dataset: str, augment) -> str:
    shift = int(augment) if pd.notna(augment) else 0
    return f"{dataset}, " + (f"shifts up to {shift}" if shift else "no augmentation")


def exponent_difference(label: str, steep: pd.DataFrame, other: pd.DataFrame, dataset: str) -> Effect:
    """``b_steep - b_other`` per seed (minus the slope of log(error_steep / error_other)), its t CI
    over seeds, against the exponent margin; it reads both families' runs."""
    slopes = ratio_slopes(steep, other).slopes
    effect = level(label, -slopes, THRESHOLDS["scaling_exponent_margin"], dataset=dataset, unit="", scale=1.0)
    effect.runs = frozenset(steep["run_key"]) | frozenset(other["run_key"])
    return effect


def exponent_notes(where: str, arms: dict[str, pd.DataFrame]) -> list[str]:
    """Each family's exponent: mean and t CI over the per-seed fits, its R^2 and sizes."""
    parts = []
    for name, rows in arms.items():
        fits = seed_fits(rows)
        if fits.empty:
            continue
        b = mean_estimate(fits["b"].to_numpy())
        ci = f" (95% CI {b.low:.3f} to {b.high:.3f})" if b.n > 1 else ""
        r2 = fits["r2"].mean()  # NaN with two sizes: a line through two points fits exactly
        fit = f", R^2 {r2:.3f}" if np.isfinite(r2) else ""
        parts.append(f"{name} b = {b.value:.3f}{ci}{fit}, {int(fits['sizes'].max())} sizes")
    return [f"{where}: test error = a n^-b, per seed: " + "; ".join(parts)] if parts else []


def gap_effects(where: str, conv: pd.DataFrame, dense: pd.DataFrame, dataset: str) -> list[Effect]:
    """conv - dense test accuracy at the smallest and the largest size both measured (paired by seed)."""
    common = sorted(set(conv["train_examples"]) & set(dense["train_examples"]))
    effects = []
    for n in dict.fromkeys([common[0], common[-1]] if common else []):
        a, b = keyed(conv[conv["train_examples"] == n]), keyed(dense[dense["train_examples"] == n])
        label = f"{where}: conv - dense test accuracy at n = {int(n)} (the gap in points; not deciding)"
        effects.append(accuracy_difference(label, a, b, dataset, pair=True))
    return effects


def judge_arm(c: Claim, where: str, sub: pd.DataFrame, dataset: str) -> None:
    """One data set and augmentation arm: its deciding effect, the effects and notes beside it."""
    arms = {name: sub[sub["arm"] == name] for name in ARMS if (sub["arm"] == name).any()}
    conv, dense, local = arms.get("conv"), arms.get("dense"), arms.get("locally_connected")
    if conv is not None and dense is not None:
        c.deciding.append(exponent_difference(f"{where}: exponent b_dense - b_conv", dense, conv, dataset))
        c.shown += gap_effects(where, conv, dense, dataset)
        c.notes.append(f"{where}: " + crossing_text(ratio_slopes(dense, conv), "dense", "conv"))
    if conv is not None and local is not None:
        c.shown.append(exponent_difference(f"{where}: exponent b_locally_connected - b_conv", local, conv, dataset))
        c.notes.append(f"{where}: " + crossing_text(ratio_slopes(local, conv), "locally connected", "conv"))
    c.notes += exponent_notes(where, arms)


@claim("C8", STATEMENT, figures=FIGURES, study=STUDY, rule=RULE)
def data_scaling(c: Claim, results: Results) -> Claim:
    runs = live(results.study(STUDY))
    if not runs.empty:
        runs = with_arms(runs)
        for (dataset, augment), sub in runs.groupby(["dataset", runs["augment_shift"].fillna(0)], sort=True):
            judge_arm(c, arm_label(dataset, augment), sub, dataset)
    return c.decide(judged=bool(len(runs)))
