"""F8 (C6): accuracy with and without a fixed random pixel permutation, per
family (permuted_pixels study)."""

from __future__ import annotations

import numpy as np

from analysis import style
from analysis.claims import live
from analysis.claims.c6_permuted_pixels import plain_init
from analysis.figures import FIGURES
from analysis.stats import aggregate


@FIGURES.register("F8_permuted_pixels")
def make(results):
    runs = plain_init(live(results.study("permuted_pixels")))  # the W0 P^T mirror arm is C6's shown fact, not a bar
    if runs.empty:
        return None
    fig, panels = style.per_dataset(runs, width=4.8)
    for ax, dataset, sub in panels:
        families = style.families_in(sub["family"])
        agg = aggregate(sub, ["family", "permute_pixels"], "test_accuracy")
        for j, permuted in enumerate((False, True)):
            part = agg[agg["permute_pixels"] == permuted].set_index("family").reindex(families)
            x = np.arange(len(families)) + (j - 0.5) * 0.38
            ax.bar(
                x,
                100 * part["mean"],
                0.38,
                yerr=100 * (part["high"] - part["mean"]),
                color=[style.color(f) for f in families],
                alpha=1.0 if not permuted else 0.45,
                hatch="" if not permuted else "//",
                label="pixels permuted" if permuted else "original order",
            )
        means = agg.pivot_table(index="family", columns="permute_pixels", values="mean").reindex(families)
        for i, family in enumerate(families):  # each family's loss: conv's minus dense's is what C6 decides on
            if {False, True} <= set(means.columns) and np.isfinite(means.loc[family]).all():
                loss = 100 * (means.loc[family, False] - means.loc[family, True])
                ax.text(i, 100 * means.loc[family].max() + 2, f"{-loss:+.1f}", ha="center", fontsize=7)
        ax.set_xticks(np.arange(len(families)), families, rotation=20, fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(dataset)
    panels[0][0].legend()
    fig.suptitle(
        "F8  A fixed pixel permutation (solid: original, hatched: permuted; 95% CI; above: the change with the permutation, points)"
    )
    return fig
