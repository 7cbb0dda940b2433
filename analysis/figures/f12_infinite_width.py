"""F12 (C1 at infinite width): test accuracy against width per family (weight-sharing
study, flatten head), with each family's infinite-width kernel-regression accuracies
(infinite_width study) as horizontal lines of the family's colour: dashed for the
flatten head, dotted for the global-average head; thin for the NNGP (the GP posterior
mean: the random net's prior), thick and pale for the NTK (gradient-descent training's
limit), each with its training-set size. Conv and locally connected share the flatten
kernels exactly, so their dashes interleave."""

from __future__ import annotations

import textwrap

import numpy as np

from analysis import style
from analysis.claims import live
from analysis.figures import FIGURES
from analysis.stats import aggregate

HEAD_STYLES = {"flatten": (0, (4, 4)), "global_avg": (0, (1, 2))}
OFFSET = {"locally_connected": 4}  # its flatten dashes start where conv's stop: both stay visible
KERNELS = {"NNGP": ("test_accuracy", dict(linewidth=1.2)), "NTK": ("ntk_test_accuracy", dict(linewidth=3.0, alpha=0.4))}


def _kernel_lines(ax, kernels, dataset: str) -> list[str]:
    """Each family's kernel accuracies per head as lines; returns one legend text per head."""
    texts = []
    for head, (offset, pattern) in HEAD_STYLES.items():
        rows = kernels[(kernels["dataset"] == dataset) & (kernels["head"] == head)]
        if rows.empty:
            continue
        parts = []
        for family in style.families_in(rows["family"]):
            values = []
            for column, line in KERNELS.values():
                value = 100 * rows[rows["family"] == family][column].mean() if column in rows else np.nan
                if np.isfinite(value):  # runs from before the NTK have the NNGP's only
                    dashes = (OFFSET.get(family, offset), pattern)
                    ax.axhline(value, color=style.color(family), linestyle=dashes, **line)
                    values.append(f"{value:.1f}")
            parts.append(f"{family} {' / '.join(values)}")
        text = f"{head} head ({int(rows['train_examples'].max())} examples), NNGP / NTK %: " + ", ".join(parts)
        texts.append(textwrap.fill(text, 90))
    return texts


@FIGURES.register("F12_infinite_width")
def make(results):
    kernels = live(results.study("infinite_width"))
    finite = live(results.study("weight_sharing"))
    if kernels.empty:
        return None
    finite = finite[finite["tag"] != "matched_params"].copy()
    finite["width"] = finite["widths"].map(lambda w: int(str(w).split("x")[0]))
    frames = kernels if finite.empty else finite
    fig, panels = style.per_dataset(frames, width=5.4, height=3.8)
    for ax, dataset, _ in panels:
        part = finite[finite["dataset"] == dataset] if not finite.empty else finite
        for family in style.families_in(part["family"]):
            agg = aggregate(part[part["family"] == family], ["width"], "test_accuracy")
            style.errorbars(
                ax,
                agg["width"],
                agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")}),
                family,
                label=style.label(family),
            )
        texts = _kernel_lines(ax, kernels, dataset)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width (channels per layer)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset}; infinite width:\n" + "\n".join(texts), fontsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(
        "F12  Finite nets against their infinite-width kernels\n(dashed: flatten head; dotted: global average; thin: NNGP; thick, pale: NTK)"
    )
    return fig
