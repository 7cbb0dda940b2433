"""C6: does conv's advantage come from the spatial prior?

    cvd sweep --config experiments/permuted_pixels.py:quick --workdir runs/permuted_pixels

Every family with and without a fixed random pixel permutation (the same for
train and test), and one more dense arm on permuted pixels started at W0 P^T
(the unpermuted run's init, permuted alike: it mirrors that run exactly).
quick and paper: MNIST-1D, 9 runs. full: all data
sets. Expected (Greydanus & Kobak): dense nets are unaffected, conv nets lose
their edge (MNIST-1D CNN 94% -> 56%, MLP 68% either way).
full leaves out dense on CIFAR-10 (over 8M parameters a replica:
experiments/common.py, FULL_MAX_PARAMS).
"""

from experiments.common import datasets, lattice_config, on_cpu, within_budget
from research.models import FAMILIES
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    return lattice_config(variant)


def _sweep(variant: str) -> list[dict]:
    images = not on_cpu(variant)
    grid = product(datasets(variant, images=images), axis("model.family", FAMILIES), axis("data.permute_pixels", [False, True]))
    # C6's dense symmetry, shown beside the interaction: dense on permuted pixels started at W0 P^T,
    # which mirrors its unpermuted run exactly (tests/test_train.py); a separate arm, not a family.
    mirror = product(
        datasets(variant, images=images),
        axis("model.family", ["dense"]),
        axis("data.permute_pixels", [True]),
        axis("data.permute_init", [True]),
    )
    return grid + mirror


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
