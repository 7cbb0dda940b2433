"""C1 at infinite width: kernel regression with each family's NNGP and NTK kernels (research.kernels).

    cvd sweep --config experiments/infinite_width.py:quick --workdir runs/infinite_width

Every lattice family (conv, full-kernel conv, locally connected, dense) with a
flatten head and with a global-average head, on MNIST-1D (the lattice geometry
of the weight-sharing study: 3 layers, kernels 5/3/3, strides 2, zero padding):
the GP posterior mean of the infinitely wide net (NNGP) and the limit of its
gradient-descent training (NTK), each with its ridge chosen on the validation
split, test accuracy reported. One walk gives both kernels, at about the NNGP's
cost alone. Each run writes ``kernel.json``. 8 runs on MNIST-1D.

Both heads use the same training subset, so they compare: the global-average
head's kernel needs every pair of positions (20 x 20 after the first layer),
computed in blocks of examples to bound memory, at about 75 us of CPU a pair of
examples for conv and full-kernel conv, 50 for locally connected and 40 for
dense (both kernels; the 2-core development machine shared with other work,
2026-12-01; about 45 alone), against 2-3 us with a flatten head. N training
examples, the 400 validation examples and T test examples make N^2 / 2 +
N (400 + T) pairs. Paper: N = 1500 (150 a class), T = 1000 (all): 3.2 million
pairs, 3-5 minutes of CPU a family (at N = 2000, 4.8 million pairs, the four took 25
minutes by the plan and the paper profile went past its 2.5 hours; the whole 3600
would take 9-14 a family). Measured at N = 2000 with the global-average head on the
shared machine (minutes of CPU): conv 6.7, locally connected 6.2, full-kernel conv
7.7, dense 4.2; 1.2-1.3 GB resident. Test accuracy there (N = 2000), NNGP / NTK: conv 90.0 / 89.3, locally
connected 80.5 / 79.9, full-kernel conv 57.8 / 58.9, dense 56.0 / 56.4 (flatten head:
conv and locally connected 79.5 / 79.7, full-kernel conv and dense 56.0 / 56.4). Quick: N = 300, T = 500: 0.3 million pairs, 15-25 s a
family. Full: everything.

Fashion-MNIST, when its files are here (the weight-sharing study's 2D geometry:
2 layers, kernel 3, stride 2), with the flatten head on a subset: none in quick
(its studies are MNIST-1D only), 1000 in paper
(validated on 1000, tested on 1000), 3000 in full (validated on 5000, tested on
all 10000: about 20 minutes a family of numpy on the host by the plan; 10000 would
take about 80, which put the full profile past its 8 GPU-hours), for conv, locally connected
and dense (the full-kernel conv's 55x55 taps took over 10 minutes for 1000
images); 3 more runs. Its global-average
kernel needs every pair of the 196 first-layer positions, about 7 ms a pair of
images on 2 CPU cores in numpy (a 300-image fit: about 40 minutes a family), so no profile
runs it yet.
Expected (Novak et al. 2019): with a flatten head conv and locally connected
have the same kernels (NNGP and NTK), hence the same accuracy; global average
pooling is where weight sharing starts to matter.
"""

from experiments.common import check_variant, datasets, lattice_config
from research.models import FAMILIES
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.task = "kernel_regression"
    c.seeds = 1
    c.optimizer.learning_rates = ()
    return c


# Fashion-MNIST subset per profile: (images per class, validation images, test images); 0: all.
# Its full-kernel conv (55x55 taps on 28x28) took over 10 minutes for 1000 images: left out.
FASHION_FAMILIES = ("conv", "locally_connected", "dense")
FASHION = {"gpu-smoke": (10, 100, 200), "paper": (100, 1000, 1000), "full": (300, -1, 0)}


def get_sweep(variant: str = "quick"):
    # Both heads on one subset per profile (the global-average head's every pair of positions
    # sets its size: see the docstring).
    variant = check_variant(variant)
    subset = {
        "quick": {"data.n_per_class": 30, "data.n_test": 500},
        "gpu-smoke": {"data.n_per_class": 10, "data.n_test": 200},
        "paper": {"data.n_per_class": 150, "data.n_test": 0},
        "full": {"data.n_per_class": 0, "data.n_test": 0},
    }[variant]
    heads = [{"model.head": head, **subset} for head in ("flatten", "global_avg")]
    runs = product(axis("model.family", FAMILIES), heads)
    for bundle in datasets(variant):
        if bundle["data.name"] == "fashion_mnist":
            per_class, n_val, n_test = FASHION[variant]
            subset = {"data.n_per_class": per_class, "data.n_val": n_val, "data.n_test": n_test, "model.head": "flatten"}
            fashion = {k: v for k, v in bundle.items() if k.startswith(("data.", "model."))}
            runs += product([{**fashion, **subset}], axis("model.family", FASHION_FAMILIES))
    return runs
