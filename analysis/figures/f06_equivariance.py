"""F6 (C3): per-layer equivariance error ||f(shift x) - shift f(x)|| / ||f(x)||
under circular shifts of one output position, per family (translation study)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.figures import FIGURES
from analysis.load import probe_value, runs_with_probe
from analysis.stats import mean_ci


@FIGURES.register("F6_equivariance_error")
def make(results):
    runs = runs_with_probe(results, "translation", "equivariance", "error")
    runs = runs[runs["augment_shift"] == 0] if len(runs) else runs
    if runs.empty:
        return None
    groups = sorted({(h, p) for h, p in zip(runs["head"], runs["padding"])})
    fig, axes = style.subplots(len(groups), width=4.4)
    for ax, (head, padding) in zip(axes, groups):
        sub = runs[(runs["head"] == head) & (runs["padding"] == padding)]
        families = style.families_in(sub["family"])
        width = 0.8 / max(len(families), 1)
        for i, family in enumerate(families):
            errors = np.concatenate(
                [probe_value(results, k, "equivariance", "error") for k in sub[sub["family"] == family]["run_key"]]
            )
            stats = np.array([mean_ci(col) for col in errors.T])
            layers = np.arange(errors.shape[1])
            x = layers + (i - (len(families) - 1) / 2) * width
            ax.bar(x, stats[:, 0], width, yerr=stats[:, 2] - stats[:, 0], color=style.color(family), label=style.label(family))
            for xi, value in zip(x, stats[:, 0]):
                if value < 1e-3:  # exactly equivariant: mark the invisible bar
                    ax.text(xi, 0.01, f"{value:.0g}", ha="center", va="bottom", fontsize=8, color=style.color(family))
        ax.set_xticks(layers, [f"layer {i + 1}" for i in layers])
        ax.set_ylabel("relative equivariance error")
        ax.set_title(f"{str(padding).lower()} padding, {head} head")
    axes[0].legend(fontsize=7)
    fig.suptitle("F6  Per-layer equivariance error under circular shifts (0 = exactly equivariant)")
    return fig
