"""Data: sources (MNIST-1D, IDX files, TFDS) and pure transforms, as host arrays.

``load_dataset(data_config)`` is the one entry point the trainer uses: it loads
the source named ``data.name``, carves the validation split from the training
data (``n_val``, a seeded stratified draw), then applies the transforms the
config asks for (``n_per_class``, ``permute_pixels``, canvas), all seeded and
deterministic, to every split alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from research.data.dataset import Dataset, as_float
from research.data.sources import MNIST1D_POOLS, SOURCES, dataset_names, load_source
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


@dataclass(frozen=True)
class SourceShape:
    """What a source holds, known without its files: example shape, classes, split sizes."""

    input_shape: tuple[int, ...]
    num_classes: int
    n_train: int
    n_test: int


_IMAGES_28 = SourceShape((28, 28, 1), 10, 60000, 10000)
SOURCE_SHAPES = {
    "mnist1d": SourceShape((40, 1), 10, 4000, 1000),
    "fashion_mnist": _IMAGES_28,
    "mnist": _IMAGES_28,
    "tfds:mnist": _IMAGES_28,
    "tfds:fashion_mnist": _IMAGES_28,
    "tfds:cifar10": SourceShape((32, 32, 3), 10, 50000, 10000),
    **{name: SourceShape((40, 1), 10, n_train, n_test) for name, (n_train, n_test) in MNIST1D_POOLS.items()},
}


@dataclass(frozen=True)
class DatasetShape:
    input_shape: tuple[int, ...]
    num_classes: int
    splits: dict[str, int]


def dataset_shape(data_config) -> DatasetShape:
    """The shapes :func:`load_dataset` would give, computed from :data:`SOURCE_SHAPES`
    without reading any data (``cvd reproduce --plan`` sizes runs whose data are not here)."""
    if data_config.name not in SOURCE_SHAPES:
        raise UserError(f"no known shape for data set {data_config.name!r}; known: {', '.join(SOURCE_SHAPES)}")
    source = SOURCE_SHAPES[data_config.name]
    n_val = validation_size(int(data_config.n_val), source.n_train)
    train = source.n_train - n_val
    if data_config.n_per_class:
        train = min(train, int(data_config.n_per_class) * source.num_classes)
    test = min(int(data_config.n_test), source.n_test) if data_config.n_test else source.n_test
    spatial = source.input_shape[:-1]
    if data_config.canvas_size:
        spatial = (int(data_config.canvas_size),) * len(spatial)
    splits = {"train": train, **({"val": n_val} if n_val else {}), "test": test}
    return DatasetShape((*spatial, source.input_shape[-1]), source.num_classes, splits)


def load_dataset(data_config) -> Dataset:
    """Load and transform the data set described by a ``config.data`` block."""
    ds = load_source(data_config.name, data_config.dir)
    info = dict(ds.info)
    n_val = validation_size(int(data_config.n_val), len(ds.y_train))
    if n_val:
        held, rest = stratified_split(ds.y_train, n_val, int(data_config.val_seed))
        ds = ds.replace(x_train=ds.x_train[rest], y_train=ds.y_train[rest], x_val=ds.x_train[held], y_val=ds.y_train[held])
        info["n_val"] = n_val
    n_per_class = int(data_config.n_per_class)
    if n_per_class:
        x, y = per_class_subset(ds.x_train, ds.y_train, n_per_class, int(data_config.subset_seed))
        ds = ds.replace(x_train=x, y_train=y)
        info["n_per_class"] = n_per_class
    n_test = int(data_config.n_test)
    if n_test < 0:
        raise UserError(f"data.n_test must be >= 0 (0: the whole test split), got {n_test}")
    if n_test:
        ds = ds.replace(x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])
        info["n_test"] = min(n_test, len(ds.y_test))
    if data_config.permute_pixels:
        seed = int(data_config.permutation_seed)
        perm = pixel_permutation(ds.input_shape[:-1], seed)
        ds = ds.map_inputs(lambda x: permute_pixels(x, perm))
        info["pixel_permutation_seed"] = seed
    canvas = int(data_config.canvas_size)
    if canvas:
        region = int(data_config.canvas_region)
        spatial = ds.input_shape[:-1]
        if region < 0 or any(canvas - s < region for s in spatial):
            raise UserError(
                f"data.canvas_region={region} must be between 0 and canvas_size - example size "
                f"({canvas} - {min(spatial)} = {canvas - min(spatial)})"
            )
        rng = np.random.default_rng(int(data_config.subset_seed))
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
    "DatasetShape",
    "SOURCE_SHAPES",
    "SourceShape",
    "dataset_shape",
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
