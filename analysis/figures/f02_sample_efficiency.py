"""F2 (C1): test accuracy against training-set size (sample_efficiency study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


@FIGURES.register("F2_sample_efficiency")
def make(results):
    return style.accuracy_vs(
        results,
        "sample_efficiency",
        "train_examples",
        "training examples (log scale; same optimizer steps at every size)",
        lambda dataset: dataset,
        "F2  Sample efficiency (mean, 95% CI over seeds)",
    )
