"""F2 (C1): test accuracy against training-set size (sample_efficiency study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES

STUDY = "sample_efficiency"


@FIGURES.register("F2_sample_efficiency")
def make(results):
    runs = results.study(STUDY).dropna(subset=["test_accuracy"])
    if runs.empty:
        return None
    fig, panels = style.per_dataset(runs)
    for ax, dataset, sub in panels:
        style.accuracy_by_family(ax, sub, "train_examples")
        ax.set_xscale("log")
        ax.set_xlabel("training examples (log scale; same optimizer steps at every size)")
        ax.set_title(dataset)
    panels[0][0].legend()
    fig.suptitle("F2  Sample efficiency (mean, 95% CI over seeds)")
    return fig
