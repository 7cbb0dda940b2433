"""Data: sources (MNIST-1D, IDX files, TFDS) and pure transforms, as host arrays.

``load_dataset(data_config)`` is the one entry point the trainer uses: it loads
the source named ``data.name``, carves the validation split from the training
data (``n_val``, a seeded stratified draw), then applies the transforms the
config asks for (``n_per_class``, ``permute_pixels``, canvas), all seeded and
deterministic, to every split alike.
"""

from __future__ import annotations

import numpy as np

from research.data.dataset import Dataset, as_float
from research.data.sources import SOURCES, dataset_names, load_source
from research.data.transforms import (
    per_class_subset,
    permute_pixels,
    pixel_permutation,
    place_on_canvas,
    shift,
    shift_each,
    stratified_split,
)
from research.errors import UserError

# data.n_val = -1 (the default) holds out this fraction of the training split, at most
# VAL_MAX examples: 400 of MNIST-1D's 4000, 5000 of Fashion-MNIST's 60000.
VAL_FRACTION, VAL_MAX = 0.1, 5000


def validation_size(n_val: int, n_train: int) -> int:
    """Examples held out for validation: ``n_val``, or the default rule when it is -1."""
    if n_val == -1:
        return min(VAL_MAX, round(VAL_FRACTION * n_train))
    if n_val < 0:
        raise UserError(
            f"data.n_val must be -1 (default: 10% of the training split, at most {VAL_MAX}), 0 (none) or a count, got {n_val}"
        )
    return n_val


def load_dataset(data_config) -> Dataset:
    """Load and transform the data set described by a ``config.data`` block."""
    ds = load_source(data_config.name, data_config.get("dir", ""))
    info = dict(ds.info)
    # A config.json written before validation splits existed has no n_val: it trained on all of it.
    n_val = validation_size(int(data_config.get("n_val", 0)), len(ds.y_train))
    if n_val:
        held, rest = stratified_split(ds.y_train, n_val, int(data_config.get("val_seed", 0)))
        ds = ds.replace(x_train=ds.x_train[rest], y_train=ds.y_train[rest], x_val=ds.x_train[held], y_val=ds.y_train[held])
        info["n_val"] = n_val
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
        ds = ds.map_inputs(lambda x: permute_pixels(x, perm))
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
        ds = ds.map_inputs(lambda x: place_on_canvas(x, (canvas,) * len(spatial), rng=rng, region=bounds)[0])
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


def model_inputs(ds: Dataset, standardize: bool = False) -> dict[str, np.ndarray]:
    """Float32 inputs of every split (``train``, ``val`` when carved, ``test``),
    normalised as :func:`input_normalizer` says."""
    normalize = input_normalizer(ds, standardize)
    return {name: normalize(x) for name, x in ds.inputs().items()}


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
    "stratified_split",
    "validation_size",
]
