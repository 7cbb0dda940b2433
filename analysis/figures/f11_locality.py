"""F11 (C2): the locality index of a dense first layer through training (tracked by
the locality study's dense runs): left, the index minus its shuffled baseline (what C2
reads, on an axis that shows an effect of a few hundredths); right, the index itself
against the baseline and uniform weights."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


def _by_step(part, column: str):
    """Per step: mean, min and max over replicas of ``column``."""
    table = part.pivot_table(index="step", columns=["run_key", "replica"], values=column)
    return table.index, table.mean(axis=1), table.min(axis=1), table.max(axis=1)


@FIGURES.register("F11_locality_index")
def make(results):
    curves = results.curves
    if curves.empty or "locality_index" not in curves:
        return None
    tracked = curves[(curves["split"] == "track") & curves["locality_index"].notna()].copy()
    if tracked.empty:
        return None
    has_baseline = "locality_shuffled" in tracked and tracked["locality_shuffled"].notna().any()
    if has_baseline:
        tracked["above_baseline"] = tracked["locality_index"] - tracked["locality_shuffled"]
    datasets = sorted(tracked["dataset"].unique())
    fig, axes = style.subplots(2 * len(datasets), width=4.6, ncols=2)
    dense = style.color("dense")
    for i, dataset in enumerate(datasets):
        part = tracked[tracked["dataset"] == dataset]
        left, right = axes[2 * i], axes[2 * i + 1]
        if has_baseline:
            steps, mean, low, high = _by_step(part, "above_baseline")
            left.plot(steps, mean, color=dense, marker="o", markersize=3, label="index - shuffled baseline")
            left.fill_between(steps, low, high, color=dense, alpha=0.15, linewidth=0)
            left.axhline(0, color="black", linestyle=":", linewidth=1)
            left.set_ylabel("index - shuffled baseline")
            left.legend(fontsize=8)
        left.set_xlabel("optimizer step")
        left.set_title(f"{dataset}: above the baseline (band: min-max)")
        steps, mean, low, high = _by_step(part, "locality_index")
        right.plot(steps, mean, color=dense, marker="o", markersize=3, label="dense first layer")
        right.fill_between(steps, low, high, color=dense, alpha=0.15, linewidth=0)
        if has_baseline:
            right.plot(*_by_step(part, "locality_shuffled")[:2], color="black", linestyle=":", label="shuffled baseline")
        if "locality_uniform" in part and part["locality_uniform"].notna().any():
            right.axhline(part["locality_uniform"].mean(), color="grey", linestyle="--", label="uniform weights")
        right.set_xlabel("optimizer step")
        right.set_ylabel("weight mass within radius of centroid")
        right.set_title(f"{dataset}: the index")
        right.legend(fontsize=8)
    fig.suptitle("F11  Locality index of a dense first layer through training, against its shuffled baseline")
    return fig
