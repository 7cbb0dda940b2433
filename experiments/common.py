"""Shared pieces of the study files: the base lattice config and the data sets.

A study's ``get_config(variant)`` starts from :func:`lattice_config`, and its
``get_sweep(variant)`` builds override dicts with ``research.sweep`` helpers
over :func:`datasets` bundles (a data set together with its geometry and
training length). ``variant`` is ``quick`` (2 CPU cores, minutes, no
download: MNIST-1D and a Fashion-MNIST subset) or ``full`` (GPU hours: full
Fashion-MNIST plus MNIST and CIFAR-10 through TFDS).
"""

from __future__ import annotations

from research.config import default_config
from research.data.sources import fashion_mnist_available

VARIANTS = ("quick", "full")


def check_variant(variant: str | None) -> str:
    variant = variant or "quick"
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return variant


def lattice_config(variant: str | None):
    """A conv lattice net on MNIST-1D, 3 seeds (quick) or 5 (full)."""
    variant = check_variant(variant)
    c = default_config()
    c.seeds = 3 if variant == "quick" else 5
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
    c.train.batch_size = 100
    c.train.epochs = 15 if variant == "quick" else 150
    c.train.checkpoint_every_steps = 2000
    return c


def _mnist1d(variant: str, width: int) -> dict:
    return {
        "data.name": "mnist1d",
        "data.n_per_class": 0,
        "data.standardize": False,
        "model.widths": (width,) * 3,
        "model.kernel_sizes": (5, 3, 3),
        "optimizer.learning_rate": 1e-2,
        "train.batch_size": 100,
        "train.epochs": 15 if variant == "quick" else 150,
    }


def _image(name: str, n_per_class: int, width: int, epochs: int, batch: int = 128) -> dict:
    return {
        "data.name": name,
        "data.n_per_class": n_per_class,
        "data.standardize": True,
        "model.widths": (width, 2 * width),
        "model.kernel_sizes": 3,
        "optimizer.learning_rate": 2e-3,
        "train.batch_size": batch,
        "train.epochs": epochs,
    }


def datasets(variant: str | None, width: int = 16, *, images: bool = True) -> list[dict]:
    """One override bundle per data set of the variant (``images=False``: MNIST-1D
    only). The quick variant adds Fashion-MNIST only when its files are present."""
    variant = check_variant(variant)
    bundles = [_mnist1d(variant, width)]
    if images and variant == "quick" and fashion_mnist_available():
        bundles.append(
            {
                **_image("fashion_mnist", 100, max(width // 2, 1), epochs=10, batch=50),
                "data.n_test": 2000,
                "train.eval_every_epochs": 5,
                "probes.examples": 300,
            }
        )
    elif images:
        bundles += [
            _image("fashion_mnist", 0, width, epochs=15),
            _image("tfds:mnist", 0, width, epochs=10),
            _image("tfds:cifar10", 0, 2 * width, epochs=30),
        ]
    return bundles


FAMILIES = ("conv", "full_kernel_conv", "locally_connected", "dense")
