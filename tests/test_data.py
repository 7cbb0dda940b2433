"""Data sources and transforms: shapes, determinism, exact transform semantics, clear errors."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research.data import load_dataset, load_source
from research.data.sources import read_idx
from research.data.transforms import per_class_subset, permute_pixels, pixel_permutation, place_on_canvas, shift
from research.errors import UserError
from research.models import get_model

ROOT = Path(__file__).resolve().parents[1]


def _write_idx(path, array: np.ndarray, gz: bool = True):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def _fake_idx_dir(root, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    _write_idx(root / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (n_train, 28, 28)))
    _write_idx(root / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    _write_idx(root / "t10k-images-idx3-ubyte", rng.integers(0, 255, (n_test, 28, 28)), gz=False)
    _write_idx(root / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz=False)
    return root


def test_idx_files_round_trip(tmp_path):
    ds = load_source("fashion_mnist", str(_fake_idx_dir(tmp_path)))
    assert ds.input_shape == (28, 28, 1) and ds.splits == {"train": 30, "test": 10}
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.y_train, np.arange(30) % 10)


def test_missing_and_corrupt_idx_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_source("fashion_mnist", str(tmp_path))
    _fake_idx_dir(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(UserError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"garbage")
    with pytest.raises(UserError, match="magic"):
        read_idx(path)


def test_mnist1d_is_generated_offline_cached_and_deterministic():
    first = load_source("mnist1d")
    second = load_source("mnist1d")  # from the cache
    assert first.input_shape == (40, 1) and first.splits == {"train": 4000, "test": 1000}
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert set(np.unique(first.y_train)) == set(range(10))


def test_a_cached_mnist1d_loads_without_importing_the_generator_with_its_defaults(tmp_path, monkeypatch):
    """The generator's defaults kept beside the cache are the installed generator's, and a process
    loading a cached set never imports ``mnist1d`` (2 s of matplotlib and scipy)."""
    import subprocess
    import sys

    from mnist1d.data import get_dataset_args

    from research.data.sources import _mnist1d_defaults, cache_dir

    first = load_source("mnist1d")
    expected = {k: v for k, v in get_dataset_args(as_dict=True).items() if k != "url"}
    assert _mnist1d_defaults() == expected
    monkeypatch.setenv("CVD_CACHE", str(tmp_path))  # a cache of its own, to damage
    assert _mnist1d_defaults() == expected
    stored = next(cache_dir().glob("mnist1d-defaults-*.json"))
    for damaged in ("[1, 2]", "{}", '{"num_samples": 5'):  # read around: the generator's own defaults, stored again
        stored.write_text(damaged)
        assert _mnist1d_defaults() == expected and json.loads(stored.read_text()) == expected
    monkeypatch.undo()
    assert first.info["padding"] == [36, 60] and first.info["seed"] == 42
    script = (
        "import sys, numpy as np\n"
        "from research.data import load_source\n"
        "ds = load_source('mnist1d')\n"
        "assert 'mnist1d' not in sys.modules, 'the generator was imported'\n"
        f"np.testing.assert_array_equal(ds.x_train[:5], np.array({first.x_train[:5].tolist()!r}, np.float32))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_tfds_source_reads_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load_source("tfds:mnist")
    assert ds.name == "tfds:mnist" and ds.input_shape == (28, 28, 1)
    assert ds.splits == {"train": 6, "test": 6} and ds.num_classes == 10


def test_tfds_not_prepared_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="tfds build cifar10"):
        load_source("tfds:cifar10", str(tmp_path))


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(UserError, match="Did you mean 'mnist1d'"):
        load_source("mnist_1d")


def test_per_class_subset_is_balanced_and_seeded():
    x = np.arange(100)[:, None, None].astype(np.float32)
    y = np.arange(100) % 5
    xs, ys = per_class_subset(x, y, 4, seed=3)
    assert np.bincount(ys).tolist() == [4] * 5
    np.testing.assert_array_equal(xs[:, 0, 0] % 5, ys)
    np.testing.assert_array_equal(per_class_subset(x, y, 4, seed=3)[0], xs)
    with pytest.raises(UserError):
        per_class_subset(x, y, 21, seed=0)


def test_shift_circular_and_zero_fill():
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)
    np.testing.assert_array_equal(shift(x, (2,), "circular")[0, :, 0], [4, 5, 1, 2, 3])
    np.testing.assert_array_equal(shift(x, (2,), "zero")[0, :, 0], [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(shift(x, (-2,), "zero")[0, :, 0], [3, 4, 5, 0, 0])
    np.testing.assert_array_equal(np.asarray(shift(jnp.asarray(x), (-1,), "zero"))[0, :, 0], [2, 3, 4, 5, 0])
    img = np.random.default_rng(0).normal(size=(2, 4, 6, 3))
    np.testing.assert_array_equal(shift(shift(img, (1, -4)), (-1, 4)), img)


def test_place_on_canvas():
    x = np.ones((3, 2, 2, 1), np.uint8)
    canvas, pos = place_on_canvas(x, (5, 6), position=(1, 3))
    assert canvas.shape == (3, 5, 6, 1) and canvas.sum() == 12
    assert canvas[0, 1:3, 3:5].all() and (pos == [1, 3]).all()
    canvas, pos = place_on_canvas(x, (5, 6), rng=np.random.default_rng(0), region=[(0, 1), (2, 4)])
    assert ((pos[:, 0] <= 1) & (pos[:, 1] >= 2) & (pos[:, 1] <= 4)).all()
    for c, p in zip(canvas, pos):
        assert c[p[0] : p[0] + 2, p[1] : p[1] + 2].all() and c.sum() == 4
    with pytest.raises(ValueError, match="off the canvas"):
        place_on_canvas(x, (5, 6), position=(4, 0))


def test_a_dense_net_is_indifferent_to_a_fixed_pixel_permutation():
    """An MLP on permuted pixels, with its first layer's rows permuted alike, is the same function."""
    perm = pixel_permutation((6, 5), seed=1)
    x = np.random.default_rng(0).normal(size=(4, 6, 5, 2)).astype(np.float32)
    net = get_model("mlp", (6, 5, 2), 3, nnx.Rngs(0), hidden=(7,))
    permuted_net = get_model("mlp", (6, 5, 2), 3, nnx.Rngs(0), hidden=(7,))
    rows = np.arange(60).reshape(30, 2)[perm].reshape(-1)  # input index -> row of the permuted input
    first = permuted_net.hidden[0]
    first.kernel[...] = net.hidden[0].kernel[...][rows]
    # Equal up to the order of the sums in the first matmul.
    np.testing.assert_allclose(permuted_net(jnp.asarray(permute_pixels(x, perm))), net(jnp.asarray(x)), rtol=1e-5, atol=1e-6)


def test_load_dataset_applies_permutation_to_both_splits():
    from research.config import default_config

    cfg = default_config().data
    cfg.update({"n_val": 0, "permute_pixels": True, "permutation_seed": 4, "n_per_class": 10})
    ds = load_dataset(cfg)
    plain = load_source("mnist1d")
    perm = pixel_permutation((40,), 4)
    np.testing.assert_array_equal(ds.x_test, permute_pixels(plain.x_test, perm))
    assert ds.splits["train"] == 100 and ds.info["pixel_permutation_seed"] == 4


def test_validation_split_is_stratified_seeded_and_disjoint_from_training():
    from research.config import default_config
    from research.data import load_dataset, stratified_split

    y = np.repeat(np.arange(4), [40, 30, 20, 10])
    held, rest = stratified_split(y, 10, seed=3)
    assert np.bincount(y[held]).tolist() == [4, 3, 2, 1]  # every class in its proportion
    assert len(np.intersect1d(held, rest)) == 0 and len(held) + len(rest) == len(y)
    np.testing.assert_array_equal(held, stratified_split(y, 10, seed=3)[0])
    assert not np.array_equal(held, stratified_split(y, 10, seed=4)[0])

    data = default_config().data  # n_val = -1: 10% of MNIST-1D's 4000 training examples
    ds = load_dataset(data)
    assert ds.splits == {"train": 3600, "val": 400, "test": 1000}
    train_rows = {x.tobytes() for x in ds.x_train}
    assert not any(x.tobytes() in train_rows for x in ds.x_val), "validation examples never train"
    data.n_per_class = 5  # the subset is drawn from what is left, the val split is the same
    small = load_dataset(data)
    assert small.splits["train"] == 50
    np.testing.assert_array_equal(small.x_val, ds.x_val)
    data.n_val = 0  # only by explicit choice
    assert "val" not in load_dataset(data).splits
    data.n_val = -2
    with pytest.raises(UserError, match="n_val"):
        load_dataset(data)


def test_a_source_registered_in_a_study_file_survives_a_second_import(tmp_path):
    from research.config import load_config_file
    from research.data.sources import SOURCES

    study = tmp_path / "my_study.py"
    study.write_text(
        "from research.config import default_config\n"
        "from research.data.sources import SOURCES\n"
        "@SOURCES.register('my_tiny_source')\n"
        "def tiny(data_dir):\n"
        "    raise NotImplementedError\n"
        "def get_config(variant=None):\n"
        "    return default_config()\n"
    )
    load_config_file(str(study))
    load_config_file(str(study))  # a sweep worker imports the study again: the same definition, no error
    assert "my_tiny_source" in SOURCES.names()
    with pytest.raises(ValueError, match="registered twice"):
        SOURCES.register("my_tiny_source", lambda data_dir: None)  # a different definition is refused


def test_dataset_shape_predicts_what_every_quick_and_paper_run_loads():
    """The plan sizes runs without their data; where the data are here, the shapes agree."""
    from research.config import load_config as build_config
    from research.data import dataset_shape
    from research.sweep import study_runs

    seen = {}
    for study in sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.py")):
        if study.stem in ("__init__", "common", "mnist1d", "fashion_mnist"):
            continue
        for variant in ("quick", "paper"):
            for _, overrides in study_runs(f"{study}:{variant}"):
                data = build_config(f"{study}:{variant}", overrides).data
                seen[data.to_json(sort_keys=True)] = data
    assert len(seen) >= 5
    # The paper's 80,000-example MNIST-1D pool takes a minute to generate; every pool's shape comes
    # from the same table (MNIST1D_POOLS) by the same code, checked here on the quick pool.
    assert any(d.name == "mnist1d_scaling" for d in seen.values()) and any(
        d.name == "mnist1d_scaling_small" for d in seen.values()
    )
    for data in (d for d in seen.values() if d.name != "mnist1d_scaling"):
        loaded, predicted = load_dataset(data), dataset_shape(data)
        assert (predicted.input_shape, predicted.splits, predicted.num_classes) == (
            loaded.input_shape,
            loaded.splits,
            loaded.num_classes,
        ), data


def test_tfds_without_tensorflow_datasets_installed_is_one_line_with_the_install_command(monkeypatch):
    import sys

    from research.data import load_source

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import raises ImportError
    with pytest.raises(UserError, match="pip install tensorflow-datasets"):
        load_source("tfds:mnist")
