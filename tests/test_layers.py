"""The layer lattice: exact equivalences, equivariance, invariance, shapes, parameter counts."""

from __future__ import annotations

import functools
import math

import flax.linen as linen
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research.data.transforms import shift
from research.errors import UserError
from research.models import count_params, get_model
from research.models.embed import conv_to_dense, conv_to_locally_connected, locally_connected_layer_to_dense
from research.models.im2col import _conv_matmul_chunked as conv_as_matmul_by_chunks
from research.models.im2col import batch_chunk, conv_as_matmul
from research.models.layers import (
    MATMUL_MAX_PATCH_BYTES,
    MATMUL_MAX_PATCH_FEATURES,
    Conv,
    DenseMap,
    FullKernelConv,
    LocallyConnected,
)

# (input shape, kernel, stride, padding): 1D and 2D, strided, every padding mode.
GEOMETRIES = [
    ((12, 3), 3, 1, "SAME"),
    ((12, 3), 5, 2, "VALID"),
    ((13, 2), 3, 2, "CIRCULAR"),
    ((12, 2), 5, 2, 1),
    ((8, 7, 2), 3, 1, "SAME"),
    ((8, 8, 3), (3, 2), 2, "CIRCULAR"),
    ((9, 8, 2), 3, (2, 1), "VALID"),
    ((8, 8, 1), 5, 2, 2),
    # zero padding wider than the kernel's reach: the output outgrows the input
    ((12, 3), 3, 1, 2),
    ((7, 6, 2), 3, 1, 3),
]
# SAME and CIRCULAR in 1D and 2D, VALID (2D, unevenly strided) and integer padding wider than the
# kernel's reach (1D): for the equivalences that the checks over every geometry tie to the conv.
EACH_PADDING = [GEOMETRIES[i] for i in (0, 2, 4, 5, 6, 8)]


def _x(shape, batch=3, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, *shape))


@pytest.mark.parametrize("in_shape,kernel,stride,padding", GEOMETRIES)
def test_conv_equals_locally_connected_with_tied_weights(in_shape, kernel, stride, padding):
    conv = Conv(in_shape, 4, kernel, stride, padding, rngs=nnx.Rngs(0))
    conv.bias[...] = jax.random.normal(jax.random.PRNGKey(1), (4,))
    local = LocallyConnected(in_shape, 4, kernel, stride, padding, rngs=nnx.Rngs(1))
    k, b = conv_to_locally_connected(conv.kernel[...], conv.bias[...], conv.out_spatial)
    local.kernel[...], local.bias[...] = jnp.asarray(k), jnp.asarray(b)
    x = _x(in_shape)
    np.testing.assert_allclose(local(x), conv(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("in_shape,kernel,stride,padding", GEOMETRIES)
def test_conv_as_matmul_is_the_same_function_as_lax_conv(in_shape, kernel, stride, padding):
    """The im2col form (CPU's default) against ``lax.conv``: outputs, input and kernel
    gradients, and vmapped over replicas (where ``lax.conv`` becomes a grouped conv)."""
    layers = {impl: Conv(in_shape, 4, kernel, stride, padding, conv_impl=impl, rngs=nnx.Rngs(0)) for impl in ("lax", "matmul")}
    assert layers["lax"].impl() == "lax" and layers["matmul"].impl() == "matmul"
    x = _x(in_shape)
    kernels = jax.random.normal(jax.random.PRNGKey(3), (2, *layers["lax"].kernel.shape))

    def apply(impl, kernel, x):
        graphdef, state = nnx.split(layers[impl])
        pure = nnx.to_pure_dict(state)
        pure["kernel"] = kernel
        nnx.replace_by_pure_dict(state, pure)
        return nnx.merge(graphdef, state)(x)

    def loss(impl, kernel, x):
        return jnp.sum(jnp.sin(apply(impl, kernel, x)))

    grads = {impl: jax.grad(lambda k, v, impl=impl: loss(impl, k, v), argnums=(0, 1))(kernels[0], x) for impl in layers}
    batched = {impl: jax.vmap(lambda k, impl=impl: apply(impl, k, x))(kernels) for impl in layers}
    np.testing.assert_allclose(apply("matmul", kernels[0], x), apply("lax", kernels[0], x), rtol=1e-5, atol=1e-5)
    for got, want in zip(grads["matmul"], grads["lax"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(batched["matmul"], batched["lax"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "in_shape,kernel,stride,padding", [GEOMETRIES[i] for i in (4, 5, 6, 9)]
)  # 2D: SAME, CIRCULAR, VALID, wide integer
def test_conv_as_matmul_by_batch_slices_has_the_same_values_and_gradients(in_shape, kernel, stride, padding):
    """The sliced form (patches a few examples at a time, with its own backward pass)
    against the whole-batch form: outputs, both gradients, and vmapped over replicas."""
    layer = Conv(in_shape, 4, kernel, stride, padding, conv_impl="matmul", rngs=nnx.Rngs(0))
    pads = layer.resolved.pads
    x = _x(in_shape, batch=6)
    kernels = jax.random.normal(jax.random.PRNGKey(3), (2, *layer.kernel.shape))

    def loss(form, k, v):
        return jnp.sum(jnp.sin(form(v, k, layer.strides, pads)))

    def by_chunks(v, k, strides, pads):
        return conv_as_matmul_by_chunks(v, k, strides, pads, 2)

    np.testing.assert_allclose(
        by_chunks(x, kernels[0], layer.strides, pads), conv_as_matmul(x, kernels[0], layer.strides, pads), rtol=1e-5, atol=1e-5
    )
    for got, want in zip(
        jax.grad(lambda k, v: loss(by_chunks, k, v), argnums=(0, 1))(kernels[0], x),
        jax.grad(lambda k, v: loss(conv_as_matmul, k, v), argnums=(0, 1))(kernels[0], x),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    batched = jax.vmap(jax.grad(lambda k: loss(by_chunks, k, x)))(kernels)
    np.testing.assert_allclose(batched, jax.vmap(jax.grad(lambda k: loss(conv_as_matmul, k, x)))(kernels), rtol=1e-4, atol=1e-4)


def test_batch_chunk_is_the_largest_divisor_that_fits():
    assert batch_chunk(50, 2_400_000, budget=5_000_000) == 2  # a 32x32x64 input's 3x3 patches: 2 images a slice
    assert batch_chunk(50, 590_000, budget=5_000_000) == 5  # 8 would fit, 5 divides 50
    assert batch_chunk(100, 400, budget=5_000_000) == 100  # small patches: the whole batch, no slicing
    assert batch_chunk(7, 10**9) == 1


def test_auto_conv_impl_is_matmul_on_cpu_for_small_patches_only():
    small = nnx.eval_shape(lambda: Conv((40, 25), 25, 3, 2, 1, rngs=nnx.Rngs(0)))
    assert small.impl("cpu") == "matmul" and small.impl("gpu") == "lax" and small.impl("tpu") == "lax"
    one_d_full = nnx.eval_shape(lambda: FullKernelConv((40, 25), 25, rngs=nnx.Rngs(0)))  # 40 taps x 25 channels
    assert one_d_full.impl("cpu") == "matmul"
    two_d_full = nnx.eval_shape(lambda: FullKernelConv((28, 28, 32), 8, rngs=nnx.Rngs(0)))  # 784 taps x 32 channels
    assert 28 * 28 * 32 > MATMUL_MAX_PATCH_FEATURES and two_d_full.impl("cpu") == "lax"
    forced = nnx.eval_shape(lambda: get_model("mnist1d_cnn", (40, 1), 10, nnx.Rngs(0), conv_impl="lax"))
    assert all(layer.impl("cpu") == "lax" for layer in forced.layers)


def test_auto_conv_impl_takes_lax_on_cpu_where_one_examples_patches_are_large(monkeypatch):
    """With convs on Eigen: Fashion-MNIST's CNN and the MNIST-1D nets stay matmuls; a stride-1
    32x32 layer of 16 channels (590 KB of patches an example) is a lax.conv, its 3-channel first
    layer (110 KB) not. With convs on YNNPACK the patch size does not count."""
    from research.xla_flags import CPU_FLAG

    monkeypatch.setenv("XLA_FLAGS", CPU_FLAG)
    fashion = nnx.eval_shape(lambda: get_model("fashion_cnn", (28, 28, 1), 10, nnx.Rngs(0)))
    assert {layer.impl("cpu") for layer in fashion.layers if isinstance(layer, Conv)} == {"matmul"}
    # wider 1D full kernels exceed the patch features; this one's patches (316 KB) exceed the bytes,
    # but its window (79 taps) is wider than its input, which XLA would run as a naive loop
    for family, width in (("conv", 64), ("full_kernel_conv", 25)):
        mnist1d = nnx.eval_shape(
            lambda f=family, w=width: get_model("lattice", (40, 1), 10, nnx.Rngs(0), family=f, widths=(w,) * 3)
        )
        assert {layer.impl("cpu") for layer in mnist1d.layers if isinstance(layer, Conv)} == {"matmul"}
    # A window wider than its input is a matmul even past the patch features (issue 30): the
    # options table's 1D full-kernel conv with integer padding 2 (83 taps x 25 channels), which
    # as a lax.conv ran as a naive loop; the 2D full-kernel conv (2.3 MB of patches) stays lax.
    padded = dict(family="full_kernel_conv", widths=(25, 25), kernel_sizes=3, strides=1, padding=2)
    one_d = nnx.eval_shape(lambda: get_model("lattice", (40, 1), 10, nnx.Rngs(0), **padded))
    assert max(math.prod(layer.kernel_size) * layer.in_shape[-1] for layer in one_d.layers) > MATMUL_MAX_PATCH_FEATURES
    assert {layer.impl("cpu") for layer in one_d.layers} == {"matmul"}
    two_d = dict(family="full_kernel_conv", widths=(16, 32), kernel_sizes=3, strides=2)
    fashion_full = nnx.eval_shape(lambda: get_model("lattice", (28, 28, 1), 10, nnx.Rngs(0), **two_d))
    assert {layer.impl("cpu") for layer in fashion_full.layers} == {"lax"}
    fields = dict(family="conv", widths=(16,) * 4, kernel_sizes=3, strides=1, head="global_max")
    cifar = nnx.eval_shape(lambda: get_model("lattice", (32, 32, 3), 10, nnx.Rngs(0), **fields))
    assert 4 * 32 * 32 * 9 * 16 > MATMUL_MAX_PATCH_BYTES >= 4 * 32 * 32 * 9 * 3
    assert [layer.impl("cpu") for layer in cifar.layers] == ["matmul", "lax", "lax", "lax"]
    assert {layer.impl("gpu") for layer in cifar.layers} == {"lax"}
    # VALID padding's smaller layers (30x30 down to 24x24 outputs, 451 to 331 KB) too: as
    # matmuls they took this net 2x SAME's step (issue 30).
    valid = nnx.eval_shape(lambda: get_model("lattice", (32, 32, 3), 10, nnx.Rngs(0), **fields, padding="VALID"))
    assert [layer.impl("cpu") for layer in valid.layers] == ["matmul", "lax", "lax", "lax"]
    monkeypatch.setenv("XLA_FLAGS", "")
    assert [layer.impl("cpu") for layer in cifar.layers] == ["matmul"] * 4


def test_auto_strategy_follows_how_convs_compute():
    from research.train.engine import choose_strategy

    def model(**fields):
        return nnx.eval_shape(lambda: get_model("mnist1d_cnn", (40, 1), 10, nnx.Rngs(0), **fields))

    assert choose_strategy("auto", model(), "cpu", replicas=32) == "scan"  # matmul convs vmap and scan well
    assert choose_strategy("auto", model(conv_impl="lax"), "cpu", replicas=32) == "sequential_dispatch"
    assert choose_strategy("auto", model(conv_impl="lax"), "cpu", replicas=1) == "dispatch"
    assert choose_strategy("auto", model(conv_impl="lax"), "cpu", replicas=4, sharded=True) == "dispatch"
    assert choose_strategy("auto", model(conv_impl="lax"), "gpu", replicas=32) == "scan"
    assert choose_strategy("dispatch", model(), "gpu") == "dispatch"


@pytest.mark.parametrize("in_shape,kernel,stride,padding", EACH_PADDING)
def test_locally_connected_equals_dense_with_sparse_matrix(in_shape, kernel, stride, padding):
    local = LocallyConnected(in_shape, 3, kernel, stride, padding, rngs=nnx.Rngs(0))
    local.bias[...] = jax.random.normal(jax.random.PRNGKey(2), local.bias.shape)
    dense = DenseMap(in_shape, 3, kernel, stride, padding, rngs=nnx.Rngs(1))
    w, b = locally_connected_layer_to_dense(local)
    dense.kernel[...], dense.bias[...] = jnp.asarray(w), jnp.asarray(b)
    x = _x(in_shape)
    np.testing.assert_allclose(dense(x), local(x), rtol=1e-5, atol=1e-5)
    # Sparse: no output sees more inputs than its receptive field.
    fan_in = np.count_nonzero(w, axis=0)
    assert fan_in.max() <= np.prod(local.kernel_size) * in_shape[-1]
    assert np.count_nonzero(w) < w.size or np.prod(local.kernel_size) >= np.prod(in_shape[:-1])


@pytest.mark.parametrize("in_shape,kernel,stride,padding", [g for g in GEOMETRIES if g[3] != "CIRCULAR"][::2])
def test_locally_connected_matches_linen_conv_local(in_shape, kernel, stride, padding):
    local = LocallyConnected(in_shape, 4, kernel, stride, padding, rngs=nnx.Rngs(0))
    pad = padding if isinstance(padding, str) else [(padding, padding)] * (len(in_shape) - 1)
    ref = linen.ConvLocal(4, local.kernel_size, local.strides, padding=pad)
    x = _x(in_shape)
    variables = {"params": {"kernel": local.kernel[...], "bias": local.bias[...]}}
    assert jax.tree.map(jnp.shape, ref.init(jax.random.PRNGKey(0), x))["params"] == jax.tree.map(jnp.shape, variables["params"])
    np.testing.assert_allclose(local(x), ref.apply(variables, x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("in_shape", [(16, 2), (6, 5, 2)])
def test_circular_conv_is_exactly_shift_equivariant_and_locally_connected_is_not(in_shape):
    conv = Conv(in_shape, 3, 3, 1, "CIRCULAR", rngs=nnx.Rngs(0))
    local = LocallyConnected(in_shape, 3, 3, 1, "CIRCULAR", rngs=nnx.Rngs(0))
    x = _x(in_shape)
    offsets = (2,) * (len(in_shape) - 1)
    np.testing.assert_array_equal(conv(shift(x, offsets)), shift(conv(x), offsets))
    assert float(jnp.max(jnp.abs(local(shift(x, offsets)) - shift(local(x), offsets)))) > 1e-2


def test_global_pooling_after_circular_convs_is_exactly_invariant():
    for head in ("global_avg", "global_max"):
        net = get_model("lattice", (10, 9, 2), 5, nnx.Rngs(0), family="conv", widths=(4, 4), padding="CIRCULAR", head=head)
        x = _x((10, 9, 2))
        base = net(x)
        for offsets in [(1, 0), (3, 5), (9, 8)]:
            np.testing.assert_allclose(net(shift(x, offsets)), base, rtol=1e-6, atol=1e-6)


def test_full_kernel_conv_shares_weights_without_locality():
    layer = FullKernelConv((9, 2), 3, kernel_size=3, strides=1, rngs=nnx.Rngs(0))
    assert layer.kernel.shape == (9, 2, 3)
    x = _x((9, 2), batch=1)
    grad = jax.grad(lambda v: layer(v)[0, 0, 0])(x)
    assert np.all(np.abs(np.asarray(grad)) > 0), "output 0 must see every input position"
    # Sharing: circular shifts commute with it, as with any circular conv.
    np.testing.assert_allclose(layer(shift(x, (4,))), shift(layer(x), (4,)), rtol=1e-5, atol=1e-5)
    # With zero padding its kernel is 2L-1 wide, centred like the conv's: every output
    # still sees every input, and it is the conv's function when the extra taps are zero.
    zero = FullKernelConv((9, 2), 3, kernel_size=3, strides=2, padding="SAME", rngs=nnx.Rngs(0))
    assert zero.kernel.shape == (17, 2, 3) and zero.out_spatial == (5,)
    grads = jax.jacrev(lambda v: zero(v)[0])(x)
    assert np.all(np.abs(np.asarray(grads)).sum(axis=(0, 1)) > 0)
    conv = Conv((9, 2), 3, 3, strides=2, padding="SAME", rngs=nnx.Rngs(2))
    zero.kernel[...] = jnp.zeros_like(zero.kernel[...]).at[7:10].set(conv.kernel[...])
    np.testing.assert_allclose(zero(x), conv(x), rtol=1e-5, atol=1e-6)
    # And it embeds exactly into dense.
    dense = DenseMap((9, 2), 3, 9, 1, "CIRCULAR", rngs=nnx.Rngs(1))
    w, b = conv_to_dense(layer)
    dense.kernel[...], dense.bias[...] = jnp.asarray(w), jnp.asarray(b)
    np.testing.assert_allclose(dense(x), layer(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR", "VALID", 1])
@pytest.mark.parametrize("input_shape", [(40, 1), (12, 12, 1)])
def test_swapping_family_keeps_every_activation_shape(padding, input_shape):
    """Shapes only, so traced abstractly: no parameter drawn, nothing computed."""
    shapes = {}
    x = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)

    def apply(graphdef, params, v):
        net = nnx.merge(graphdef, params)
        return net.features(v), net(v)

    for family in ("conv", "full_kernel_conv", "locally_connected", "dense"):
        fields = dict(family=family, widths=(4, 6), kernel_sizes=3, strides=(2, 1), padding=padding)
        graphdef, params = nnx.split(nnx.eval_shape(lambda f=fields: get_model("lattice", input_shape, 10, nnx.Rngs(0), **f)))
        feats, logits = jax.eval_shape(functools.partial(apply, graphdef), params, x)
        shapes[family] = [f.shape for f in feats]
        assert logits.shape == (2, 10)
    assert len(set(map(tuple, shapes.values()))) == 1, shapes


def test_reference_parameter_counts():
    def params(name, shape, **fields):  # counted on the abstract model: shapes, no init
        return count_params(nnx.eval_shape(lambda: get_model(name, shape, 10, nnx.Rngs(0), **fields)))

    # MNIST-1D CNN: 1*5*25+25 + 2*(25*3*25+25) + 125*10+10; MLP 40-100-100-10.
    assert params("mnist1d_cnn", (40, 1)) == 150 + 2 * 1900 + 1260
    assert params("mnist1d_mlp", (40, 1)) == 4100 + 10100 + 1010
    # Fashion MLP 784-256-128-100-10.
    assert params("fashion_mlp", (28, 28, 1)) == 200960 + 32896 + 12900 + 1010
    # Locally connected twin of the MNIST-1D CNN: per-position kernels and biases.
    lc = params("mnist1d_cnn", (40, 1), family="locally_connected")
    assert lc == 19 * (5 * 25 + 25) + 10 * (75 * 25 + 25) + 5 * (75 * 25 + 25) + 1260


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"family": "convv"}, "Did you mean 'conv'"),
        ({"widths": (0, 3)}, "positive"),
        ({"kernel_sizes": 50, "padding": "VALID"}, "larger than"),
        ({"kernel_sizes": (3, 3)}, "entries"),
        ({"padding": "REFLECT"}, "padding"),
        ({"head": "global_mean"}, "head"),
        ({"widthz": (3,)}, "Did you mean 'widths'"),
        ({"conv_impl": "matmull"}, "Did you mean 'matmul'"),
    ],
)
def test_bad_model_fields_raise_user_errors(fields, match):
    with pytest.raises(UserError, match=match):
        get_model("mnist1d_cnn", (40, 1), 10, nnx.Rngs(0), **fields)


@pytest.mark.parametrize("shape", [(2, 9, 3), (2, 8, 7, 3)])
def test_tiled_pooling_equals_reduce_window(shape):
    from research.models.pooling import _pool_reduce_window, pool

    x = _x(shape[1:], batch=shape[0])
    np.testing.assert_array_equal(pool(x, "max", 2, 2), _pool_reduce_window(x, "max", 2, 2))
    np.testing.assert_allclose(pool(x, "avg", 3, 3), _pool_reduce_window(x, "avg", 3, 3), rtol=1e-6, atol=1e-6)
    assert pool(x, "max", 3, 2).shape == _pool_reduce_window(x, "max", 3, 2).shape
    assert pool(x, "stride", 1, 2).shape[1] == (shape[1] + 1) // 2


@pytest.mark.parametrize(
    "source,target",
    [("conv", "locally_connected"), ("conv", "dense"), ("locally_connected", "dense"), ("full_kernel_conv", "dense")],
)
@pytest.mark.parametrize("input_shape", [(16, 2), (8, 6, 1)])
def test_whole_networks_embed_exactly_down_the_lattice(source, target, input_shape):
    from research.models.embed import embed_network_params

    fields = dict(
        widths=(3, 4),
        kernel_sizes=3,
        strides=(2, 1),
        padding="SAME",  # full_kernel_conv too: its zero-padded form embeds exactly as well
        head_widths=(5,),
    )
    net = get_model("lattice", input_shape, 4, nnx.Rngs(0), family=source, **fields)
    embedded = get_model("lattice", input_shape, 4, nnx.Rngs(1), family=target, **fields)
    pure = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(net, nnx.Param)))
    state = nnx.state(embedded, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree.map(jnp.asarray, embed_network_params(net, pure, target)))
    nnx.update(embedded, state)
    x = _x(input_shape)
    np.testing.assert_allclose(embedded(x), net(x), rtol=1e-4, atol=1e-5)


def test_blur_pooling_low_passes_then_subsamples():
    from research.models.pooling import blur, pool, pooled_spatial

    x = jnp.zeros((1, 8, 1)).at[0, 3, 0].set(1.0)
    np.testing.assert_allclose(np.asarray(blur(x, 2))[0, 2:5, 0], [0.25, 0.5, 0.25])
    assert pool(x, "blur", 2, 2).shape == (1, 4, 1) == (1, *pooled_spatial((8,), "blur", 2, 2), 1)
    # A constant signal stays constant away from the zero-padded edges; an alternating one is removed.
    alternating = jnp.asarray([1.0, -1.0] * 4)[None, :, None]
    np.testing.assert_allclose(np.asarray(blur(alternating, 2))[0, 1:-1, 0], 0.0, atol=1e-7)
    two_d = pool(jnp.ones((2, 6, 6, 3)), "blur", 2, 2)
    assert two_d.shape == (2, 3, 3, 3) and float(two_d[0, 1, 1, 0]) == pytest.approx(1.0)


def test_a_full_kernel_conv_does_not_embed_into_a_locally_connected_net():
    """Audit: the embedding was allowed and built a kernel of the full size, not the shape of
    the locally connected net of the same fields (the conv's kernel size); only dense holds it."""
    from research.models.embed import EMBEDDABLE, embed_layer_params

    fields = dict(widths=(3,), kernel_sizes=3, strides=1, padding="SAME")
    net = get_model("lattice", (12, 1), 4, nnx.Rngs(0), family="full_kernel_conv", **fields)
    layer = net.layers[0]
    assert "locally_connected" not in EMBEDDABLE["full_kernel_conv"]
    with pytest.raises(ValueError, match="cannot embed full_kernel_conv into locally_connected"):
        embed_layer_params(layer, layer.kernel[...], layer.bias[...], "locally_connected")
