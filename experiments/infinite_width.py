"""C1 at infinite width: kernel regression with each family's NNGP kernel (research.kernels).

    cvd sweep --config experiments/infinite_width.py:quick --workdir runs/infinite_width

Every lattice family (conv, full-kernel conv, locally connected, dense) with a
flatten head and with a global-average head, on MNIST-1D (the lattice geometry
of the weight-sharing study: 3 layers, kernels 5/3/3, strides 2, zero padding):
the GP posterior mean of the infinitely wide net, its ridge chosen on the
validation split, test accuracy reported. Each run writes ``kernel.json``.
The flatten head uses the whole training split (3600 after validation) in
every profile; the global-average head, whose kernel needs every pair of
positions, 300 examples (tested on 500) in quick and 1000 in paper (full:
all). 8 runs.
Expected (Novak et al. 2019): with a flatten head conv and locally connected
have the same kernel, hence the same accuracy; global average pooling is
where weight sharing starts to matter.
"""

from experiments.common import FAMILIES, check_variant, lattice_config
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.task = "kernel_regression"
    c.seeds = 1
    c.optimizer.learning_rates = ()
    return c


def get_sweep(variant: str = "quick"):
    # A flatten head needs only the diagonal in space (seconds on the whole training split); a
    # global-average head needs every pair of positions, so the CPU profiles give it a subset.
    variant = check_variant(variant)
    pooled = {"quick": {"data.n_per_class": 30, "data.n_test": 500}, "paper": {"data.n_per_class": 100}, "full": {}}[variant]
    heads = [
        {"model.head": "flatten", "data.n_per_class": 0, "data.n_test": 0},
        {"model.head": "global_avg", "data.n_per_class": 0, "data.n_test": 0, **pooled},
    ]
    return product(axis("model.family", FAMILIES), heads)
