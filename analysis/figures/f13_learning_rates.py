"""F13 (fair comparisons): validation accuracy against learning rate, one panel per data
set and family, one thin line per distinct run (runs that repeat another's config in a
second study are drawn once), each relative to its own best rate (0 at the rate it
chose, marked): a line still rising at the end of the grid chose an edge (flagged in the
report). Diverged replicas count as 0 validation accuracy, as when the rate is chosen."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES

SAME_RUN = [
    "dataset",
    "family",
    "model",
    "widths",
    "kernel_sizes",
    "strides",
    "padding",
    "pooling",
    "head",
    "n_per_class",
    "permute_pixels",
    "canvas_size",
    "augment_shift",
    "embed_at_epoch",
    "epochs",
    "lr_grid",
]


def distinct_runs(grid):
    """``grid`` with one run key per distinct config (the first, by run key)."""
    columns = [c for c in SAME_RUN if c in grid]
    firsts = grid.drop_duplicates("run_key").sort_values("run_key").astype({c: str for c in columns})
    keep = firsts.drop_duplicates(columns)["run_key"]
    return grid[grid["run_key"].isin(set(keep))]


@FIGURES.register("F13_learning_rates")
def make(results):
    grid = results.grid
    if grid is None or grid.empty or "val_accuracy" not in grid:
        return None
    grid = grid.dropna(subset=["learning_rate"]).copy()
    grid["val_counted"] = grid["val_accuracy"].where(~grid["diverged"].astype(bool), 0.0)
    tuned = distinct_runs(grid[grid["lr_grid"].str.contains(",")].dropna(subset=["val_counted"]))
    if tuned.empty:
        return None
    panels = sorted({(d, f) for d, f in zip(tuned["dataset"], tuned["family"])})
    fig, axes = style.subplots(len(panels), width=3.6, height=2.8, ncols=min(4, len(panels)))
    for ax, (dataset, family) in zip(axes, panels):
        sub = tuned[(tuned["dataset"] == dataset) & (tuned["family"] == family)]
        for _, run in sub.groupby("run_key"):
            curve = run.groupby("learning_rate")["val_counted"].mean()
            best = curve.max()
            ax.plot(curve.index, 100 * (curve.to_numpy() - best), color=style.color(family), alpha=0.5, linewidth=1)
            chosen = run[run["lr_chosen"]]
            if not chosen.empty:
                ax.plot(chosen["learning_rate"].iloc[0], 0, "o", color=style.color(family), markersize=3)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("val accuracy - run's best (points)")
        ax.set_title(f"{dataset}, {family} ({sub['run_key'].nunique()} runs)", fontsize=9)
    fig.suptitle("F13  Validation accuracy vs learning rate, relative to each run's best (dot: the rate chosen)")
    return fig
