"""F6 (C3): per-layer equivariance error ||f(shift x) - shift f(x)|| / ||f(x)|| per
family, under circular shifts by the layer's total stride (top row: exact for a
circular conv by construction) and under 1-pixel input shifts (bottom row: what a
stride above 1 breaks), for each stride x head x padding (translation study)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.claims import live, strides_text
from analysis.figures import FIGURES
from analysis.load import probe_rows
from analysis.stats import mean_ci

ERRORS = {"error": "shifts by the total stride", "error_one_pixel": "1-pixel input shifts"}


def _bars(ax, results, sub, key: str) -> None:
    """One bar per family and layer: mean and 95% CI of ``key`` over the counted replicas
    (a note on the panel where the runs did not record it)."""
    families = style.families_in(sub["family"])
    width = 0.8 / max(len(families), 1)
    for i, family in enumerate(families):
        parts = [probe_rows(results, rows, "equivariance", key) for _, rows in sub[sub["family"] == family].groupby("run_key")]
        parts = [p for p in parts if p is not None and p.ndim == 2]
        if not parts:
            ax.text(0.5, 0.6 - 0.1 * i, f"{family}: not recorded", transform=ax.transAxes, ha="center", fontsize=8)
            continue
        errors = np.concatenate(parts)
        stats = np.array([mean_ci(col) for col in errors.T])
        layers = np.arange(errors.shape[1])
        x = layers + (i - (len(families) - 1) / 2) * width
        ax.bar(x, stats[:, 0], width, yerr=stats[:, 2] - stats[:, 0], color=style.color(family), label=style.label(family))
        for xi, value in zip(x, stats[:, 0]):
            if value < 1e-3:  # exactly equivariant: mark the invisible bar
                ax.text(xi, 0.01, f"{value:.0g}", ha="center", va="bottom", fontsize=8, color=style.color(family))
        ax.set_xticks(layers, [f"layer {j + 1}" for j in layers])


@FIGURES.register("F6_equivariance_error")
def make(results):
    runs = live(results.study("translation"))
    keys = [k for k in runs["run_key"].unique() if "error" in results.probes.get(k, {}).get("equivariance", {})]
    runs = runs[runs["run_key"].isin(keys) & (runs["augment_shift"] == 0)]
    if runs.empty:
        return None
    groups = sorted({(strides_text(s), h, p) for s, h, p in zip(runs["strides"], runs["head"], runs["padding"])})
    fig, axes = style.subplots(2 * len(groups), width=4.4, ncols=len(groups))
    for col, (strides, head, padding) in enumerate(groups):
        sub = runs[(runs["strides"].map(strides_text) == strides) & (runs["head"] == head) & (runs["padding"] == padding)]
        for row, (key, what) in enumerate(ERRORS.items()):
            ax = axes[row * len(groups) + col]
            _bars(ax, results, sub, key)
            ax.set_ylabel("relative equivariance error")
            ax.set_title(f"stride {strides}, {str(padding).lower()} padding, {head} head:\n{what}", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle("F6  Per-layer equivariance error under circular shifts (0 = exactly equivariant)")
    return fig
