"""Data: sources (MNIST-1D, IDX files, TFDS) and pure transforms, as host arrays.

``load_dataset(data_config)`` is the one entry point the trainer uses: it loads
the source named ``data.name``, then applies the transforms the config asks
for (``n_per_class``, ``permute_pixels``), all seeded and deterministic.
"""

from __future__ import annotations

import numpy as np

from research.data.dataset import Dataset, as_float
from research.data.sources import SOURCES, dataset_names, load_source
from research.data.transforms import per_class_subset, permute_pixels, pixel_permutation, place_on_canvas, shift, shift_each
from research.errors import UserError


def load_dataset(data_config) -> Dataset:
    """Load and transform the data set described by a ``config.data`` block."""
    ds = load_source(data_config.name, data_config.get("dir", ""))
    info = dict(ds.info)
    n_per_class = int(data_config.get("n_per_class", 0))
    if n_per_class:
        x, y = per_class_subset(ds.x_train, ds.y_train, n_per_class, int(data_config.get("subset_seed", 0)))
        ds = ds.replace(x_train=x, y_train=y)
        info["n_per_class"] = n_per_class
    n_test = int(data_config.get("n_test", 0))
    if n_test < 0:
        raise UserError(f"data.n_test must be >= 0 (0: the whole test split), got {n_test}")
    if n_test:
        ds = ds.replace(x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])
        info["n_test"] = min(n_test, len(ds.y_test))
    if data_config.get("permute_pixels", False):
        seed = int(data_config.get("permutation_seed", 0))
        perm = pixel_permutation(ds.input_shape[:-1], seed)
        ds = ds.replace(x_train=permute_pixels(ds.x_train, perm), x_test=permute_pixels(ds.x_test, perm))
        info["pixel_permutation_seed"] = seed
    canvas = int(data_config.get("canvas_size", 0))
    if canvas:
        region = int(data_config.get("canvas_region", 0))
        spatial = ds.input_shape[:-1]
        if region < 0 or any(canvas - s < region for s in spatial):
            raise UserError(
                f"data.canvas_region={region} must be between 0 and canvas_size - example size "
                f"({canvas} - {min(spatial)} = {canvas - min(spatial)})"
            )
        rng = np.random.default_rng(int(data_config.get("subset_seed", 0)))
        bounds = [(0, region)] * len(spatial)
        x_train, _ = place_on_canvas(ds.x_train, (canvas,) * len(spatial), rng=rng, region=bounds)
        x_test, _ = place_on_canvas(ds.x_test, (canvas,) * len(spatial), rng=rng, region=bounds)
        ds = ds.replace(x_train=x_train, x_test=x_test)
        info["canvas"] = {"size": canvas, "region": region, "example_spatial": list(spatial)}
    return ds.replace(info=info)


def input_normalizer(ds: Dataset, standardize: bool = False):
    """The map from stored examples to model inputs: float32, and with
    ``standardize`` minus the training set's scalar mean over its standard deviation."""
    if not standardize:
        return as_float
    x_train = as_float(ds.x_train)
    mean, std = x_train.mean(dtype=np.float64), x_train.std(dtype=np.float64)
    return lambda x: ((as_float(x) - mean) / std).astype(np.float32)


def model_inputs(ds: Dataset, standardize: bool = False):
    """Float32 train and test inputs, normalised as :func:`input_normalizer` says."""
    normalize = input_normalizer(ds, standardize)
    return normalize(ds.x_train), normalize(ds.x_test)


__all__ = [
    "input_normalizer",
    "model_inputs",
    "SOURCES",
    "Dataset",
    "as_float",
    "dataset_names",
    "load_dataset",
    "load_source",
    "per_class_subset",
    "permute_pixels",
    "pixel_permutation",
    "place_on_canvas",
    "shift",
    "shift_each",
]
