"""Data sources: each returns a :class:`~research.data.dataset.Dataset`.

* ``mnist1d``: generated offline by the ``mnist1d`` package's
  ``make_dataset`` (never its downloading ``get_dataset``), cached on disk;
  ``mnist1d_scaling*``: larger pools from the same generator (:data:`MNIST1D_POOLS`).
* ``fashion_mnist`` / ``mnist``: IDX files (gzipped or not). Fashion-MNIST
  defaults to Debian's ``dataset-fashion-mnist`` package.
* ``tfds:<name>``: any TFDS image-classification data set prepared on disk,
  read through ``tfds.data_source`` (random access, no TensorFlow needed).

A missing data set raises a :class:`~research.errors.UserError` that says how
to get it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from research.atomic import atomic_write_bytes, atomic_write_json, read_json
from research.data.dataset import Dataset
from research.errors import UserError
from research.registry import Registry

SOURCES: Registry = Registry("dataset")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_DIR = "/usr/share/datasets/mnist"
TFDS_PREFIX = "tfds:"


def fashion_mnist_available(data_dir: str = "") -> bool:
    """Whether Fashion-MNIST's IDX files are on this machine (no download needed)."""
    return source_available("fashion_mnist", data_dir)


def cache_dir() -> Path:
    """Where generated data sets are cached (``$CVD_CACHE`` overrides)."""
    return Path(os.environ.get("CVD_CACHE", Path.home() / ".cache" / "conv-vs-dense"))


def _generated(spec: dict, data_dir: str = "") -> dict[str, np.ndarray]:
    """``mnist1d.make_dataset`` with arguments ``spec`` (its defaults overridden), cached on disk
    by a hash of them: the arrays of a Dataset (train and test splits, float32, channel last)."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(data_dir or cache_dir()) / f"mnist1d-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    # Lazy: mnist1d.data imports matplotlib.pyplot, scipy and requests, needed only to generate.
    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    args = ObjectView({**get_dataset_args(as_dict=True), **spec})
    raw = make_dataset(args)
    arrays = {
        "x_train": raw["x"].astype(np.float32)[..., None],
        "y_train": raw["y"].astype(np.int32),
        "x_test": raw["x_test"].astype(np.float32)[..., None],
        "y_test": raw["y_test"].astype(np.int32),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return arrays


def _mnist1d_defaults() -> dict:
    """The generator's default arguments (less its download URL). Importing ``mnist1d`` takes
    about 2 s (matplotlib, scipy), a cost for every process that loads a cached data set; so
    the installed version's defaults are kept in the cache directory once read, and read
    from there."""
    try:
        path = cache_dir() / f"mnist1d-defaults-{metadata.version('mnist1d')}.json"
    except metadata.PackageNotFoundError:  # a source checkout without install metadata: no file to key it by
        path = None
    stored = read_json(path) if path is not None else None  # missing or damaged: read them from the generator
    if isinstance(stored, dict) and stored and "url" not in stored:
        return stored
    from mnist1d.data import get_dataset_args

    defaults = {k: v for k, v in get_dataset_args(as_dict=True).items() if k != "url"}
    if path is None:
        return defaults
    with contextlib.suppress(OSError):  # a cache that cannot be written: read them again next time
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, defaults)
    return defaults


def _mnist1d_spec(**changes) -> dict:
    """The generator's default arguments (less its download URL), with ``changes``."""
    return {**_mnist1d_defaults(), **changes}


@SOURCES.register("mnist1d")
def mnist1d(data_dir: str = "") -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2020) with the paper's default arguments: 4000/1000 split, length 40."""
    spec = _mnist1d_spec()
    arrays = _generated(spec, data_dir)
    return Dataset("mnist1d", num_classes=10, info={"generator": "mnist1d.make_dataset", **spec}, **arrays)


# Larger MNIST-1D pools for the data-scaling study (C8): name -> (training examples, test
# examples). Each is ONE call of the generator's own process (make_dataset, seed 42, every
# other argument at its default) with num_samples = train + test, split as make_dataset splits
# (its shuffled order, the first train_split to training): the test set is fixed within a pool,
# and every training set of the study is drawn from the same pool. Pools of different sizes
# are different draws of the same process (make_dataset generates class by class).
MNIST1D_POOLS = {
    "mnist1d_scaling_small": (6_000, 2_000),  # quick: sizes up to 4000 (after 600 for validation)
    "mnist1d_scaling": (70_000, 10_000),  # paper: up to 64000 (after 5000 for validation)
    "mnist1d_scaling_large": (1_040_000, 20_000),  # full: up to 1024000 (about 11 minutes to generate, once)
}


def mnist1d_pool(name: str, data_dir: str = "") -> Dataset:
    """One of :data:`MNIST1D_POOLS`: generated offline (never ``get_dataset``'s download), cached."""
    n_train, n_test = MNIST1D_POOLS[name]
    total = n_train + n_test
    spec = _mnist1d_spec(num_samples=total, train_split=n_train / total)
    arrays = _generated(spec, data_dir)
    if len(arrays["y_train"]) != n_train or len(arrays["y_test"]) != n_test:  # make_dataset rounds its split
        raise UserError(f"{name}: the generator split {total} examples as {len(arrays['y_train'])}/{len(arrays['y_test'])}")
    return Dataset(name, num_classes=10, info={"generator": "mnist1d.make_dataset", **spec}, **arrays)


for _pool in MNIST1D_POOLS:
    SOURCES.register(_pool, lambda data_dir="", name=_pool: mnist1d_pool(name, data_dir))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + int(np.prod(shape)):
        raise UserError(f"{path} is truncated or corrupt: header says shape {shape}, file has {len(data) - header} values")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (directory / name).exists():
            return directory / name
    return None


def idx_dataset(name: str, directory: str, how_to_get: str) -> Dataset:
    """Load the four MNIST-layout IDX files from ``directory``."""
    root = Path(directory)
    stems = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    paths = {key: _find_idx(root, stem) for key, stem in stems.items()}
    missing = [stems[k] for k, p in paths.items() if p is None]
    if missing:
        raise UserError(f"{name}: missing {', '.join(missing)} in {root}. {how_to_get}")
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]):
            raise UserError(f"{name}: {split} images and labels differ in count in {root}")
        arrays[f"x_{split}"] = arrays[f"x_{split}"][..., None]
        arrays[f"y_{split}"] = arrays[f"y_{split}"].astype(np.int32)
    return Dataset(name, num_classes=10, info={"source": str(root)}, **arrays)


# IDX data sets: name -> (default directory, how to get the files). Fashion-MNIST (Xiao et
# al. 2017) defaults to Debian's package; MNIST needs ``data.dir`` (or ``tfds:mnist``).
IDX_SOURCES = {
    "fashion_mnist": (
        FASHION_MNIST_DIR,
        "Install Debian's package (apt-get install dataset-fashion-mnist) or point --config.data.dir at the IDX files.",
    ),
    "mnist": (
        MNIST_DIR,
        "Point --config.data.dir at the IDX files, or use data.name='tfds:mnist' after `tfds build mnist --file_format=array_record`.",
    ),
}
for _name, (_directory, _how) in IDX_SOURCES.items():
    SOURCES.register(
        _name, lambda data_dir="", name=_name, directory=_directory, how=_how: idx_dataset(name, data_dir or directory, how)
    )


def tfds_dataset(tfds_name: str, data_dir: str = "") -> Dataset:
    """Any TFDS image-classification data set, prepared on disk in array_record format."""
    try:  # lazy: a large import, needed only for tfds: data sets
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError(
            f"data set tfds:{tfds_name} needs tensorflow_datasets: pip install tensorflow-datasets "
            "(a dependency of this package: pip install -e . installs it)"
        ) from None

    kwargs = {"data_dir": data_dir} if data_dir else {}
    try:
        builder = tfds.builder(tfds_name, **kwargs)
        label = builder.info.features["label"]
        sources = tfds.data_source(tfds_name, split=["train", "test"], download=False, **kwargs)
    except Exception as e:  # TFDS raises many kinds; all mean "not available here"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"TFDS data set {tfds_name!r} is not available offline ({first_line[:160]}). "
            f"On a machine with internet: tfds build {tfds_name} --file_format=array_record"
            + (f" --data_dir {data_dir}" if data_dir else "")
        ) from None
    arrays = {}
    for split, source in zip(("train", "test"), sources):
        examples = [source[i] for i in range(len(source))]
        arrays[f"x_{split}"] = np.stack([np.asarray(ex["image"]) for ex in examples])
        arrays[f"y_{split}"] = np.asarray([ex["label"] for ex in examples], dtype=np.int32)
    return Dataset(f"{TFDS_PREFIX}{tfds_name}", num_classes=int(label.num_classes), info={"source": "tfds"}, **arrays)


def load_source(name: str, data_dir: str = "") -> Dataset:
    """Load data set ``name`` (a registered source or ``tfds:<name>``)."""
    if name.startswith(TFDS_PREFIX):
        return tfds_dataset(name.removeprefix(TFDS_PREFIX), data_dir)
    return SOURCES.get(name)(data_dir)


def source_available(name: str, data_dir: str = "") -> bool:
    """Whether data set ``name``'s files are on this machine, checked without reading them
    (MNIST-1D is generated, so always)."""
    if name in IDX_SOURCES:
        return _find_idx(Path(data_dir or IDX_SOURCES[name][0]), "t10k-images-idx3-ubyte") is not None
    if name.startswith(TFDS_PREFIX):
        root = Path(data_dir or os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets"))
        prepared = root / name.removeprefix(TFDS_PREFIX)
        return prepared.is_dir() and any(prepared.iterdir())
    return name in SOURCES


def dataset_names() -> list[str]:
    return [*SOURCES.names(), f"{TFDS_PREFIX}<name>"]
