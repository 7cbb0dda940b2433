"""One look for every figure: fonts, a fixed colour per layer family, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.claims import live  # noqa: E402
from analysis.stats import aggregate  # noqa: E402
from research.models import FAMILIES  # noqa: E402

FAMILY_COLORS = {
    "conv": "#1b6ca8",
    "full_kernel_conv": "#7b3294",
    "locally_connected": "#e08214",
    "dense": "#c0392b",
    "mlp": "#2c7d3f",  # the reference MLP (data_scaling): not a lattice family, its own colour
    "mnist1d_mlp": "#2c7d3f",
}
FAMILY_LABELS = {
    "conv": "conv (sharing + locality)",
    "full_kernel_conv": "full-kernel conv (sharing)",
    "locally_connected": "locally connected (locality)",
    "dense": "dense (neither)",
    "mlp": "reference MLP (40-100-100-10)",
    "mnist1d_mlp": "reference MLP (40-100-100-10)",
}
FAMILY_ORDER = list(FAMILIES)  # the lattice, in research.models order
EXTRA_COLORS = ["#2c7d3f", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

plt.rcParams.update(
    {
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.dpi": 110,
        "savefig.bbox": "tight",
    }
)


def color(family: str) -> str:
    return FAMILY_COLORS.get(family, "#444444")


def label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


def families_in(values) -> list[str]:
    present = [f for f in FAMILY_ORDER if f in set(values)]
    return present + sorted(set(values) - set(present))


def subplots(n: int, *, width: float = 4.2, height: float = 3.3, ncols: int | None = None):
    ncols = ncols or min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def errorbars(ax, x, agg, family: str | None = None, **kwargs):
    """Mean with a 95% CI band (or bars for categorical x)."""
    c = kwargs.pop("color", color(family) if family else None)
    ax.plot(x, agg["mean"], color=c, **{"marker": "o", **kwargs})
    ax.fill_between(x, agg["low"], agg["high"], color=c, alpha=0.2, linewidth=0)


def accuracy_by_family(ax, runs, x_column: str) -> None:
    """One line per family: test accuracy (%) against ``x_column``, mean and 95% CI over seeds."""
    for family in families_in(runs["family"]):
        agg = aggregate(runs[runs["family"] == family], [x_column], "test_accuracy")
        percent = agg.assign(**{k: 100 * agg[k] for k in ("mean", "low", "high")})
        errorbars(ax, agg[x_column], percent, family, label=label(family))
    ax.set_ylabel("test accuracy (%)")


def per_dataset(runs, **subplot_options):
    """``(figure, [(axis, dataset, rows of that data set)])``, one panel per data set
    (``runs`` is any frame with a ``dataset`` column; options go to :func:`subplots`)."""
    datasets = sorted(runs["dataset"].unique())
    fig, axes = subplots(len(datasets), **subplot_options)
    return fig, [(ax, d, runs[runs["dataset"] == d]) for ax, d in zip(axes, datasets)]


def study_panels(results, study: str, **subplot_options):
    """:func:`per_dataset` over ``study``'s replicas that count (the claims' filter,
    :func:`analysis.claims.live`), or None without any."""
    runs = live(results.study(study))
    return None if runs.empty else per_dataset(runs, **subplot_options)


def accuracy_vs(results, study: str, x_column: str, xlabel: str, title, suptitle: str):
    """Per data set, test accuracy by family against ``x_column`` on a log axis
    (``title(dataset)`` names each panel); None when the study has no runs."""
    drawn = study_panels(results, study)
    if drawn is None:
        return None
    fig, panels = drawn
    for ax, dataset, runs in panels:
        accuracy_by_family(ax, runs, x_column)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title(dataset))
    panels[0][0].legend()
    fig.suptitle(suptitle)
    return fig


def save(fig, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
