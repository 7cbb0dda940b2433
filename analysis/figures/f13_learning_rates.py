"""F13 (fair comparisons): validation accuracy against learning rate, one line per
grid (a run and its extension pieces), coloured by family; the rate each run chose is marked. A chosen rate
at the end of a line is at the edge of its grid (flagged in the report)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


@FIGURES.register("F13_learning_rates")
def make(results):
    grid = results.grid
    if grid is None or grid.empty or "val_accuracy" not in grid:
        return None
    grid = grid[~grid["diverged"].astype(bool)].dropna(subset=["val_accuracy", "learning_rate"])
    tuned = grid[grid["lr_grid"].str.contains(",")]
    if tuned.empty:
        return None
    fig, panels = style.per_dataset(tuned, width=4.8)
    for ax, dataset, sub in panels:
        seen = set()
        for _, run in sub.groupby("grid_key"):  # a run and the pieces that extend its grid: one line
            family = run["family"].iloc[0]
            curve = run.groupby("learning_rate")["val_accuracy"].mean()
            ax.plot(
                curve.index,
                100 * curve.to_numpy(),
                color=style.color(family),
                alpha=0.45,
                linewidth=1,
                label=None if family in seen else style.label(family),
            )
            seen.add(family)
            chosen = run[run["lr_chosen"]]
            if not chosen.empty:
                ax.plot(
                    chosen["learning_rate"].iloc[0],
                    100 * chosen["val_accuracy"].mean(),
                    "o",
                    color=style.color(family),
                    markersize=4,
                )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(dataset)
        ax.legend(fontsize=7)
    fig.suptitle("F13  Validation accuracy vs learning rate (one line per run; dot: the rate chosen)")
    return fig
