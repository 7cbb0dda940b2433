"""F2 (C1): test accuracy against training-set size (sample_efficiency study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES
from analysis.stats import aggregate

STUDY = "sample_efficiency"


@FIGURES.register("F2_sample_efficiency")
def make(results):
    runs = results.study(STUDY).dropna(subset=["test_accuracy"])
    if runs.empty:
        return None
    datasets = sorted(runs["dataset"].unique())
    fig, axes = style.subplots(len(datasets))
    for ax, dataset in zip(axes, datasets):
        sub = runs[runs["dataset"] == dataset]
        for family in style.families_in(sub["family"]):
            agg = aggregate(sub[sub["family"] == family], ["train_examples"], "test_accuracy")
            style.errorbars(
                ax,
                agg["train_examples"],
                agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")}),
                family,
                label=style.label(family),
            )
        ax.set_xscale("log")
        ax.set_xlabel("training examples (log scale; same optimizer steps at every size)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(dataset)
    axes[0].legend()
    fig.suptitle("F2  Sample efficiency (mean, 95% CI over seeds)")
    return fig
