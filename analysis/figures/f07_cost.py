"""F7 (C4): measured training throughput and fraction of the matmul peak per
family, at matched shapes and matched FLOPs (compute study, cost probe)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.figures import FIGURES


def _timing_spread(row, column: str, value: float) -> tuple[float, float]:
    """How far below and above ``value`` (a rate: examples/s or fraction of peak) the slowest and
    fastest of the 5 timings put it; none for the FLOP count, which is not timed."""
    timed = column in ("probe.cost.examples_per_s", "probe.cost.fraction_of_peak")
    slow, fast, median = (row.get(k, np.nan) for k in ("probe.cost.step_s_max", "probe.cost.step_s_min", "probe.cost.step_s"))
    if not timed or not np.all(np.isfinite([slow, fast, median])):
        return (0.0, 0.0)
    return (value - value * median / slow, value * median / fast - value)


@FIGURES.register("F7_cost")
def make(results):
    runs = results.study("compute").drop_duplicates("run_key")
    if runs.empty or "probe.cost.examples_per_s" not in runs:
        return None
    runs = runs.dropna(subset=["probe.cost.examples_per_s"])
    fig, axes = style.subplots(3, width=4.3)
    panels = [
        ("probe.cost.examples_per_s", "training examples / s", "throughput"),
        ("probe.cost.fraction_of_peak", "fraction of matmul peak (%)", "achieved FLOP/s vs a large matmul"),
        ("probe.cost.step_flops", "FLOPs per training step (XLA)", "work per step"),
    ]
    for ax, (column, ylabel, title) in zip(axes, panels):
        labels, values, spread, colors, hatches = [], [], [], [], []
        for tag in ("matched_shape", "matched_flops"):
            sub = runs[runs["tag"] == tag]
            for family in style.families_in(sub["family"]):
                row = sub[sub["family"] == family].iloc[0]
                value = 100 * row[column] if "fraction" in column else row[column]
                labels.append(f"{family}\n({tag.replace('matched_', '= ')})")
                values.append(value)
                spread.append(_timing_spread(row, column, value))
                colors.append(style.color(family))
                hatches.append("" if tag == "matched_shape" else "//")
        bars = ax.bar(np.arange(len(values)), values, color=colors, yerr=np.array(spread).T, capsize=2)
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
        ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if "flops" in column and "fraction" not in column:
            ax.set_yscale("log")
    device = runs["probe.cost.device"].iloc[0] if "probe.cost.device" in runs else ""
    fig.suptitle(
        f"F7  Cost per family on {device or 'this device'} (batch {int(runs['batch_size'].iloc[0])}; hatched: matched FLOPs; bars: slowest to fastest of 5 timings)"
    )
    return fig
