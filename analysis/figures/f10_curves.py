"""F10: training loss and test accuracy against step, per family (the
weight_sharing study's widest MNIST-1D runs, else any study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


@FIGURES.register("F10_training_curves")
def make(results):
    curves = results.curves
    if curves.empty:
        return None
    runs = results.runs.drop_duplicates("run_key")
    chosen = runs[runs["study"] == "weight_sharing"] if (runs["study"] == "weight_sharing").any() else runs
    preferred = "mnist1d" if (chosen["dataset"] == "mnist1d").any() else chosen["dataset"].iloc[0]
    chosen = chosen[chosen["dataset"] == preferred]
    widest = chosen["num_params"].groupby(chosen["family"]).transform("max") == chosen["num_params"]
    keys = set(chosen[widest]["run_key"])
    curves = curves[curves["run_key"].isin(keys)]
    if curves.empty:
        return None
    fig, axes = style.subplots(2, width=5.0)
    for ax, split, metric, ylabel in (
        (axes[0], "train", "loss", "training loss"),
        (axes[1], "test", "accuracy", "test accuracy (%)"),
    ):
        part = curves[curves["split"] == split]
        for family in style.families_in(part["family"].dropna()):
            fam = part[part["family"] == family]
            table = fam.pivot_table(index="step", columns="replica", values=metric, aggfunc="mean")
            scale = 100 if metric == "accuracy" else 1
            mean = scale * table.mean(axis=1)
            ax.plot(table.index, mean, color=style.color(family), label=style.label(family))
            ax.fill_between(
                table.index,
                scale * table.min(axis=1),
                scale * table.max(axis=1),
                color=style.color(family),
                alpha=0.15,
                linewidth=0,
            )
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(ylabel)
        if metric == "loss":
            ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    dataset = chosen["dataset"].iloc[0]
    fig.suptitle(f"F10  Training curves on {dataset} (mean over seeds; band: min-max)")
    return fig
