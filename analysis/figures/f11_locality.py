"""F11 (C2): the locality index of a dense first layer through training
(tracked by the locality study's dense runs), against uniform weights."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


@FIGURES.register("F11_locality_index")
def make(results):
    curves = results.curves
    if curves.empty or "locality_index" not in curves:
        return None
    tracked = curves[(curves["split"] == "track") & curves["locality_index"].notna()]
    if tracked.empty:
        return None
    fig, panels = style.per_dataset(tracked, width=5.0)
    for ax, dataset, part in panels:
        table = part.pivot_table(index="step", columns=["run_key", "replica"], values="locality_index")
        ax.plot(table.index, table.mean(axis=1), color=style.color("dense"), marker="o", markersize=3, label="dense first layer")
        ax.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=style.color("dense"), alpha=0.15, linewidth=0)
        if "locality_shuffled" in part and part["locality_shuffled"].notna().any():
            shuffled = part.pivot_table(index="step", columns=["run_key", "replica"], values="locality_shuffled")
            ax.plot(shuffled.index, shuffled.mean(axis=1), color="black", linestyle=":", label="shuffled baseline")
        if "locality_uniform" in part and part["locality_uniform"].notna().any():
            ax.axhline(part["locality_uniform"].mean(), color="grey", linestyle="--", label="uniform weights")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("weight mass within radius of centroid")
        ax.set_ylim(0, 1)
        ax.set_title(dataset)
        ax.legend(fontsize=8)
    fig.suptitle("F11  Locality index of a dense first layer through training, against its shuffled baseline (band: min-max)")
    return fig
