"""C1: does weight sharing pay off most when data are scarce?

    cvd sweep --config experiments/sample_efficiency.py:quick --workdir runs/sample_efficiency

Training-set size from about 1% to 100% of the training split left after the
validation split (examples per class), for conv, locally connected and dense,
with the same number of optimizer steps at every size, rounded up to whole
epochs (the epochs scale inversely). quick: MNIST-1D (4/20/100 per class and
all 4000), 600 steps, 12 runs; paper: 1500 steps. full: also Fashion-MNIST,
6000 steps.
"""

import math

from experiments.common import BUDGETS, check_variant, datasets, lattice_config, on_cpu, within_budget
from research.data import SOURCE_SHAPES, validation_size
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.train.batch_size = 40
    return c


def _size_points(bundle: dict, steps: int, batch: int) -> list[dict]:
    """Sizes as fractions of the training split left after the validation split is carved
    (100% is all of it), each trained for the whole epochs that give at least ``steps`` steps."""
    source = SOURCE_SHAPES[bundle["data.name"]]
    total = source.n_train - validation_size(int(bundle.get("data.n_val", -1)), source.n_train)
    classes = source.num_classes
    points = []
    for fraction in (0.01, 0.05, 0.25, 1.0):
        n_per_class = 0 if fraction == 1.0 else max(1, round(total * fraction / classes))
        examples = total if n_per_class == 0 else classes * n_per_class
        epochs = max(1, math.ceil(steps / max(1, examples // batch)))
        points.append(
            {
                **bundle,
                "data.n_per_class": n_per_class,
                "train.batch_size": batch,
                "train.epochs": epochs,
                "train.eval_every_epochs": max(1, epochs // 10),
                # three evaluations without a better one (epochs differ by size; evaluations do not)
                "train.patience": 3 * max(1, epochs // 10) if bundle.get("train.patience") else 0,
            }
        )
    return points


def _sweep(variant: str) -> list[dict]:
    quick = on_cpu(variant)
    steps = BUDGETS[check_variant(variant)].sample_efficiency_steps
    bundles = (
        datasets(variant, images=False)
        if quick
        else [b for b in datasets(variant) if b["data.name"] in ("mnist1d", "fashion_mnist")]
    )
    sizes = [point for bundle in bundles for point in _size_points(bundle, steps, 40)]
    return product(sizes, axis("model.family", ["conv", "locally_connected", "dense"]))


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
