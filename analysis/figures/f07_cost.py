"""F7 (C4): measured training throughput and fraction of the matmul peak per
family, at matched shapes and matched FLOPs (compute study, cost probe)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.figures import FIGURES


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
        labels, values, colors, hatches = [], [], [], []
        for tag in ("matched_shape", "matched_flops"):
            sub = runs[runs["tag"] == tag]
            for family in style.families_in(sub["family"]):
                value = sub[sub["family"] == family][column].iloc[0]
                labels.append(f"{family}\n({tag.replace('matched_', '= ')})")
                values.append(100 * value if "fraction" in column else value)
                colors.append(style.color(family))
                hatches.append("" if tag == "matched_shape" else "//")
        bars = ax.bar(np.arange(len(values)), values, color=colors)
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
        ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if "flops" in column and "fraction" not in column:
            ax.set_yscale("log")
    device = runs["probe.cost.device"].iloc[0] if "probe.cost.device" in runs else ""
    fig.suptitle(
        f"F7  Cost per family on {device or 'this device'} (batch {int(runs['batch_size'].iloc[0])}; hatched: matched FLOPs)"
    )
    return fig
