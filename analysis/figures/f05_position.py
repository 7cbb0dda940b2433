"""F5 (C3): accuracy over the object's position on the canvas, trained in one
corner region (position study). The dashed box is the training region."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from analysis import style
from analysis.claims import live
from analysis.figures import FIGURES
from analysis.load import probe_rows


def _name(row) -> str:
    return f"{row['family']}, {row['head']} head"


@FIGURES.register("F5_position_generalisation")
def make(results):
    counted = live(results.study("position"))
    keys = [k for k in counted["run_key"].unique() if "accuracy_map" in results.probes.get(k, {}).get("position", {})]
    counted = counted[counted["run_key"].isin(keys)]
    runs = counted.drop_duplicates("run_key")
    if runs.empty:
        return None
    fig, axes = style.subplots(len(runs), width=4.0, height=3.6)
    for ax, (_, row) in zip(axes, runs.iterrows()):
        replicas = counted[counted["run_key"] == row["run_key"]]
        acc = 100 * probe_rows(results, replicas, "position", "accuracy_map").mean(0)
        axes_pos = results.probes[row["run_key"]]["position"]["axes"]
        region = results.probes[row["run_key"]]["position"]["region"]
        if acc.ndim == 2:
            image = ax.imshow(acc, vmin=0, vmax=100, cmap="viridis", origin="upper")
            ax.set_xticks(range(len(axes_pos[1])), axes_pos[1], fontsize=7)
            ax.set_yticks(range(len(axes_pos[0])), axes_pos[0], fontsize=7)
            cells = np.searchsorted(axes_pos[0], region, side="right")
            ax.add_patch(Rectangle((-0.5, -0.5), cells, cells, fill=False, edgecolor="white", linestyle="--", linewidth=1.5))
            ax.set_xlabel("object corner, x (pixels)")
            ax.set_ylabel("object corner, y (pixels)")
            ax.grid(False)
            fig.colorbar(image, ax=ax, label="test accuracy (%)", shrink=0.8)
        else:
            ax.plot(axes_pos[0], acc, marker="o", color=style.color(row["family"]))
            ax.axvspan(0, region, color="grey", alpha=0.2, label="training region")
            ax.set_xlabel("object start position")
            ax.set_ylabel("test accuracy (%)")
            ax.set_ylim(0, 100)
        inside = 100 * replicas["probe.position.accuracy_in_region"].mean()
        outside = 100 * replicas["probe.position.accuracy_off_region"].mean()
        ax.set_title(f"{_name(row)}\nin region {inside:.1f}%, off region {outside:.1f}%", fontsize=9)
    fig.suptitle(
        f"F5  Position generalisation ({runs['dataset'].iloc[0]}, canvas {int(runs['canvas_size'].iloc[0])}; mean over seeds)"
    )
    return fig
