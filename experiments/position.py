"""C3: does a conv net recognise an object where it never saw one?

    cvd sweep --config experiments/position.py:quick --workdir runs/position

Fashion-MNIST items pasted onto a 56x56 zero canvas with their top-left
corner drawn from a small region (0..8 on each axis) for training and for the
run's own test set; the ``position`` probe then tests every corner of the
canvas and maps accuracy over positions. Three models: conv with a global
average head (equivariant features, pooled to invariance), conv with a
flatten head, and the dense family (flatten). Conv layers: 32 then 64
channels (quick: 16 then 32, and 100 probe images instead of 300), kernels 5 then 3, strides 2 then 1, max pooling after each (total
stride 8, which the 0..8 region covers); dense: strides 4 then 2 (2.8M
parameters; at the conv's shapes it would be 40M). MNIST-1D on an 80-long
canvas is the fallback when Fashion-MNIST is absent. quick: 1500 training
images, 3 epochs; paper: 8 epochs; full: all 60000, 30 epochs;
each with its profile's seeds and learning-rate grid. Expected: dense accuracy collapses off the training
region; conv with global pooling stays within a few points of its in-region
accuracy.
"""

from experiments.common import BUDGETS, SMALL, check_variant, fashion_mnist_available, lattice_config, on_cpu, within_budget
from research.sweep import axis, product

MODELS = [
    {"model.family": "conv", "model.head": "global_avg", "model.head_widths": (64,)},
    {"model.family": "conv", "model.head": "flatten", "model.head_widths": ()},
    {
        "model.family": "dense",
        "model.head": "flatten",
        "model.head_widths": (),
        "model.widths": (4, 8),
        "model.strides": (4, 2),
        "model.pooling": "none",
    },  # 2.8M parameters at these shapes
]


def get_config(variant: str = "quick"):
    quick, cpu = check_variant(variant) in SMALL, on_cpu(variant)
    c = lattice_config(variant)
    if fashion_mnist_available() or not cpu:
        c.data.name, c.data.standardize, c.data.canvas_size = "fashion_mnist", True, 56
        c.data.n_per_class = 150 if cpu else 0
        c.data.n_test = 2000 if cpu else 0
        c.data.n_val = BUDGETS[variant].fashion_subset_val if cpu else -1
        c.optimizer.learning_rates = BUDGETS[variant].image_rates
    else:  # no download in quick: MNIST-1D on an 80-long canvas
        c.data.name, c.data.standardize, c.data.canvas_size = "mnist1d", False, 80
    # Corners 0..8 on each axis: one small region, yet every phase of the conv's
    # total stride (2 x 2 x 2 = 8), so that off-region errors are not aliasing.
    c.data.canvas_region = 8
    # quick: half the channels (a smoke test; the 56x56 conv runs were its slowest).
    c.model.update(kernel_sizes=(5, 3), strides=(2, 1), widths=(16, 32) if quick else (32, 64), pooling="max", head_widths=())
    c.optimizer.schedule = "cosine"
    c.train.batch_size = 100
    c.train.epochs = 3 if quick else (8 if cpu else 30)
    c.probes.final = ("position",)
    c.probes.examples = BUDGETS[variant].image_probe_examples if cpu else 1000
    return c


def _sweep(variant: str) -> list[dict]:
    return product(axis("seed", [0]), MODELS)


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
