"""F1 (C1, C2): test accuracy against parameter count, per family (weight_sharing study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


@FIGURES.register("F1_accuracy_vs_params")
def make(results):
    return style.accuracy_vs(
        results,
        "weight_sharing",
        "num_params",
        "parameters (log scale)",
        lambda dataset: f"{dataset}: accuracy vs parameters",
        "F1  Weight sharing: accuracy against parameters (mean, 95% CI over seeds)",
    )
