"""C2: does sparse (local) connectivity capture local features with fewer parameters?

    cvd sweep --config experiments/locality.py:quick --workdir runs/locality

Kernel size from small to the full input, for conv and locally connected;
plus the full-kernel conv (sharing without locality) and dense (neither).
quick and paper: MNIST-1D, kernels 3/9/21, 8 runs. full: kernels 3-39 on
MNIST-1D and 3-27 on the image sets. Expected: accuracy falls as
the kernel grows toward the input size, most for locally connected.
full leaves out runs over 8M parameters a replica (experiments/common.py,
FULL_MAX_PARAMS): locally connected kernels 21 and 27 on 28x28 images and 9-27
on CIFAR-10, and dense on CIFAR-10.
"""

from experiments.common import datasets, lattice_config, on_cpu, within_budget
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    return lattice_config(variant)


def _sweep(variant: str) -> list[dict]:
    quick = on_cpu(variant)
    runs = []
    for bundle in datasets(variant, images=not quick):
        one_d = bundle["data.name"] == "mnist1d"
        kernels = (3, 9, 21) if quick else ((3, 5, 9, 15, 21, 31, 39) if one_d else (3, 5, 9, 15, 21, 27))
        runs += product([bundle], axis("model.family", ["conv", "locally_connected"]), axis("model.kernel_sizes", kernels))
        runs += [{**bundle, "model.family": "full_kernel_conv"}]
        runs += [{**bundle, "model.family": "dense", "probes.track": ("locality",)}]  # locality index through training
    return runs


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
