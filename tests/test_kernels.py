"""NNGP kernels (research.kernels): exact facts of the infinite-width lattice, and a Monte
Carlo check against wide random nets built by research.models."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research.errors import UserError
from research.kernels import nngp_fn
from research.models import architectures, get_model
from research.models.layers import LAYER_FAMILIES

FAMILIES = ("conv", "full_kernel_conv", "locally_connected", "dense")
RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape,fields",
    [
        ((12, 2), dict(widths=(8, 8), kernel_sizes=3, strides=(2, 1), padding="SAME")),
        ((12, 2), dict(widths=(8, 8, 8), kernel_sizes=(5, 3, 3), strides=2, padding=1)),
        ((12, 1), dict(widths=(8,), kernel_sizes=3, strides=1, padding="CIRCULAR")),
        ((6, 6, 1), dict(widths=(8, 8), kernel_sizes=3, strides=(2, 1), padding="SAME")),
        ((6, 6, 2), dict(widths=(8,), kernel_sizes=3, strides=2, padding="VALID")),
    ],
)
def test_without_pooling_conv_and_locally_connected_have_the_same_kernel_and_pooling_tells_them_apart(shape, fields):
    x = RNG.normal(size=(5, *shape))
    flatten = [
        nngp_fn({"name": "lattice", "family": f, "head": "flatten", **fields}, shape)(x, x) for f in ("conv", "locally_connected")
    ]
    np.testing.assert_array_equal(flatten[0], flatten[1])  # exactly: both read only the diagonal
    pooled = [
        nngp_fn({"name": "lattice", "family": f, "head": "global_avg", **fields}, shape)(x, x)
        for f in ("conv", "locally_connected")
    ]
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-3 * np.abs(pooled[0]).max()


@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR"])
def test_full_kernel_conv_and_dense_as_the_theory_says(padding):
    """Sharing without locality, against neither. Every output of a full-kernel conv sees
    every input position once, so its diagonal (p == q) is the mean of its input's diagonal,
    as a dense map's is: with a flatten head the two kernels are equal, at any depth. A
    global-average head reads the off-diagonal, where the shared full kernel correlates
    positions and the dense map's independent positions do not, so there they differ. And
    the dense kernel ignores where things are: a fixed permutation of the input positions
    leaves it unchanged (the prior C6 tests)."""
    shape = (8, 1)
    x = RNG.normal(size=(6, *shape))
    fields = dict(widths=(16, 16), kernel_sizes=3, strides=(2, 1), padding=padding)
    kernels = {
        (f, head): nngp_fn({"name": "lattice", "family": f, "head": head, **fields}, shape)(x, x)
        for f in ("full_kernel_conv", "dense")
        for head in ("flatten", "global_avg")
    }
    np.testing.assert_allclose(kernels["full_kernel_conv", "flatten"], kernels["dense", "flatten"], rtol=1e-12)
    gap = np.abs(kernels["full_kernel_conv", "global_avg"] - kernels["dense", "global_avg"]).max()
    assert gap > 1e-3 * np.abs(kernels["dense", "global_avg"]).max()
    perm = RNG.permutation(8)
    dense = nngp_fn({"name": "lattice", "family": "dense", "head": "flatten", **fields}, shape)
    np.testing.assert_allclose(dense(x[:, perm], x[:, perm]), dense(x, x), rtol=1e-12)


def test_no_closed_form_is_refused_in_one_line():
    for fields in (dict(pooling="max"), dict(head="global_max")):
        with pytest.raises(UserError, match="no closed-form"):
            nngp_fn({"name": "lattice", "widths": (4,), **fields}, (8, 1))


def test_a_new_layer_family_without_a_kernel_rule_is_refused_not_treated_as_conv(monkeypatch):
    class Sketch(LAYER_FAMILIES["conv"]):  # a family someone adds to the lattice, with no kernel rule yet
        family = "sketch"

    monkeypatch.setitem(LAYER_FAMILIES, "sketch", Sketch)
    monkeypatch.setattr(architectures, "FAMILIES", (*architectures.FAMILIES, "sketch"))
    with pytest.raises(UserError, match="'sketch' has no infinite-width kernel rule"):
        nngp_fn({"name": "lattice", "family": "sketch", "widths": (4,)}, (8, 1))


def _empirical(config: dict, shape, x: np.ndarray, draws: int, chunk: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over random initialisations of one output unit's kernel."""
    name = config.pop("name")
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: get_model(name, shape, 10, nnx.Rngs(0), **config)))

    def logits(seed):
        params = nnx.state(get_model(name, shape, 10, nnx.Rngs(jax.random.key(seed)), **config), nnx.Param)
        out = nnx.merge(graphdef, params)(jnp.asarray(x, jnp.float32))  # (n, classes)
        return jnp.einsum("ak,bk->ab", out, out) / out.shape[1]

    batched = jax.jit(jax.vmap(logits))
    samples = np.concatenate([np.asarray(batched(jnp.arange(c, c + chunk, dtype=jnp.uint32))) for c in range(0, draws, chunk)])
    return samples.mean(0), samples.std(0) / np.sqrt(draws)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("head", ["flatten", "global_avg"])
def test_wide_random_nets_match_the_analytic_kernel_within_sampling_error(family, head):
    shape = (6, 1)
    x = RNG.normal(size=(4, *shape))
    # One hidden layer of width 512 (depth is covered by the exact tests above; a second dense
    # layer of 512 x positions squared would dominate the suite's time).
    config = dict(name="lattice", family=family, head=head, widths=(512,), kernel_sizes=3, strides=2, padding="SAME")
    analytic = nngp_fn(dict(config), shape)(x, x)
    mean, error = _empirical(dict(config), shape, x, draws=200)
    tolerance = 4 * error + 0.02 * np.abs(analytic).max()  # sampling error, plus finite-width bias O(1/512)
    assert np.all(np.abs(mean - analytic) <= tolerance), (np.abs(mean - analytic).max(), tolerance.min())


def test_kernel_regression_runs_as_a_sweep_task_and_conv_equals_locally_connected_without_pooling(tmp_path, capsys):
    from research.config import default_config
    from research.pipeline import train_and_probe

    accuracies = {}
    for family in ("conv", "locally_connected"):
        c = default_config()
        c.task = "kernel_regression"
        c.data.n_per_class = 20
        c.data.n_test = 200
        c.model.name = "lattice"
        c.model.family = family
        c.model.widths = (8, 8)
        c.model.kernel_sizes = 3
        c.model.strides = 2
        summary = train_and_probe(c, tmp_path / family, progress=False)
        record = json.loads((tmp_path / family / "kernel.json").read_text())
        assert summary["status"] == "done" and summary["replicas"][0]["test_accuracy"] == record["test_accuracy"]
        assert {"family", "head", "dataset", "n_train", "test_accuracy", "val_accuracy", "ridge", "wall_time_s"} <= set(record)
        assert record["n_train"] == 200 and record["family"] == family
        # The NTK's fit beside the NNGP's (research.kernels.ntk_fn: the limit of gradient-descent training).
        ntk = record["ntk"]
        assert {"test_accuracy", "val_accuracy", "ridge", "ridge_grid"} <= set(ntk)
        assert summary["replicas"][0]["ntk_test_accuracy"] == ntk["test_accuracy"] > 0.3
        accuracies[family] = (
            record["val_accuracy"],
            record["test_accuracy"],
            record["ridge"],
            ntk["test_accuracy"],
            ntk["ridge"],
        )
        assert train_and_probe(c, tmp_path / family, progress=False) == summary  # finished: reused, nothing recomputed
    assert accuracies["conv"] == accuracies["locally_connected"]
    # From the command line: one line of what it fitted, not a training summary.
    from research.cli import main

    spec = str(Path(__file__).resolve().parent.parent / "experiments" / "infinite_width.py") + ":quick"
    tiny = ["--config.data.n_per_class=10", "--config.data.n_val=20", "--config.data.n_test=50"]
    assert main(["train", "--config", spec, *tiny, "--workdir", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "infinite-width kernel regression" in out and "NNGP: val" in out and "NTK: val" in out
