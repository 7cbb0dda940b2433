"""C8: does conv's advantage over dense shrink as the training set grows?

    cvd sweep --config experiments/data_scaling.py:quick --workdir runs/data_scaling

Every family's test error against training-set size on MNIST-1D made by the
generator's own process offline (``mnist1d.make_dataset`` with a larger
``num_samples``; research/data/sources.py, ``MNIST1D_POOLS``): one pool per
profile, its test split fixed for every size, the validation split carved from
its training split as everywhere (the default rule: 10%, at most 5000, the same
examples at every size), and each training set ``n_per_class = n / 10`` examples
of every class drawn from the rest by the fixed ``subset_seed``. The training sets
are drawn from the same generated pool, not nested (a smaller set need not lie
inside a larger one). Families: conv, locally connected and dense lattice nets at
matched shapes (widths 16, kernels 5-3-3, stride 2, flatten head) and the MNIST-1D
reference MLP (40-100-100-10), each trained without and with random circular
shifts of up to 4 positions, at its own learning rate chosen on validation (the
profile's grid, extended past an edge in paper and full).

Training length: every size trains at least ``steps`` optimizer steps, rounded
up to whole epochs, within ``min_epochs..max_epochs``, stopped on a validation
plateau (three evaluations, ten a run, without a better one); the schedule is
the profile's (cosine). Sizes and costs (``cvd reproduce --plan``):

* quick: the 6000-example pool, sizes 1000 and 4000, conv and dense only, no
  augmentation arm, 4 runs (a smoke test: about a minute on 2 CPU cores, most of
  it each run's compilation; two sizes make a line, not a power law);
* paper: the 70000-example pool, 1000 to 64000 in steps of 4x (4 sizes, so that
  the paper profile fits its 2.5 hours: 7 octave sizes planned at 24 minutes), every
  family without augmentation and conv and dense with it too, 24 runs, at least 700
  steps (2 epochs at 64000); about 14 minutes on 2 cores by the plan (before early
  stopping), at the price of few epochs at the largest sizes (the analysis flags a
  run still improving, and such runs never decide C8);
* full: the 1,040,000-example pool (about 11 minutes to generate, once), 1000 to
  1,024,000 in octaves (11 sizes), 88 runs, at least 20 epochs and 6000 steps, to a
  validation plateau within 150 epochs (0.2 GPU-hours by the plan).

Expected: errors fall as a power law ``a n^-b``; the analysis (analysis/scaling.py,
claim C8) fits it per family and seed and decides on the slope of
log(error_dense / error_conv) against log n.
"""

import math

import ml_collections

from experiments.common import BUDGETS, check_variant, lattice_config, within_budget
from research.data import SOURCE_SHAPES, validation_size
from research.errors import UserError
from research.sweep import axis, product

POOL = {
    "quick": "mnist1d_scaling_small",
    "gpu-smoke": "mnist1d_scaling_small",
    "paper": "mnist1d_scaling",
    "full": "mnist1d_scaling_large",
}
SIZES = {
    "quick": (1000, 4000),
    "gpu-smoke": (1000, 4000),
    "paper": tuple(1000 * 4**k for k in range(4)),
    "full": tuple(1000 * 2**k for k in range(11)),
}
AUGMENT = {"quick": (0,), "gpu-smoke": (0,), "paper": (0, 4), "full": (0, 4)}
# The smoke profiles train only the pair C8 decides on (a run's fixed cost, not its steps, is
# what they spend); paper trains only that pair with augmentation too (time). Names: the
# lattice family, "mlp" for the reference MLP.
TRAINED = {"quick": ("conv", "dense"), "gpu-smoke": ("conv", "dense")}
AUGMENTED = {"paper": ("conv", "dense")}
# (steps at least, min epochs, max epochs) a run; gpu-smoke keeps its 2 epochs.
LENGTH = {"quick": (150, 2, 8), "gpu-smoke": (0, 2, 2), "paper": (700, 2, 150), "full": (6000, 20, 150)}
BATCH = 100
WIDTH = 16
LATTICE = {
    "model.name": "lattice",
    "model.widths": (WIDTH,) * 3,
    "model.kernel_sizes": (5, 3, 3),
    "model.strides": 2,
    "model.padding": "SAME",
    "model.pooling": "none",
    "model.head": "flatten",
}
FAMILIES = [*({**LATTICE, "model.family": f} for f in ("conv", "locally_connected", "dense")), {"model.name": "mnist1d_mlp"}]


def get_config(variant: str = "quick"):
    """The profile's lattice training setup with the reference MLP as the base model: the
    lattice runs set every lattice field (the MLP takes none of them)."""
    c = lattice_config(variant)
    c.model = ml_collections.ConfigDict({"name": "mnist1d_mlp"}, type_safe=False)
    c.data.name = POOL[check_variant(variant)]
    c.train.batch_size = BATCH
    return c


def epochs_for(n: int, steps: int, min_epochs: int, max_epochs: int) -> int:
    """Whole epochs of ``n`` examples giving at least ``steps`` steps, within the bounds."""
    per_epoch = max(1, math.ceil(n / BATCH))
    return min(max_epochs, max(min_epochs, math.ceil(steps / per_epoch)))


def size_points(variant: str) -> list[dict]:
    """One override bundle per training-set size of the profile."""
    variant = check_variant(variant)
    pool = POOL[variant]
    source = SOURCE_SHAPES[pool]
    available = source.n_train - validation_size(-1, source.n_train)
    patience = BUDGETS[variant].patience
    points = []
    for n in SIZES[variant]:
        if n > available or n % source.num_classes:
            raise UserError(f"size {n} does not fit pool {pool} ({available} examples after validation) in whole classes")
        epochs = epochs_for(n, *LENGTH[variant])
        every = max(1, epochs // 10)
        points.append(
            {
                "data.name": pool,
                "data.n_per_class": n // source.num_classes,
                "data.standardize": False,
                "train.epochs": epochs,
                "train.eval_every_epochs": every,
                "train.patience": 3 * every if patience else 0,
            }
        )
    return points


def get_sweep(variant: str = "quick"):
    variant = check_variant(variant)
    runs = product(size_points(variant), FAMILIES, axis("train.augment_shift", AUGMENT[variant]))
    arm = lambda run: run.get("model.family", "mlp")
    runs = [r for r in runs if arm(r) in TRAINED.get(variant, (arm(r),))]
    runs = [r for r in runs if not r["train.augment_shift"] or arm(r) in AUGMENTED.get(variant, (arm(r),))]
    return within_budget(variant, runs, get_config(variant))
