"""C5: does pooling lower dimension and add robustness?

    cvd sweep --config experiments/pooling.py:quick --workdir runs/pooling

Conv nets with stride-1 layers and, after every layer, no pooling / max /
average / strided downsampling / anti-aliased (blur then subsample, Zhang
2019) downsampling (window 2), or no pooling and a global average
or global max head (widths 8 per layer, so the stride-1 nets stay cheap). quick: MNIST-1D, 7 runs.
paper: MNIST-1D and a Fashion-MNIST subset, 14 runs. full: all data sets. The translation probes read these runs.
"""

from experiments.common import datasets, lattice_config, within_budget
from research.sweep import product

POOLING = [
    {"model.pooling": "none", "model.head": "flatten"},
    {"model.pooling": "max", "model.head": "flatten"},
    {"model.pooling": "avg", "model.head": "flatten"},
    {"model.pooling": "stride", "model.head": "flatten"},
    {"model.pooling": "blur", "model.head": "flatten"},  # anti-aliased: blur, then subsample (Zhang 2019)
    {"model.pooling": "none", "model.head": "global_avg"},
    {"model.pooling": "none", "model.head": "global_max"},
]


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.model.strides = 1
    c.probes.final = ("shift", "consistency", "one_pixel")
    return c


def _sweep(variant: str) -> list[dict]:
    return product(datasets(variant, width=8), POOLING)


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
