"""Initialisation on an equal footing: every family's init uses its true fan-in.

Fan-in is the number of inputs into one output unit. Counted here from the
layer's own Jacobian (which input entries an output unit depends on), it must
equal the ``fan_in`` that init uses; and for unit-variance inputs, every
family's pre-activation variance at init must match the conv's within 10% at
the same shapes. A locally connected kernel drawn with ``lecun_normal`` over its
``(positions, fan_in, out)`` shape fails both (std too small by sqrt(positions)).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research.models.layers import FAMILIES, lecun_kernel, make_layer

# (input shape, out channels, kernel, stride, padding): the studies' shapes and a few more.
GEOMETRIES = [
    ((40, 1), 32, 5, 2, "SAME"),  # MNIST-1D lattice, first layer
    ((20, 8), 16, 3, 2, "SAME"),  # MNIST-1D lattice, second layer
    ((40, 1), 32, 5, 2, 1),  # the reference CNN's int padding
    ((40, 2), 16, 5, 1, "VALID"),
    ((24, 3), 16, 3, 2, "CIRCULAR"),
    ((28, 28, 1), 4, 3, 2, "SAME"),  # Fashion-MNIST
    ((10, 10, 3), 4, 3, 1, "CIRCULAR"),
]


def _layer(family, geometry, seed=0):
    in_shape, out, kernel, stride, padding = geometry
    return make_layer(family, in_shape, out, kernel, stride, padding, rngs=nnx.Rngs(seed))


def _counted_fan_in(layer) -> int:
    """Most input entries any one output unit depends on (nonzero Jacobian entries)."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, *layer.in_shape)), jnp.float32)
    jac = jax.jit(jax.jacrev(lambda v: layer(v)[0]))(x)  # (*out_shape, 1, *in_shape); one program, not op by op
    per_unit = np.count_nonzero(np.asarray(jac).reshape(math.prod(layer.out_shape), -1), axis=1)
    return int(per_unit.max())


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("family", FAMILIES)
def test_fan_in_counted_by_connections_is_what_init_uses(family, geometry):
    layer = _layer(family, geometry)
    assert _counted_fan_in(layer) == layer.fan_in
    kernel = np.asarray(layer.kernel[...])
    # The truncated normal's variance is 1/fan_in exactly; the sample's within its error.
    expected = 1.0 / layer.fan_in
    standard_error = expected * math.sqrt(2.0 / kernel.size) * 1.5
    assert abs(kernel.var() - expected) < 4 * standard_error + 1e-12, (kernel.var(), expected)


def _preactivation_variance(family, geometry, draws=32, batch=64) -> float:
    in_shape = geometry[0]
    x = jnp.asarray(np.random.default_rng(1).normal(size=(batch, *in_shape)), jnp.float32)
    return float(np.mean([np.mean(np.asarray(_layer(family, geometry, seed)(x)) ** 2) for seed in range(draws)]))


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_every_family_starts_with_the_conv_preactivation_variance(geometry):
    conv = _preactivation_variance("conv", geometry)
    assert 0.85 < conv < 1.1, conv  # unit-variance inputs, fan-in init; zero padding trims the edges a little
    for family in FAMILIES[1:]:
        ratio = _preactivation_variance(family, geometry) / conv
        assert 0.9 < ratio < 1.1, (family, ratio)


@pytest.mark.parametrize("shape", [(64, 32), (5, 4, 8), (3, 3, 2, 6)], ids=["dense", "conv1d", "conv2d"])
def test_lecun_kernel_is_jax_lecun_normal_for_dense_and_conv_kernels(shape):
    """Where a kernel's shape gives its fan-in (dense, conv: every axis but the last), the
    library's init with that fan-in is ``lecun_normal``'s draw: the same truncated normal
    times the same scale. The scale is rounded differently (``lecun_kernel`` rounds
    ``sqrt(1 / fan_in) / std`` once from float64, ``lecun_normal`` computes it in float32),
    so at some fan-ins (20 here) it differs by one float32 ulp and the draw by up to two;
    at the others (64, 18) the draws are bit-identical."""
    key = jax.random.key(3)
    fan_in = math.prod(shape[:-1])
    ours, theirs = np.asarray(lecun_kernel(key, shape, fan_in)), np.asarray(nnx.initializers.lecun_normal()(key, shape))
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=2)
    if fan_in != 20:
        np.testing.assert_array_equal(ours, theirs)
