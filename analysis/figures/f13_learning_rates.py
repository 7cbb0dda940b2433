"""F13 (fair comparisons): validation accuracy against learning rate, one panel per data
set and family, one thin line per distinct grid (a run and the pieces that extend its
grid past an edge; a run that several studies share drawn once), each relative to its own best rate (0 at the rate it
chose, marked): a line still rising at the end of the grid chose an edge (flagged in the
report). Diverged replicas count as 0 validation accuracy, as when the rate is chosen."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES


def distinct_grids(grid):
    """``grid`` with each distinct grid once: a run and the pieces that extend its grid
    (``grid_key``), and a run several studies share (one ``home``) drawn for the first."""
    roots = grid[grid["grid_key"] == grid["run_key"]].drop_duplicates("grid_key").sort_values("grid_key")
    keep = set(roots.drop_duplicates("home")["grid_key"]) | set(grid.loc[~grid["grid_key"].isin(roots["grid_key"]), "grid_key"])
    return grid[grid["grid_key"].isin(keep)]


@FIGURES.register("F13_learning_rates")
def make(results):
    grid = results.grid
    if grid is None or grid.empty or "val_accuracy" not in grid:
        return None
    grid = grid.dropna(subset=["learning_rate"]).copy()
    grid["val_counted"] = grid["val_accuracy"].where(~grid["diverged"].astype(bool), 0.0)
    tuned = distinct_grids(grid[grid["lr_grid"].str.contains(",")].dropna(subset=["val_counted"]))
    if tuned.empty:
        return None
    panels = sorted({(d, f) for d, f in zip(tuned["dataset"], tuned["family"])})
    fig, axes = style.subplots(len(panels), width=3.6, height=2.8, ncols=min(4, len(panels)))
    for ax, (dataset, family) in zip(axes, panels):
        sub = tuned[(tuned["dataset"] == dataset) & (tuned["family"] == family)]
        for _, run in sub.groupby("grid_key"):  # a run and its pieces: one line
            curve = run.groupby("learning_rate")["val_counted"].mean()
            best = curve.max()
            ax.plot(curve.index, 100 * (curve.to_numpy() - best), color=style.color(family), alpha=0.5, linewidth=1)
            chosen = run[run["lr_chosen"]]
            if not chosen.empty:
                ax.plot(chosen["learning_rate"].iloc[0], 0, "o", color=style.color(family), markersize=3)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("val accuracy - run's best (points)")
        ax.set_title(f"{dataset}, {family} ({sub['grid_key'].nunique()} runs)", fontsize=9)
    fig.suptitle("F13  Validation accuracy vs learning rate, relative to each run's best (dot: the rate chosen)")
    return fig
