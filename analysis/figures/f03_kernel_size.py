"""F3 (C2): test accuracy against kernel size up to the full input, for conv and
locally connected; full-kernel conv and dense as reference lines (locality study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES
from analysis.stats import mean_ci

STUDY = "locality"


@FIGURES.register("F3_kernel_size")
def make(results):
    drawn = style.study_panels(results, STUDY)
    if drawn is None:
        return None
    fig, panels = drawn
    for ax, dataset, sub in panels:
        sweeping = sub[sub["family"].isin(["conv", "locally_connected"])].copy()
        sweeping["kernel"] = sweeping["kernel_sizes"].map(lambda k: int(str(k).split("x")[0]))
        style.accuracy_by_family(ax, sweeping, "kernel")
        for family in ("full_kernel_conv", "dense"):
            values = sub[sub["family"] == family]["test_accuracy"]
            if len(values):
                mean, low, high, _ = mean_ci(values)
                ax.axhline(100 * mean, color=style.color(family), linestyle="--", label=style.label(family))
                ax.axhspan(100 * low, 100 * high, color=style.color(family), alpha=0.12)
        ax.set_xlabel("kernel size of the first layer (positions)")
        ax.set_title(dataset)
    panels[0][0].legend()
    fig.suptitle("F3  Locality: accuracy against kernel size (dashed: no locality)")
    return fig
