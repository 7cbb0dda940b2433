"""C1: does weight sharing cut parameters and improve generalisation?

    cvd sweep --config experiments/weight_sharing.py:quick --workdir runs/weight_sharing

Conv vs locally connected (same locality, sharing off) vs dense (neither), at
matched activation shapes, over several widths: accuracy against parameters.
quick: MNIST-1D and a 100-per-class Fashion-MNIST subset, widths 4 and 16,
16 runs (quick and paper). full: widths 4-64, Fashion-MNIST, MNIST, CIFAR-10.
At the largest width two more runs compare at matched parameter counts (tag
``matched_params``): the conv widened to the locally connected net's count,
and the locally connected net narrowed to the conv's. Every run trains the
profile's learning-rate grid; the analysis picks each run's rate on validation.
Expected: at equal shapes conv has far fewer parameters and generalises
better; locally connected sits between conv and dense.
"""

from experiments.common import bundle_widths, datasets, lattice_config, lattice_size, matched_width, on_cpu
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


def get_sweep(variant: str = "quick"):
    widths = (4, 16) if on_cpu(variant) else (4, 8, 16, 32, 64)
    data = [bundle for width in widths for bundle in datasets(variant, width)]
    shapes = product(data, axis("model.family", ["conv", "locally_connected", "dense"]), axis("tag", ["matched_shape"]))
    return shapes + [run for bundle in datasets(variant, max(widths)) for run in matched_parameter_runs(bundle)]
