"""NTK kernels (research.kernels.ntk_fn): the exact facts of the infinite-width lattice, and a
Monte Carlo check against the empirical NTK (the Jacobian inner product) of wide random nets
built by research.models, parameter by parameter as the NTK parameterisation weights them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from flax import nnx

from analysis.figures.f12_infinite_width import _kernel_lines
from benchmarks.suite import SECTIONS, summary_lines
from research.config import load_config
from research.errors import UserError
from research.kernels import SECONDS_PER_POSITION_PAIR, kernels_fn, nngp_fn, ntk_fn
from research.kernels.walk import _groups, _lag_sums, _spatial_sum, _tap_sum, abstract_model
from research.models import get_model
from research.plan import estimated_seconds, run_cost

FAMILIES = ("conv", "full_kernel_conv", "locally_connected", "dense")
RNG = np.random.default_rng(0)


def _lattice(family: str, head: str, **fields) -> dict:
    return {"name": "lattice", "family": family, "head": head, **fields}


@pytest.mark.parametrize(
    "shape,fields",
    [
        ((12, 2), dict(widths=(8, 8), kernel_sizes=3, strides=(2, 1), padding="SAME")),
        ((12, 2), dict(widths=(8, 8, 8), kernel_sizes=(5, 3, 3), strides=2, padding=1, head_widths=(8,))),
        ((12, 1), dict(widths=(8, 8), kernel_sizes=3, strides=1, padding="CIRCULAR", pooling="stride")),
        ((6, 6, 1), dict(widths=(8, 8), kernel_sizes=3, strides=(2, 1), padding="SAME")),
    ],
)
def test_without_pooling_conv_and_locally_connected_have_the_same_ntk_and_global_average_tells_them_apart(shape, fields):
    """Every map on the way to a flatten head reads only the diagonal p == q, where sharing
    and local connectivity agree; ReLU's derivative kernel too is read at (p, p) only."""
    x = RNG.normal(size=(5, *shape))
    flatten = [ntk_fn(_lattice(f, "flatten", **fields), shape)(x) for f in ("conv", "locally_connected")]
    np.testing.assert_array_equal(flatten[0], flatten[1])
    pooled = [ntk_fn(_lattice(f, "global_avg", **fields), shape)(x) for f in ("conv", "locally_connected")]
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-3 * np.abs(pooled[0]).max()


@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR"])
def test_full_kernel_conv_and_dense_have_the_same_ntk_with_a_flatten_head_only(padding):
    """Each output of a full-kernel conv sees every input position once, so on the diagonal it
    is the dense map's mean. Equal up to rounding amplified by the ReLU derivative kernel:
    (pi - arccos(c)) / 2 pi at c = 1 - eps moves by sqrt(2 eps) / 2 pi, so the 1-ulp
    difference of the two sums (a tap sum, a mean) reaches ~1e-8 relative on the diagonal."""
    shape = (8, 1)
    x = RNG.normal(size=(6, *shape))
    fields = dict(widths=(16, 16), kernel_sizes=3, strides=(2, 1), padding=padding)
    flatten = [ntk_fn(_lattice(f, "flatten", **fields), shape)(x) for f in ("full_kernel_conv", "dense")]
    np.testing.assert_allclose(flatten[0], flatten[1], rtol=1e-7)
    pooled = [ntk_fn(_lattice(f, "global_avg", **fields), shape)(x) for f in ("full_kernel_conv", "dense")]
    assert np.abs(pooled[0] - pooled[1]).max() > 1e-3 * np.abs(pooled[0]).max()


@pytest.mark.parametrize(
    "config,layers",
    [
        (_lattice("conv", "flatten", widths=(8, 8), kernel_sizes=3, strides=2, head_widths=(8,)), 4),
        (_lattice("dense", "flatten", widths=(8,), kernel_sizes=3, pooling="stride"), 2),
        ({"name": "mlp", "hidden": (8, 8, 8)}, 4),
    ],
)
def test_ntk_on_the_diagonal_is_the_nngp_times_the_depth_without_biases(config, layers):
    """Without biases, ReLU halves the variance and its derivative kernel is 1/2 at x == x',
    so each linear layer adds its own K to Theta: Theta(x, x) = depth * K(x, x) wherever the
    head reads one position at a time (flatten). Up to rounding that the derivative kernel
    amplifies near c = 1 (see the full-kernel conv test): 1e-7 relative."""
    x = RNG.normal(size=(5, 8, 1))
    nngp, ntk = kernels_fn(config, (8, 1))(x)
    np.testing.assert_allclose(np.diag(ntk), layers * np.diag(nngp), rtol=1e-7)
    np.testing.assert_array_equal(nngp, nngp_fn(config, (8, 1))(x))  # one walk gives the NNGP unchanged


@pytest.mark.parametrize("family", FAMILIES)
def test_ntk_includes_the_nngp_on_the_diagonal_and_is_symmetric(family):
    """Theta = K + (what the lower layers add, a positive kernel): Theta(x, x) >= K(x, x)
    with every head, pooling and bias variance."""
    shape = (8, 1)
    x = RNG.normal(size=(5, *shape))
    config = _lattice(family, "global_avg", widths=(8, 8), kernel_sizes=3, pooling="avg", head_widths=(4,))
    nngp, ntk = kernels_fn(config, shape, bias_var=0.3)(x)
    assert np.all(np.diag(ntk) >= np.diag(nngp) + 0.1 * np.abs(np.diag(nngp)))
    np.testing.assert_allclose(ntk, ntk.T, rtol=1e-12)
    np.testing.assert_allclose(ntk_fn(config, shape, bias_var=0.3)(x, x[:2]), ntk[:, :2], rtol=1e-12)  # blocks agree


@pytest.mark.parametrize(
    "shape,padding,strides",
    [((12, 1), "SAME", 2), ((12, 1), "CIRCULAR", 2), ((12, 1), "VALID", 1), ((11, 1), 1, 2), ((7, 1), "CIRCULAR", 1)]
    + [((6, 5, 1), "SAME", (2, 1)), ((6, 5, 1), "CIRCULAR", 2)],
)
def test_full_kernel_conv_lag_sums_are_its_tap_sums(shape, padding, strides):
    """The full-kernel conv's shortcut (sums along the diagonals, O(positions^2)) gives what
    summing its 2n - 1 taps over the padded covariance gives, on the full covariance and on
    the diagonal."""
    model = abstract_model(
        _lattice("full_kernel_conv", "flatten", widths=(3, 3), kernel_sizes=3, strides=strides, padding=padding), shape
    )
    layer = model.layers[1]
    spatial, nd = layer.in_shape[:-1], len(layer.in_shape) - 1
    full, diagonal = RNG.normal(size=(2, 3, *spatial, *spatial)), RNG.normal(size=(2, 3, *spatial))
    np.testing.assert_allclose(_lag_sums(full, 2, nd, layer), _tap_sum(full, _groups(2, nd, True), layer), atol=1e-12)
    np.testing.assert_allclose(
        _spatial_sum(diagonal, 2, nd, layer.out_spatial), _tap_sum(diagonal, _groups(2, nd, False), layer), atol=1e-12
    )


def test_no_closed_form_is_refused_in_one_line():
    for fields in (dict(pooling="max"), dict(head="global_max")):
        with pytest.raises(UserError, match="no closed-form"):
            ntk_fn({"name": "lattice", "widths": (4,), **fields}, (8, 1))


def _empirical_ntk(config: dict, shape, x: np.ndarray, seeds: int, bias_var: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over ``seeds`` random nets (one output unit) of the empirical
    NTK: the sum over parameters of ``v * df/dp(x) df/dp(x')``, ``v`` the parameter's init
    variance (weights: 1 / fan_in, as LeCun init, tests/test_init.py; biases: ``bias_var``):
    the Jacobian inner product of the NTK parameterisation, which ``ntk_fn`` computes. The
    parameters are drawn Gaussian with those variances (the limit depends on them alone; a
    jitted init of 512-wide nets takes longer to compile than the whole check)."""
    config = dict(config)
    name = config.pop("name")
    abstract = nnx.eval_shape(lambda: get_model(name, shape, 1, nnx.Rngs(0), **config))
    graphdef, params = nnx.split(abstract, nnx.Param)
    fan_in = {p: getattr(n, "fan_in", None) or n.in_features for p, n in nnx.iter_graph(abstract) if hasattr(n, "kernel")}
    variances = jax.tree_util.tree_map_with_path(
        lambda path, _: bias_var if path[-2].key == "bias" else 1.0 / fan_in[tuple(k.key for k in path[:-2])], params
    )
    inputs = jnp.asarray(x, jnp.float32)

    @jax.jit
    def ntk(params):
        jac = jax.jacrev(lambda p: nnx.merge(graphdef, p)(inputs)[:, 0])(params)
        terms = jax.tree.map(lambda j, v: v * jnp.einsum("a...,b...->ab", j, j), jac, variances)
        return sum(jax.tree.leaves(terms))

    rng = np.random.default_rng(0)
    draws = []
    for _ in range(seeds):
        drawn = jax.tree.map(lambda p, v: np.sqrt(v) * rng.standard_normal(p.shape, np.float32), params, variances)
        draws.append(np.asarray(ntk(drawn)))
    return np.mean(draws, 0), np.std(draws, 0, ddof=1) / np.sqrt(seeds)


WIDE = dict(widths=(512, 512), kernel_sizes=3, strides=2, padding="SAME")


@pytest.mark.parametrize(
    "config,bias_var",
    [
        *[(_lattice(f, h, **WIDE), 0.0) for f in FAMILIES for h in ("flatten", "global_avg")],
        (_lattice("conv", "flatten", **{**WIDE, "strides": 1}, pooling="avg", head_widths=(512,)), 0.0),
        ({"name": "mlp", "hidden": (512, 512)}, 0.0),
        # Per-position biases (locally connected, dense) are independent between positions.
        (_lattice("locally_connected", "global_avg", **WIDE), 0.5),
        (_lattice("dense", "global_avg", **WIDE), 0.5),
    ],
    ids=lambda v: v if isinstance(v, float) else "-".join(str(v.get(k, "")) for k in ("name", "family", "head", "pooling")),
)
def test_wide_random_nets_match_the_analytic_ntk_within_sampling_error(config, bias_var):
    """Width 512, 8 nets, 4 inputs of length 8: the analytic NTK lies within 4 standard errors
    of the nets' mean (plus 1% of its largest entry: the O(1/width) bias). (The NNGP has its
    own Monte Carlo test, tests/test_kernels.py; the NTK holds it as its last layer's term.)"""
    shape = (8, 1)
    x = RNG.normal(size=(4, *shape))
    analytic = ntk_fn(dict(config), shape, bias_var=bias_var)(x)
    mean, error = _empirical_ntk(config, shape, x, 8, bias_var)
    tolerance = 4 * error + 0.01 * np.abs(analytic).max()
    assert np.all(np.abs(mean - analytic) <= tolerance), (np.abs(mean - analytic).max(), tolerance.min())


def test_f12_draws_each_kernels_line_and_older_runs_without_the_ntk_still_draw():
    kernels = pd.DataFrame(
        {
            "dataset": "mnist1d",
            "family": ["conv", "dense", "conv", "dense"],
            "head": ["flatten", "flatten", "global_avg", "global_avg"],
            "test_accuracy": [0.80, 0.60, 0.85, 0.55],
            "ntk_test_accuracy": [0.82, 0.61, 0.88, np.nan],  # a run from before the NTK: its NNGP only
            "train_examples": 900,
        }
    )
    fig, ax = plt.subplots()
    texts = _kernel_lines(ax, kernels, "mnist1d")
    plt.close(fig)
    assert sorted(round(line.get_ydata()[0], 6) for line in ax.lines) == [55, 60, 61, 80, 82, 85, 88]
    assert texts[0] == "flatten head (900 examples), NNGP / NTK %: conv 80.0 / 82.0, dense 60.0 / 61.0"
    assert texts[1].endswith("conv 85.0 / 88.0, dense 55.0")


def test_bench_times_the_ntk_beside_the_nngp_and_says_the_ratio():
    results = {"machine": {}, "nngp_kernel": SECTIONS["nngp_kernel"](40), "ntk_kernel": SECTIONS["ntk_kernel"](40)}
    assert results["ntk_kernel"]["finite"] and results["ntk_kernel"]["examples"] == 40
    ratio = results["ntk_kernel"]["seconds"] / results["nngp_kernel"]["seconds"]
    assert (
        f"NTK kernel mnist1d_cnn: 40 x 40 in {results['ntk_kernel']['seconds']:.1f} s ({ratio:.2f}x the NNGP's)"
        in summary_lines(results)
    )


def test_the_plan_counts_the_kernels_time_on_the_host():
    """Kernel runs have no training FLOPs, but their pairs of examples take time: the plan adds
    pairs x the measured seconds a pair (global average: every pair of the 20 first-layer
    positions) on CPU and GPU alike."""

    spec = "experiments/infinite_width.py:paper"
    config = load_config(spec, ["model.head=global_avg", "data.n_per_class=200", "data.n_test=0"])
    cost = run_cost("infinite_width", "conv", config)
    pairs = 2000**2 / 2 + 2000 * (400 + 1000)
    assert cost.host_seconds == pytest.approx(pairs * 400 * SECONDS_PER_POSITION_PAIR)
    assert estimated_seconds([cost], on_gpu=False) == estimated_seconds([cost], on_gpu=True) == pytest.approx(cost.host_seconds)
