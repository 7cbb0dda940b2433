"""The measurement behind the studies' default schedule: constant-rate Adam against
cosine decay, with early stopping, at the paper budgets.

    cvd sweep --config benchmarks/schedules.py:mnist1d --workdir runs/schedules_mnist1d
    cvd sweep --config benchmarks/schedules.py:fashion --workdir runs/schedules_fashion
    cvd analyze runs/schedules_mnist1d runs/schedules_fashion

``mnist1d``: the MNIST-1D conv and dense nets of width 16 (the lattice baseline
that C1-C4, C6 and C7 reuse) with the paper's grid and length, 3 seeds.
``mnist1d_long``: the conv at the reference CNN's budget (6000 steps, 170 epochs),
with early stopping (patience 25 epochs).
``fashion``: a two-conv net at widths 16 and 32 on a 5000-image Fashion-MNIST
subset, 30 epochs. Each run trains its whole length (no patience) so that the
curves show what happens after the best validation epoch; the analysis reads
test accuracy at each replica's best validation epoch, as the studies do.
What it measured is in ``benchmarks/README.md`` ("Training protocol").
"""

from experiments.common import BUDGETS, lattice_config
from research.sweep import axis, product


def get_config(variant: str = "mnist1d"):
    c = lattice_config("paper")
    c.seeds = 3
    if variant == "fashion":
        c.seeds = 2
        c.data.name = "fashion_mnist"
        c.data.n_per_class = 500
        c.data.n_val = 1000
        c.data.n_test = 2000
        c.data.standardize = True
        c.model.widths = (16, 32)
        c.model.kernel_sizes = 3
        c.optimizer.learning_rates = (1e-3, 3e-3)
        c.train.batch_size = 50
        c.train.epochs = 30
        c.train.eval_every_epochs = 2
    else:
        c.data.n_per_class = 0
        c.data.standardize = False
        c.optimizer.learning_rates = BUDGETS["paper"].mnist1d_rates
    if variant == "mnist1d_long":  # the budget of the reference CNN (6000 steps), stopped on validation
        c.seeds = 2
        c.optimizer.learning_rates = (3e-3, 1e-2, 3e-2)
        c.train.epochs = 170
        c.train.patience = 25
    return c


def get_sweep(variant: str = "mnist1d"):
    families = ["conv"] if variant in ("fashion", "mnist1d_long") else ["conv", "dense"]
    return product(axis("model.family", families), axis("optimizer.schedule", ["constant", "cosine"]))
