"""F9 (C7): eFCN: a conv net embedded exactly into the dense family after t epochs and
trained on as dense; its final accuracy against both references C7 reads, the conv at the
switch (its own curve at epoch t) and the conv trained to the end, and the dense net from
scratch, per optimizer (embedding study). Right: the weight mass leaving the conv's
receptive fields."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import style
from analysis.claims import live, select
from analysis.claims.c7_embedding import at_switch
from analysis.figures import FIGURES
from analysis.stats import mean_ci

OPTIMIZER_STYLES = {"adam": "-", "sgd": "--"}


def _line(ax, x, values: list, **kwargs) -> None:
    stats = np.array([mean_ci(v) for v in values]) * 100
    style.errorbars(ax, x, {"mean": stats[:, 0], "low": stats[:, 1], "high": stats[:, 2]}, **kwargs)


def _optimizers(runs: pd.DataFrame) -> pd.Series:
    """Each row's optimizer (adam where a run does not say)."""
    return runs["optimizer"].fillna("adam") if "optimizer" in runs else pd.Series("adam", index=runs.index)


def _references(ax, results, runs: pd.DataFrame) -> None:
    """Per optimizer: eFCN at the end and the conv at the switch against t; conv to the end and
    dense from scratch as bands."""
    for name, sub in runs.groupby(_optimizers(runs)):
        ls = OPTIMIZER_STYLES.get(name, ":")
        times = sorted(sub[sub["embed_at_epoch"] > 0]["embed_at_epoch"].unique())
        if times:
            _line(
                ax,
                times,
                [select(sub, embed_at_epoch=t) for t in times],
                color=style.EXTRA_COLORS[0],
                linestyle=ls,
                label=f"eFCN at the end ({name})",
            )
            _line(
                ax,
                times,
                [at_switch(results, sub, int(t)) for t in times],
                color=style.color("conv"),
                linestyle=ls,
                label=f"conv at the switch ({name})",
            )
        for family, what in (("conv", "conv trained to the end"), ("dense", "dense from scratch")):
            values = select(sub, family=family, embed_at_epoch=0)
            if len(values):
                mean, low, high, _ = mean_ci(values)
                ax.axhline(100 * mean, color=style.color(family), linestyle=ls, linewidth=1, label=f"{what} ({name})")
                ax.axhspan(100 * low, 100 * high, color=style.color(family), alpha=0.1)


@FIGURES.register("F9_efcn")
def make(results):
    runs = live(results.study("embedding"))
    if runs.empty:
        return None
    curves = results.curves
    tracked = (
        curves[(curves["split"] == "track") & curves["outside_receptive_field"].notna()]
        if not curves.empty and "outside_receptive_field" in curves
        else None
    )
    fig, axes = style.subplots(2 if tracked is not None and not tracked.empty else 1, width=5.5, height=3.8)
    ax = axes[0]
    _references(ax, results, runs)
    ax.set_xscale("log")
    times = sorted(runs[runs["embed_at_epoch"] > 0]["embed_at_epoch"].unique())
    if times:
        ax.set_xticks(times, [str(int(t)) for t in times])
    ax.minorticks_off()
    ax.set_xlabel(f"embedding epoch t (of {int(runs['epochs'].iloc[0])}; log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    if len(axes) > 1:
        first = runs.drop_duplicates("run_key").set_index("run_key")
        at = first["embed_at_epoch"].fillna(0).astype(int)
        optimizer_of = _optimizers(first)
        keys = sorted(tracked["run_key"].unique(), key=lambda k: (optimizer_of.get(k, "adam"), at.get(k, 0)))
        times = sorted({int(at.get(k, 0)) for k in keys})
        for key in keys:  # colour: the switch epoch; line: the optimizer, as on the left
            mean = tracked[tracked["run_key"] == key].groupby("step")["outside_receptive_field"].mean()
            t, name = int(at.get(key, 0)), optimizer_of.get(key, "adam")
            axes[1].plot(
                mean.index,
                100 * mean.to_numpy(),
                marker="o",
                markersize=3,
                color=style.EXTRA_COLORS[times.index(t) % len(style.EXTRA_COLORS)],
                linestyle=OPTIMIZER_STYLES.get(name, ":"),
                label=f"{name}, t = {t}",
            )
        axes[1].set_xlabel("optimizer step")
        axes[1].set_ylabel("weight mass outside the conv's fields (%)")
        axes[1].legend(fontsize=8)
    fig.suptitle(f"F9  eFCN on {runs['dataset'].iloc[0]} against both references (mean, 95% CI over seeds)")
    return fig
