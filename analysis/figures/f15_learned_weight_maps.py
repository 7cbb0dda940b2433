"""F15 (C9): learned first-layer weight maps (learned_locality study). Per data set,
one row per family and optimizer (dense and locally connected nets trained by SGD,
Adam and beta-LASSO at the ``l1`` chosen on validation; conv by SGD, its receptive
field), one column per unit: the weight magnitude from every input position into
a first-layer unit at the central output position (the ``sparsity`` probe), each
map scaled to its own maximum; first replica of the chosen learning rate."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from analysis.claims.c9_learned_locality import NONZERO, STUDY, chosen_l1
from analysis.figures import FIGURES
from analysis.load import probe_value

ARMS = (
    ("dense", "sgd"),
    ("dense", "adam"),
    ("dense", "beta_lasso"),
    ("locally_connected", "sgd"),
    ("locally_connected", "beta_lasso"),
    ("conv", "sgd"),
)


def rows(results) -> list[tuple[str, np.ndarray]]:
    """``(label, maps (units, *spatial))`` per data set and arm that has weight maps."""
    runs = results.study(STUDY)
    out = []
    for dataset in sorted(runs["dataset"].unique()) if not runs.empty else []:
        for family, optimizer in ARMS:
            arm = runs[(runs["dataset"] == dataset) & (runs["family"] == family) & (runs["optimizer"] == optimizer)]
            arm = chosen_l1(arm) if optimizer == "beta_lasso" else arm
            if arm.empty:
                continue
            maps = probe_value(results, arm["run_key"].iloc[0], "sparsity", "weight_maps")
            if maps is None or maps.ndim < 3:
                continue
            l1 = f", l1={arm['l1'].iloc[0]:g}" if optimizer == "beta_lasso" else ""
            nonzero = f", {100 * arm[NONZERO].mean():.0f}% non-zero" if NONZERO in arm and arm[NONZERO].notna().any() else ""
            out.append((f"{dataset}: {family}, {optimizer}{l1}{nonzero}", maps[0]))
    return out


@FIGURES.register("F15_learned_weight_maps")
def make(results):
    found = rows(results)
    if not found:
        return None
    units = max(len(maps) for _, maps in found)
    one_d = found[0][1].ndim == 2
    size = (3.0, 0.55) if one_d else (1.6, 1.6)
    fig, axes = plt.subplots(
        len(found), units, figsize=(size[0] * units, size[1] * len(found) + 0.8), squeeze=False, layout="constrained"
    )
    for row, (label, maps) in zip(axes, found):
        for u, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if u >= len(maps):
                ax.set_visible(False)
                continue
            image = maps[u][None] if maps[u].ndim == 1 else maps[u]
            ax.imshow(
                image / max(float(image.max()), 1e-12), cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest"
            )
            ax.grid(False)
        row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(
        "F15  First-layer weight magnitude from each input position into units at the central output position (each map scaled to its maximum)",
        fontsize=10,
    )
    return fig
