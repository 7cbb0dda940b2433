"""F9 (C7): eFCN: accuracy of a conv net embedded exactly into the dense family
after t epochs and trained on as dense, against dense and conv from scratch
(embedding study)."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES
from analysis.stats import aggregate, mean_ci


@FIGURES.register("F9_efcn")
def make(results):
    runs = results.study("embedding").dropna(subset=["test_accuracy"])
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
    embedded = runs[runs["embed_at_epoch"] > 0]
    agg = aggregate(embedded, ["embed_at_epoch"], "test_accuracy")
    style.errorbars(
        ax,
        agg["embed_at_epoch"],
        agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")}),
        color=style.EXTRA_COLORS[0],
        label="conv for t epochs, then dense (eFCN)",
    )
    for family in ("conv", "dense"):
        values = runs[(runs["embed_at_epoch"] == 0) & (runs["family"] == family)]["test_accuracy"]
        if len(values):
            mean, low, high, _ = mean_ci(values)
            ax.axhline(100 * mean, color=style.color(family), linestyle="--", label=f"{family} from scratch")
            ax.axhspan(100 * low, 100 * high, color=style.color(family), alpha=0.12)
    ax.set_xscale("log")
    ax.set_xticks(list(agg["embed_at_epoch"]), [str(int(t)) for t in agg["embed_at_epoch"]])
    ax.minorticks_off()
    ax.set_xlabel(f"embedding epoch t (of {int(runs['epochs'].iloc[0])}; log scale)")
    ax.set_ylabel("final test accuracy (%)")
    ax.legend(fontsize=8)
    if len(axes) > 1:
        at = runs.drop_duplicates("run_key").set_index("run_key")["embed_at_epoch"]
        for i, (key, part) in enumerate(tracked.groupby("run_key")):
            mean = part.groupby("step")["outside_receptive_field"].mean()
            axes[1].plot(
                mean.index,
                100 * mean.to_numpy(),
                marker="o",
                markersize=3,
                color=style.EXTRA_COLORS[i % len(style.EXTRA_COLORS)],
                label=f"t = {int(at.get(key, 0))}",
            )
        axes[1].set_xlabel("optimizer step")
        axes[1].set_ylabel("weight mass outside the conv's fields (%)")
        axes[1].legend(fontsize=8)
    fig.suptitle(f"F9  eFCN on {runs['dataset'].iloc[0]} (mean, 95% CI over seeds; right: what leaves the receptive fields)")
    return fig
