"""F4 (C3, C5): accuracy against shift magnitude, and consistency, per family x
stride x head x padding (translation study) and per pooling (pooling study); the
replicas that count for the claims (:func:`analysis.claims.live`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import style
from analysis.claims import live, strides_text
from analysis.figures import FIGURES
from analysis.load import probe_rows
from analysis.stats import mean_ci


def _curve(results, rows: pd.DataFrame, mode: str, relative: bool = False):
    """Mean and 95% CI per shift of the counted replicas ``rows`` of one run (None without the
    probe); ``relative``: each replica's accuracy minus its unshifted accuracy (what C5 reads)."""
    curve = probe_rows(results, rows, "shift", f"accuracy_{mode}")
    if curve is None or curve.ndim != 2 or not len(curve):
        return None, None
    if relative:
        curve = curve - curve[:, :1]
    stats = np.array([mean_ci(col) for col in 100 * curve.T])
    return np.arange(curve.shape[1]), {"mean": stats[:, 0], "low": stats[:, 1], "high": stats[:, 2]}


def _group_label(row) -> str:
    return f"{row['family']}, stride {strides_text(row['strides'])}, {row['head']}, {str(row['padding']).lower()}" + (
        ", shift-aug" if row["augment_shift"] else ""
    )


LINESTYLES = ["-", "--", ":", "-."]


def _translation(results, axes, translation: pd.DataFrame) -> None:
    """Shift curves (circular, zero) of every unaugmented run, and every run's consistency."""
    plain = translation[translation["augment_shift"] == 0]
    settings = sorted({(strides_text(s), h, p) for s, h, p in zip(plain["strides"], plain["head"], plain["padding"])})
    for ax, mode in zip(axes[:2], ("circular", "zero")):
        for _, rows in plain.groupby("run_key", sort=True):
            row = rows.iloc[0]
            x, agg = _curve(results, rows, mode)
            if x is None:
                continue
            ls = LINESTYLES[settings.index((strides_text(row["strides"]), row["head"], row["padding"])) % len(LINESTYLES)]
            marker = "s" if strides_text(row["strides"]) == "1" else "o"  # stride 1 apart from stride 2 at a glance
            style.errorbars(ax, x, agg, row["family"], linestyle=ls, marker=marker, label=_group_label(row), markersize=3)
        ax.set_xlabel(f"{mode} shift (positions)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"translation study, {mode} shifts")
    ax = axes[2]
    labels, means, errs, colors = [], [], [], []
    runs = translation.drop_duplicates("run_key").sort_values(["family", "strides", "head", "padding", "augment_shift"])
    for _, row in runs.iterrows():
        values = translation[translation["run_key"] == row["run_key"]].get("probe.consistency.consistency_circular")
        if values is None or values.dropna().empty:
            continue
        mean, low, high, n = mean_ci(values)
        labels.append(f"{_group_label(row)} (n={n})")
        means.append(mean)
        errs.append(high - mean)
        colors.append(style.color(row["family"]))
    ax.barh(range(len(means)), means, xerr=errs, color=colors)
    ax.axvline(100, color="black", linestyle=":", linewidth=1, label="invariant (100%)")
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xlabel("consistency under random circular shifts (%)")
    ax.set_title("consistency (Zhang 2019); 100% is invariant")


def _pooling(results, ax, part: pd.DataFrame, dataset: str) -> None:
    """Per pooling kind on one data set: accuracy under shifts relative to unshifted accuracy."""
    kinds = 0
    for _, rows in part.groupby("run_key", sort=True):
        row = rows.iloc[0]
        x, agg = _curve(results, rows, "circular", relative=True)
        if x is None:
            continue
        name = row["pooling"] if row["head"] == "flatten" else row["head"]
        if name == "stride":  # the control C5 decides against: black and dashed, apart from the kinds
            style.errorbars(ax, x, agg, color="black", linestyle="--", label="plain strided (control)", markersize=3)
            continue
        style.errorbars(ax, x, agg, color=style.EXTRA_COLORS[kinds % len(style.EXTRA_COLORS)], label=name, markersize=3)
        kinds += 1
    ax.set_xlabel("circular shift (positions)")
    ax.set_ylabel("accuracy - unshifted accuracy (points)")
    ax.set_title(f"pooling, {dataset}: robustness")
    ax.legend(fontsize=7)


@FIGURES.register("F4_shift_robustness")
def make(results):
    translation = live(results.study("translation"))
    pooling = live(results.study("pooling"))
    if translation.empty and pooling.empty:
        return None
    datasets = sorted(pooling["dataset"].unique()) if not pooling.empty else []
    fig, axes = style.subplots(4 + max(len(datasets), 1), ncols=2, width=5.4, height=3.6)
    legend = axes.pop()  # the shift curves' legend gets a panel of its own, off the curves
    legend.axis("off")
    if not translation.empty:
        _translation(results, axes, translation)
        handles, labels = axes[0].get_legend_handles_labels()
        legend.legend(handles, labels, loc="center", fontsize=7, title="translation study, trained without shifts")
    for ax, dataset in zip(axes[3:], datasets):  # every data set: C5 decides on each
        _pooling(results, ax, pooling[pooling["dataset"] == dataset], dataset)
    fig.suptitle("F4  Shift robustness (mean, 95% CI over seeds)")
    return fig
