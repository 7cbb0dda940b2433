"""F12 (C1 at infinite width): test accuracy against width per family (weight-sharing
study, flatten head), with each family's infinite-width NNGP kernel-regression accuracy
(infinite_width study, flatten head) as a dashed line of the family's colour."""

from __future__ import annotations

from analysis import style
from analysis.figures import FIGURES
from analysis.stats import aggregate


@FIGURES.register("F12_infinite_width")
def make(results):
    kernels = results.study("infinite_width").dropna(subset=["test_accuracy"])
    finite = results.study("weight_sharing").dropna(subset=["test_accuracy"])
    if kernels.empty:
        return None
    finite = finite[finite["tag"] != "matched_params"].copy()
    finite["width"] = finite["widths"].map(lambda w: int(str(w).split("x")[0]))
    frames = kernels if finite.empty else finite
    fig, panels = style.per_dataset(frames, width=5.0)
    for ax, dataset, _ in panels:
        part = finite[finite["dataset"] == dataset] if not finite.empty else finite
        for family in style.families_in(list(part["family"]) + list(kernels["family"])):
            rows = part[part["family"] == family]
            if len(rows):
                agg = aggregate(rows, ["width"], "test_accuracy")
                style.errorbars(
                    ax,
                    agg["width"],
                    agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")}),
                    family,
                    label=style.label(family),
                )
            limit = kernels[(kernels["family"] == family) & (kernels["dataset"] == dataset) & (kernels["head"] == "flatten")]
            if len(limit):
                ax.axhline(100 * limit["test_accuracy"].mean(), color=style.color(family), linestyle="--", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width (channels per layer)")
        ax.set_ylabel("test accuracy (%)")
        trained = kernels[kernels["dataset"] == dataset]["train_examples"]
        n = f", {int(trained.max())} training examples" if len(trained) else ""
        ax.set_title(f"{dataset} (dashed: infinite width, flatten head{n})", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("F12  Finite nets against their infinite-width kernels")
    return fig
