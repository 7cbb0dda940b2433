"""Data: sources (MNIST-1D, IDX files, TFDS) and pure transforms, as host arrays.

``load_dataset(data_config)`` is the one entry point the trainer uses: it loads
the source named ``data.name``, then applies the transforms the config asks
for (``n_per_class``, ``permute_pixels``), all seeded and deterministic.
"""

from __future__ import annotations

import numpy as np

from research.data.dataset import Dataset, as_float
from research.data.sources import SOURCES, dataset_names, load_source
from research.data.transforms import per_class_subset, permute_pixels, pixel_permutation, place_on_canvas, shift


def load_dataset(data_config) -> Dataset:
    """Load and transform the data set described by a ``config.data`` block."""
    ds = load_source(data_config.name, data_config.get("dir", ""))
    info = dict(ds.info)
    n_per_class = int(data_config.get("n_per_class", 0))
    if n_per_class:
        x, y = per_class_subset(ds.x_train, ds.y_train, n_per_class, int(data_config.get("subset_seed", 0)))
        ds = ds.replace(x_train=x, y_train=y)
        info["n_per_class"] = n_per_class
    if data_config.get("permute_pixels", False):
        seed = int(data_config.get("permutation_seed", 0))
        perm = pixel_permutation(ds.input_shape[:-1], seed)
        ds = ds.replace(x_train=permute_pixels(ds.x_train, perm), x_test=permute_pixels(ds.x_test, perm))
        info["pixel_permutation_seed"] = seed
    return ds.replace(info=info)


def model_inputs(ds: Dataset, standardize: bool = False):
    """Float32 train and test inputs; ``standardize`` uses the training set's
    scalar mean and standard deviation for both splits."""
    x_train, x_test = as_float(ds.x_train), as_float(ds.x_test)
    if standardize:
        mean, std = x_train.mean(dtype=np.float64), x_train.std(dtype=np.float64)
        x_train = ((x_train - mean) / std).astype(np.float32)
        x_test = ((x_test - mean) / std).astype(np.float32)
    return x_train, x_test


__all__ = [
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
]
