"""Shared pieces of the study files: the base lattice config and the data sets.

A study's ``get_config(variant)`` starts from :func:`lattice_config`, and its
``get_sweep(variant)`` builds override dicts with ``research.sweep`` helpers
over :func:`datasets` bundles (a data set together with its geometry and
training length). ``variant`` is a profile:

* ``quick``: 2 CPU cores, minutes, no download (MNIST-1D and a Fashion-MNIST
  subset), 2 seeds x a 2-rate learning-rate grid: a smoke test of the pipeline;
* ``paper``: the same studies and data on CPU at the budgets whose verdicts
  the README publishes: 4 seeds x a 4-rate grid halved to 2 rates, MNIST-1D
  trained to a validation plateau within 40 epochs of cosine decay, a
  5000-image Fashion-MNIST arm (about 2.5 hours on 2 cores, resumable);
* ``full``: GPU hours: full Fashion-MNIST plus MNIST and CIFAR-10 through TFDS;
* ``gpu-smoke``: the quick points for 2 epochs at one learning rate: every
  study's pipeline on a GPU in minutes (``benchmarks/gpu.sh``).

Every run trains its learning-rate grid as replicas of one program
(``optimizer.learning_rates`` x ``seeds``); the analysis picks each run's rate on
the validation split.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flax import nnx

from research.config import default_config, load_config
from research.data import SOURCE_SHAPES, dataset_shape
from research.data.sources import fashion_mnist_available
from research.errors import unknown
from research.models import count_params, get_model
from research.train.spec import RunSpec


@dataclass(frozen=True)
class Budget:
    """What a profile spends: seeds, learning-rate grids and training lengths."""

    seeds: int
    mnist1d_epochs: int
    mnist1d_rates: tuple[float, ...]
    image_rates: tuple[float, ...]
    fashion_subset_per_class: int  # CPU profiles train on a Fashion-MNIST subset
    fashion_subset_epochs: int
    fashion_subset_val: int  # and validate on this many held-out training images
    sample_efficiency_steps: int
    # The training protocol: a run stops once every replica has gone ``patience`` epochs
    # without a better validation accuracy (0: never; the epochs above are then a bound), and
    # the learning rate follows ``schedule`` over those epochs. Measured on MNIST-1D
    # (benchmarks/README.md, "Training protocol"): the conv baseline needs 50-110 epochs.
    patience: int = 0
    schedule: str = "constant"
    # Successive halving over the rate grid: at this fraction of the epochs keep the better half
    # of the rates by validation (0: off; research/train/rate_choice.py).
    halve_rates_at: float = 0.0
    # The weight-sharing study's Fashion-MNIST arm (``datasets(..., fashion_arm=True)``): images a
    # class, epochs (a bound) and least first-layer width (the second layer is twice it); 0: the
    # Fashion-MNIST subset every other study uses.
    fashion_arm: tuple[int, int, int] = (0, 0, 0)
    # Test images the translation and position probes read on the CPU profiles' image runs (each
    # probe evaluates every one at every shift or position).
    image_probe_examples: int = 300
    # Whether ``datasets`` adds the Fashion-MNIST subset to the studies that take images. Quick
    # does not: its Fashion-MNIST is the position study's canvas alone, which keeps the image
    # path of every stage in its smoke test within 12 minutes on 2 cores (benchmarks/README.md,
    # "End to end").
    image_studies: bool = True
    # The MNIST-1D grid of the local lattice families (conv, locally connected) where it differs
    # from ``mnist1d_rates`` (empty: the same); :func:`within_budget` sets it.
    mnist1d_local_rates: tuple[float, ...] = ()


BUDGETS = {
    "quick": Budget(
        2,
        8,
        (3e-3, 1e-2),
        (1e-3, 3e-3),
        100,
        4,
        1000,
        600,
        patience=3,
        schedule="cosine",
        image_probe_examples=100,
        image_studies=False,
    ),
    # MNIST-1D bounded at 40 epochs under cosine decay (benchmarks/README.md, "Training protocol":
    # the conv baseline's test accuracy at its best validation epoch is the same at 40 and 170),
    # stopped on validation; each 4-rate half-decade grid halved to its better 2 rates after a
    # fifth of the epochs (grid extension widens it where the best rate is at an edge). The
    # weight-sharing study's Fashion-MNIST arm: 5000 training images, widths 16 and 32. 4 seeds
    # (5 planned at 2.9 h with the data-scaling study and the wide weight-sharing runs).
    "paper": Budget(
        4,
        40,
        (1e-3, 3e-3, 1e-2, 3e-2),
        (3e-4, 1e-3, 3e-3, 1e-2),
        100,
        15,
        1000,
        1500,
        patience=20,
        schedule="cosine",
        halve_rates_at=0.2,
        fashion_arm=(500, 12, 16),
        # In the paper run of 31194ff every MNIST-1D conv and locally connected net at the default
        # grid chose 0.03, its top, and every extension to 0.1 lost (results/paper/report.md,
        # "Learning rates chosen on validation"): 80 follow-up pieces, a fifth of the worker
        # time. Their grid starts a half-decade higher, so that 0.03 is interior.
        mnist1d_local_rates=(3e-3, 1e-2, 3e-2, 1e-1),
    ),
    "full": Budget(
        5,
        150,
        (1e-3, 3e-3, 1e-2, 3e-2),
        (3e-4, 1e-3, 3e-3, 1e-2),
        0,
        0,
        0,
        6000,
        patience=20,
        schedule="cosine",
        halve_rates_at=0.25,
    ),
    # Every study's pipeline end to end on a GPU in minutes (the quick points, 2 epochs, one rate):
    # checks that it runs there (lax.conv, vmapped replicas, Orbax, the report), measures nothing.
    "gpu-smoke": Budget(2, 2, (1e-2,), (1e-3,), 20, 2, 200, 60),
}
SMALL = ("quick", "gpu-smoke")  # profiles that shorten the studies with their own, smaller settings
VARIANTS = tuple(BUDGETS)


def parse_variant(variant: str | None, names=VARIANTS, default: str = "quick", flags=()) -> tuple[str, set[str]]:
    """The one variant parser of the study files: ``"name[,flag...]"`` -> ``(name, {flags})``,
    each checked (a one-line error naming the valid ones)."""
    name, *given = (variant or default).split(",")
    if name not in names:
        raise unknown("variant", name, names)
    for flag in given:
        if flag not in flags:
            raise unknown(f"flag of variant {name!r}", flag, flags)
    return name, set(given)


def check_variant(variant: str | None) -> str:
    """A profile name (quick, paper, full); the default is quick."""
    return parse_variant(variant)[0]


def on_cpu(variant: str | None) -> bool:
    """The CPU-sized profiles (quick, paper, gpu-smoke) share their studies' points and data sets."""
    return check_variant(variant) != "full"


def lattice_config(variant: str | None):
    """A conv lattice net on MNIST-1D with the profile's seeds and learning-rate grid."""
    budget = BUDGETS[check_variant(variant)]
    c = default_config()
    c.seeds = budget.seeds
    c.model.name = "lattice"
    c.model.family = "conv"
    c.model.widths = (16, 16, 16)
    c.model.kernel_sizes = (5, 3, 3)
    c.model.strides = 2
    c.model.padding = "SAME"
    c.model.pooling = "none"
    c.model.head = "flatten"
    c.data.name = "mnist1d"
    c.optimizer.learning_rate = 1e-2
    c.optimizer.learning_rates = budget.mnist1d_rates
    c.train.batch_size = 100
    c.train.epochs = budget.mnist1d_epochs
    c.train.patience = budget.patience
    c.train.halve_rates_at = budget.halve_rates_at
    c.optimizer.schedule = budget.schedule
    c.train.checkpoint_every_steps = 2000
    return c


def _mnist1d(variant: str, width: int) -> dict:
    return {
        "data.name": "mnist1d",
        "data.n_per_class": 0,
        "data.standardize": False,
        "model.widths": (width,) * 3,
        "model.kernel_sizes": (5, 3, 3),
        "optimizer.learning_rates": BUDGETS[variant].mnist1d_rates,
        "train.batch_size": 100,
        "train.epochs": BUDGETS[variant].mnist1d_epochs,
        "train.patience": BUDGETS[variant].patience,
        "train.halve_rates_at": BUDGETS[variant].halve_rates_at,
    }


def _image(name: str, n_per_class: int, width: int, epochs: int, rates: tuple[float, ...], batch: int = 128) -> dict:
    return {
        "data.name": name,
        "data.n_per_class": n_per_class,
        "data.standardize": True,
        "model.widths": (width, 2 * width),
        "model.kernel_sizes": 3,
        "optimizer.learning_rates": rates,
        "train.batch_size": batch,
        "train.epochs": epochs,
    }


def datasets(variant: str | None, width: int = 16, *, images: bool = True, fashion_arm: bool = False) -> list[dict]:
    """One override bundle per data set of the variant (``images=False``, or a budget without
    ``image_studies``: MNIST-1D only). The CPU profiles add a Fashion-MNIST subset only when its files are present:
    the budget's small subset at half the width, or with ``fashion_arm`` (the weight-sharing
    study) the budget's Fashion-MNIST arm where it has one, at ``width`` or its least width."""
    variant = check_variant(variant)
    budget = BUDGETS[variant]
    bundles = [_mnist1d(variant, width)]
    images = images and budget.image_studies
    if images and on_cpu(variant) and fashion_mnist_available():
        per_class, epochs, least_width = budget.fashion_arm if fashion_arm and budget.fashion_arm[0] else (0, 0, 0)
        per_class, epochs = per_class or budget.fashion_subset_per_class, epochs or budget.fashion_subset_epochs
        fashion_width = max(width, least_width) if least_width else max(width // 2, 1)
        every = max(1, epochs // 5)
        bundles.append(
            {
                **_image("fashion_mnist", per_class, fashion_width, epochs, budget.image_rates, 50),
                "data.n_test": 2000,
                "data.n_val": budget.fashion_subset_val,
                "train.eval_every_epochs": every,
                "train.patience": 2 * every if budget.patience else 0,  # two evaluations without a better one
                "train.halve_rates_at": budget.halve_rates_at,
                "probes.examples": budget.image_probe_examples,
            }
        )
    elif images and not on_cpu(variant):
        bundles += [
            _image("fashion_mnist", 0, width, 15, budget.image_rates),
            _image("tfds:mnist", 0, width, 10, budget.image_rates),
            _image("tfds:cifar10", 0, 2 * width, 20, budget.image_rates),
        ]
        for bundle in bundles[1:]:  # image runs hold one checkpoint while they train, none once done and probed
            bundle.update({"train.keep_checkpoints": 1, "train.keep_final_checkpoint": False, "train.patience": 5})
    return bundles


# The full profile's size limit, for one GPU of 80 GB and 20 replicas a run: parameters and
# Adam state of every replica (12 bytes a parameter) within 25% of the memory and one
# checkpoint within 2 GB: at most 8M parameters a replica (1.9 GB a checkpoint). Where the
# lattice explodes (dense and locally connected layers on 28x28 and 32x32 images at large
# widths) the full profile leaves those points out (``--plan`` lists what remains).
FULL_MAX_PARAMS = 8_000_000


LOCAL_FAMILIES = ("conv", "locally_connected")


def local_rates(variant: str | None, runs: list[dict], base) -> list[dict]:
    """``runs`` with the budget's ``mnist1d_local_rates`` for every MNIST-1D lattice run of a
    :data:`LOCAL_FAMILIES` family that trains the profile's default MNIST-1D grid."""
    budget = BUDGETS[check_variant(variant)]
    if not budget.mnist1d_local_rates:
        return runs

    def value(overrides: dict, key: str):
        section, name = key.split(".")
        return overrides.get(key, base[section].get(name))

    return [
        {**r, "optimizer.learning_rates": budget.mnist1d_local_rates}
        if value(r, "model.name") == "lattice"
        and value(r, "model.family") in LOCAL_FAMILIES
        and str(value(r, "data.name")).startswith("mnist1d")
        and tuple(value(r, "optimizer.learning_rates")) == budget.mnist1d_rates
        else r
        for r in runs
    ]


def within_budget(variant: str | None, runs: list[dict], base) -> list[dict]:
    """``runs`` as the profile trains them: the local families' MNIST-1D grid (:func:`local_rates`),
    and without the runs whose model has more than :data:`FULL_MAX_PARAMS` parameters (full
    profile only; the CPU profiles are sized by their budgets). ``base``: the study's config."""
    runs = local_rates(variant, runs, base)
    if on_cpu(variant):
        return runs
    kept = []
    for overrides in runs:
        config = load_config(base, overrides)
        if config.task != "train" or _params(config) <= FULL_MAX_PARAMS:
            kept.append(overrides)
    return kept


_PARAMS: dict[str, int] = {}  # model and data config (JSON) -> parameters a replica


def _params(config) -> int:
    """Parameters a replica of the run's model, built abstractly as the trainer builds it."""
    key = config.model.to_json(sort_keys=True) + config.data.to_json(sort_keys=True)
    if key not in _PARAMS:
        _PARAMS[key] = count_params(RunSpec.build(config, dataset_shape(config.data)).initial.model)
    return _PARAMS[key]


def bundle_widths(bundle: dict, width: int) -> tuple[int, ...]:
    """The layer widths a data-set bundle uses at ``width`` (MNIST-1D: 3 equal layers; images: w, 2w)."""
    return (width,) * 3 if bundle["data.name"] == "mnist1d" else (width, 2 * width)


def lattice_size(bundle: dict, family: str, width: int, measure: Callable[[nnx.Module], int]) -> int:
    """``measure`` (``count_params``, ``count_macs``) of the bundle's lattice net at ``width``, from abstract shapes."""
    kernel_sizes = bundle["model.kernel_sizes"]
    kernel_sizes = tuple(kernel_sizes) if isinstance(kernel_sizes, list) else kernel_sizes  # hashable, for the cache
    return _lattice_size(bundle["data.name"], bundle_widths(bundle, width), kernel_sizes, family, measure)


@functools.cache
def _lattice_size(data: str, widths: tuple[int, ...], kernel_sizes, family: str, measure: Callable[[nnx.Module], int]) -> int:
    """Cached: the matched-width searches of the weight-sharing and compute studies build the same
    nets each time a sweep is listed (by the plan, the reproduction and the sweep)."""
    source = SOURCE_SHAPES[data]
    fields = dict(widths=widths, kernel_sizes=kernel_sizes, strides=2, padding="SAME")
    model = lambda: get_model("lattice", source.input_shape, source.num_classes, nnx.Rngs(0), family=family, **fields)
    return measure(nnx.eval_shape(model))


def matched_width(bundle: dict, family: str, target: int, measure: Callable[[nnx.Module], int]) -> int:
    """The width at which ``family``'s ``measure`` comes closest to ``target`` (it grows with width: bisect)."""
    low, high = 1, 512
    while low < high:
        mid = (low + high) // 2
        if lattice_size(bundle, family, mid, measure) < target:
            low = mid + 1
        else:
            high = mid
    return min({max(1, low - 1), low}, key=lambda w: abs(lattice_size(bundle, family, w, measure) - target))
