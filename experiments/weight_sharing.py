"""C1: does weight sharing cut parameters and improve generalisation?

    cvd sweep --config experiments/weight_sharing.py:quick --workdir runs/weight_sharing

Conv vs locally connected (same locality, sharing off) vs dense (neither), at
matched activation shapes, over several widths: accuracy against parameters.
quick: MNIST-1D at widths 4, 16 and 64, 11 runs. paper: MNIST-1D at widths 4, 8, 16, 32
and 64 (so that C1's frontier has 5 widths a family), and 128 and 256 for conv
and locally connected so that F12 shows finite nets approaching their infinite-width kernels, at
2 seeds, 3 rates and 20 epochs (``WIDE_ON_CPU``); and a Fashion-MNIST arm
that can show something: 5000 training images, widths 16 and 32 for every
family, dense at matched shapes (7.4M parameters, under the 8M limit), up to 12
epochs; 24 runs. full: widths 4-64, Fashion-MNIST, MNIST, CIFAR-10, and MNIST-1D
at 128 and 256.
At width 16 (on CPU: MNIST-1D only) two more runs compare at matched parameter counts (tag
``matched_params``): the conv widened to the locally connected net's count,
and the locally connected net narrowed to the conv's. Every run trains the
profile's learning-rate grid; the analysis picks each run's rate on validation.
Expected: at equal shapes conv has far fewer parameters and generalises
better; locally connected sits between conv and dense.
full leaves out runs over 8M parameters a replica (experiments/common.py,
FULL_MAX_PARAMS): dense on CIFAR-10 at every width, dense on 28x28 images at
widths 32 and 64, locally connected on CIFAR-10 at width 64; every profile leaves
out dense on MNIST-1D at width 256 (13M).
"""

from experiments.common import (
    FULL_MAX_PARAMS,
    bundle_widths,
    check_variant,
    datasets,
    lattice_config,
    lattice_size,
    matched_width,
    on_cpu,
    within_budget,
)
from research.models import count_params
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    return lattice_config(variant)


def matched_parameter_runs(bundle: dict) -> list[dict]:
    """At the bundle's width: the conv widened to the locally connected net's
    parameter count, and the locally connected net narrowed to the conv's."""
    width = bundle["model.widths"][0]
    runs = []
    for family, other in (("conv", "locally_connected"), ("locally_connected", "conv")):
        target = lattice_size(bundle, other, width, count_params)
        matched = matched_width(bundle, family, target, count_params)
        runs.append({**bundle, "model.family": family, "model.widths": bundle_widths(bundle, matched), "tag": "matched_params"})
    return runs


WIDE = (128, 256)  # MNIST-1D only, paper and full: F12's finite nets on their way to their kernels
# On CPU (paper) the wide runs are the study's most expensive (3M multiply-adds an example at 256,
# 20x width 64's): 2 seeds, the three rates that bracket width 64's choices (0.01 for conv and
# locally connected, 0.003 for dense; Adam's best rate falls with width; halved to 2 after a
# fifth of the epochs, and the grid is extended past an edge) and a 20-epoch cosine schedule.
WIDE_ON_CPU = {"seeds": 2, "optimizer.learning_rates": (1e-3, 3e-3, 1e-2), "train.epochs": 20}


def wide_runs(variant: str) -> list[dict]:
    """Every family at the :data:`WIDE` widths on MNIST-1D, up to :data:`FULL_MAX_PARAMS` parameters
    a replica (dense stops at 128: at 256 it has 13M); on CPU at :data:`WIDE_ON_CPU`."""
    bundles = [b for width in WIDE for b in datasets(variant, width) if b["data.name"] == "mnist1d"]
    if on_cpu(variant):
        bundles = [{**b, **WIDE_ON_CPU} for b in bundles]
    # On CPU the dense family stops at width 64 (at 128 it has 4.2M parameters: 9 min by the plan);
    # full trains it to 128 (at 256 it has 13M, over the limit).
    families = ["conv", "locally_connected"] if on_cpu(variant) else ["conv", "locally_connected", "dense"]
    runs = product(bundles, axis("model.family", families), axis("tag", ["matched_shape"]))
    return [r for r in runs if lattice_size(r, r["model.family"], r["model.widths"][0], count_params) <= FULL_MAX_PARAMS]


def _sweep(variant: str) -> list[dict]:
    widths = (4, 16, 64) if on_cpu(variant) else (4, 8, 16, 32, 64)
    # On CPU, width 64 on MNIST-1D only: where F12 shows the finite nets approach their kernels.
    data = [
        b
        for width in widths
        for b in datasets(variant, width, fashion_arm=True)
        if width < 64 or b["data.name"] == "mnist1d" or not on_cpu(variant)
    ]
    if check_variant(variant) == "paper":  # the frontier needs at least 5 widths a family: 8 and 32 on MNIST-1D too
        data += [b for width in (8, 32) for b in datasets(variant, width) if b["data.name"] == "mnist1d"]
    # The paper profile's Fashion-MNIST arm has a least width (experiments/common.py, Budget): widths
    # under it give the same bundle, trained once.
    data = [b for i, b in enumerate(data) if b not in data[:i]]
    shapes = product(data, axis("model.family", ["conv", "locally_connected", "dense"]), axis("tag", ["matched_shape"]))
    if check_variant(variant) in ("paper", "full"):
        shapes += wide_runs(variant)
    matched_at = 16  # the width at which conv and locally connected also meet at equal parameter counts
    # On CPU at matched parameters on MNIST-1D only: on the Fashion-MNIST arm the conv widened to the
    # locally connected net's count (99 and 198 channels) would cost more than the rest of the arm.
    bundles = datasets(variant, matched_at, images=not on_cpu(variant))
    return shapes + [run for bundle in bundles for run in matched_parameter_runs(bundle)]


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
