"""F1 (C1, C2): test accuracy against parameter count, per family (weight_sharing study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES

STUDY = "weight_sharing"


@FIGURES.register("F1_accuracy_vs_params")
def make(results):
    runs = results.study(STUDY).dropna(subset=["test_accuracy"])
    if runs.empty:
        return None
    fig, panels = style.per_dataset(runs)
    for ax, dataset, sub in panels:
        style.accuracy_by_family(ax, sub, "num_params")
        ax.set_xscale("log")
        ax.set_xlabel("parameters (log scale)")
        ax.set_title(f"{dataset}: accuracy vs parameters")
    panels[0][0].legend()
    fig.suptitle("F1  Weight sharing: accuracy against parameters (mean, 95% CI over seeds)")
    return fig
