"""F14 (C8): test error against training-set size per family, log-log (data_scaling
study): measured means with 95% CIs over seeds, and each family's power law
``a n^-b`` fitted per seed (dashed: the mean fit, band: its 95% CI over seeds);
one panel per data set and augmentation arm."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.claims import live
from analysis.claims.c8_data_scaling import STUDY, arm_label, with_arms
from analysis.figures import FIGURES
from analysis.scaling import curve_band, seed_fits
from analysis.stats import aggregate


def _family(ax, rows, name: str) -> str:
    """One family's points, fit and band on ``ax``; returns its exponent text for the title."""
    color = style.color(name)
    agg = aggregate(rows, ["train_examples"], "test_error")
    low = np.clip(agg["mean"] - agg["low"].fillna(agg["mean"]), 0, None)
    high = np.clip(agg["high"].fillna(agg["mean"]) - agg["mean"], 0, None)
    ax.errorbar(agg["train_examples"], agg["mean"], yerr=[low, high], fmt="o", color=color, capsize=2, label=style.label(name))
    fits = seed_fits(rows)
    if fits.empty:
        return ""
    grid = np.geomspace(rows["train_examples"].min(), rows["train_examples"].max(), 50)
    band = curve_band(fits, grid)
    ax.plot(band["n"], band["mean"], color=color, linestyle="--", linewidth=1.2)
    ax.fill_between(band["n"], band["low"], band["high"], color=color, alpha=0.12, linewidth=0)
    return f"{name} b={fits['b'].mean():.2f}"


@FIGURES.register("F14_data_scaling")
def make(results):
    runs = live(results.study(STUDY))
    if runs.empty:
        return None
    runs = with_arms(runs)
    runs = runs.assign(augment=runs["augment_shift"].fillna(0))
    panels = sorted({(d, a) for d, a in zip(runs["dataset"], runs["augment"])})
    fig, axes = style.subplots(len(panels), width=4.8, height=3.8, ncols=min(len(panels), 2))
    for ax, (dataset, augment) in zip(axes, panels):
        sub = runs[(runs["dataset"] == dataset) & (runs["augment"] == augment)]
        exponents = [_family(ax, sub[sub["arm"] == name], name) for name in style.families_in(sub["arm"])]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training examples (log)")
        ax.set_ylabel("test error (log)")
        ax.set_title(arm_label(dataset, augment) + "\n" + ", ".join(e for e in exponents if e), fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle("F14  Data scaling: test error = a n^-b (points: mean, 95% CI over seeds; dashed: fit, band: its 95% CI)")
    return fig
