"""C1: does weight sharing cut parameters and improve generalisation?

    cvd sweep --config experiments/weight_sharing.py:quick --workdir runs/weight_sharing

Conv vs locally connected (same locality, sharing off) vs dense (neither), at
matched activation shapes, over several widths: accuracy against parameters.
quick: MNIST-1D at widths 4, 16 and 64 and a 100-per-class Fashion-MNIST
subset at widths 2x4 and 8x16, 17 runs. paper: MNIST-1D at widths 4, 8, 16, 32
and 64 (so that C1's frontier has 5 widths a family) and a Fashion-MNIST arm
that can show something: 5000 training images, widths 16 and 32 for every
family, dense at matched shapes (7.4M parameters, under the 8M limit), up to 15
epochs; 20 runs. full: widths 4-64, Fashion-MNIST, MNIST, CIFAR-10.
At width 16 (on CPU: MNIST-1D only) two more runs compare at matched parameter counts (tag
``matched_params``): the conv widened to the locally connected net's count,
and the locally connected net narrowed to the conv's. Every run trains the
profile's learning-rate grid; the analysis picks each run's rate on validation.
Expected: at equal shapes conv has far fewer parameters and generalises
better; locally connected sits between conv and dense.
full leaves out runs over 8M parameters a replica (experiments/common.py,
FULL_MAX_PARAMS): dense on CIFAR-10 at every width, dense on 28x28 images at
widths 32 and 64, locally connected on CIFAR-10 at width 64.
"""

from experiments.common import (
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
    matched_at = 16  # the width at which conv and locally connected also meet at equal parameter counts
    # On CPU at matched parameters on MNIST-1D only: on the Fashion-MNIST arm the conv widened to the
    # locally connected net's count (99 and 198 channels) would cost more than the rest of the arm.
    bundles = datasets(variant, matched_at, images=not on_cpu(variant))
    return shapes + [run for bundle in bundles for run in matched_parameter_runs(bundle)]


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
