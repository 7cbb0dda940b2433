"""C1: does weight sharing cut parameters and improve generalisation?

    cvd sweep --config experiments/weight_sharing.py:quick --workdir runs/weight_sharing

Conv vs locally connected (same locality, sharing off) vs dense (neither), at
matched activation shapes, over several widths: accuracy against parameters.
quick: MNIST-1D and a 100-per-class Fashion-MNIST subset, widths 4 and 16,
3 seeds, 12 runs. full: widths 4-64, Fashion-MNIST, MNIST, CIFAR-10, 5 seeds.
Expected: at equal shapes conv has far fewer parameters and generalises
better; locally connected sits between conv and dense.
"""

from experiments.common import check_variant, datasets, lattice_config
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    return lattice_config(variant)


def get_sweep(variant: str = "quick"):
    widths = (4, 16) if check_variant(variant) == "quick" else (4, 8, 16, 32, 64)
    data = [bundle for width in widths for bundle in datasets(variant, width)]
    return product(data, axis("model.family", ["conv", "locally_connected", "dense"]))
