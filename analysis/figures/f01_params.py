"""F1 (C1, C2): test accuracy against parameter count, per family (weight_sharing study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES
from analysis.stats import aggregate

STUDY = "weight_sharing"


@FIGURES.register("F1_accuracy_vs_params")
def make(results):
    runs = results.study(STUDY).dropna(subset=["test_accuracy"])
    if runs.empty:
        return None
    datasets = sorted(runs["dataset"].unique())
    fig, axes = style.subplots(len(datasets))
    for ax, dataset in zip(axes, datasets):
        sub = runs[runs["dataset"] == dataset]
        for family in style.families_in(sub["family"]):
            agg = aggregate(sub[sub["family"] == family], ["num_params"], "test_accuracy")
            style.errorbars(
                ax,
                agg["num_params"],
                agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")}),
                family,
                label=style.label(family),
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset}: accuracy vs parameters")
    axes[0].legend()
    fig.suptitle("F1  Weight sharing: accuracy against parameters (mean, 95% CI over seeds)")
    return fig
