"""The layer lattice: {weight sharing yes/no} x {locality yes/no}.

Every layer maps a channels-last input ``(batch, *spatial, channels_in)`` to
``(batch, *out_spatial, channels_out)``; 1D and 2D alike. For the same kernel
size, stride and padding, all four families produce the same output shape, so a
network can swap one family for another and keep every activation shape:

==============================  ===============  ============
family                          weight sharing   locality
==============================  ===============  ============
``conv``                        yes              yes
``full_kernel_conv``            yes              no
``locally_connected``           no               yes
``dense``                       no               no
==============================  ===============  ============

``full_kernel_conv`` is a conv whose every output sees the whole input (sharing
without locality), padded as the conv it replaces: with ``'CIRCULAR'`` its
kernel is the input's size and wraps around; with zero padding (``'SAME'``,
``'VALID'``, an int) its kernel is ``2 * size - 1`` per axis, centred where the
conv's window is centred, so the two differ only in locality. ``dense`` flattens its input and applies one dense
matrix, then reshapes to the matched output shape (Neyshabur 2020, "Towards
learning convolutions from scratch", https://arxiv.org/abs/2007.13657).

Padding is one of ``'SAME'`` (zeros), ``'VALID'``, ``'CIRCULAR'`` (wrap around)
or an int (that many zeros on each side, as PyTorch's ``padding=``). All
families resolve it with :func:`resolve_padding`, so they agree exactly, which
the exact embeddings (``research.models.embed``) rely on.

The conv families compute the same function in one of two ways (``conv_impl``):
``lax`` (``lax.conv_general_dilated``) or ``matmul`` (the input's patches,
gathered by strided slices, times the kernel as a matrix: im2col, in
``research.models.im2col``). ``auto``
takes ``matmul`` on CPU when a patch has at most
:data:`MATMUL_MAX_PATCH_FEATURES` entries and, where convs run on XLA's Eigen
kernels (``research.xla_flags``), one example's patches at most
:data:`MATMUL_MAX_PATCH_BYTES` (or a window wider than its input), and ``lax``
otherwise. Why: on XLA CPU the
matmul form is the faster one at those sizes, vmapped replicas run it as
batched matmuls instead of grouped convs, and it stays fast inside ``lax.scan``;
above them writing the patches costs more than ``lax.conv`` on XLA's Eigen
kernels (measured: benchmarks/README.md, "Measurements behind rules in the
code"). The two forms agree to float32 rounding (``tests/test_layers.py``).

``lax.conv`` stays on Eigen's kernels only while no conv of the training step has a
window wider than its input: XLA swaps the operands of such a conv into one with a
reversed window, which XLA CPU runs as a naive loop (20x slower). A zero padding wider
than the kernel's reach makes the kernel gradient such a conv, so ``Conv`` pads those
inputs itself (:func:`_output_outgrows_input`); a zero-padded full-kernel conv's own
window is wider than its input, so ``auto`` keeps it a matmul where it can.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from research.errors import UserError, unknown
from research.models.im2col import conv_as_matmul, locally_connected_as_matmul
from research.xla_flags import convs_on_eigen

Padding = str | int
PADDINGS = ("SAME", "VALID", "CIRCULAR")
FAMILIES = ("conv", "full_kernel_conv", "locally_connected", "dense")
CONV_IMPLS = ("auto", "lax", "matmul")
# Largest patch (kernel taps x input channels) that ``auto`` turns into a matmul
# on CPU: every conv of the studies' CNNs and the 1D full-kernel conv are below it;
# a 2D full-kernel conv (784 taps x 32 channels) is above it: its patches would take
# gigabytes and it runs no faster as a matmul.
# measured: benchmarks/README.md, "Measurements behind rules in the code".
MATMUL_MAX_PATCH_FEATURES = 2048
# Largest im2col array of one example (output positions x patch, float32) that ``auto``
# turns into a matmul on CPU when convs run on XLA's Eigen kernels (``research.xla_flags``;
# on YNNPACK neither form wins at every CIFAR shape, so only the patch-features rule applies).
# The Fashion-MNIST CNN's (226 KB) and every MNIST-1D conv's patches are below it; a stride-1
# layer of 16 or 64 channels at 24x24 to 32x32 outputs (331 KB to 2.4 MB) is above it and
# runs faster as ``lax.conv`` (at 512 KiB, VALID padding's smaller layers were matmuls, 2x slower).
# measured: benchmarks/README.md, "Measurements behind rules in the code".
MATMUL_MAX_PATCH_BYTES = 256 * 2**10
# A conv whose window is wider than its input runs as a naive loop in ``lax.conv`` (above), so
# ``auto`` makes it a matmul whatever its patch features, up to this im2col array an example:
# the 1D full-kernel conv with integer padding 2 (83 taps x 25 channels, 2075 features) is one,
# 1.8x faster as a matmul (365 KB of patches an example); a 2D full-kernel conv's (2.3-2.4 MB an
# example at 28x28, stride 2, widths 16 and 32) stay ``lax``: it runs no faster as a matmul.
# measured: benchmarks/README.md, "Options".
WIDE_WINDOW_MAX_PATCH_BYTES = 2**20

# jax's truncated normal on [-2, 2] has this standard deviation; dividing by it
# gives the kernel exactly the variance asked for (as ``lecun_normal`` does).
_TRUNCATED_NORMAL_STD = 0.87962566103423978


def lecun_kernel(key: jax.Array, shape: Sequence[int], fan_in: int) -> jax.Array:
    """LeCun normal init with the layer's true fan-in (inputs into one output unit).

    ``nnx.initializers.lecun_normal`` infers the fan-in from the kernel's shape,
    which is right for dense and conv kernels but counts a locally connected
    kernel's positions ``(P, fan_in, out)`` into it (std too small by
    ``sqrt(P)``) and a zero-padded full-kernel conv's ``2L - 1`` taps where
    only ``L`` ever meet the input. Every family passes its ``fan_in`` here;
    for conv and dense kernels the draw is bit-identical to ``lecun_normal``.
    """
    std = math.sqrt(1.0 / fan_in) / _TRUNCATED_NORMAL_STD
    # Drawn flat, then reshaped: the same numbers (each element's random bits come from its
    # flat index), and XLA:CPU compiles the 1-D draw 4-9x faster than a 4-D or 5-D one
    # (benchmarks/README.md, "Measurements behind rules in the code").
    flat = jax.random.truncated_normal(key, -2.0, 2.0, (math.prod(shape),), jnp.float32)
    return flat.reshape(tuple(shape)) * std


@dataclass(frozen=True)
class ResolvedPadding:
    """Explicit padding: ``pads[i] = (before, after)`` per spatial axis."""

    pads: tuple[tuple[int, int], ...]
    circular: bool


def _tuple(value: int | Sequence[int], ndim: int, what: str) -> tuple[int, ...]:
    values = (value,) * ndim if isinstance(value, int) else tuple(value)
    if len(values) != ndim:
        raise UserError(f"{what} {value!r} has {len(values)} entries; the input has {ndim} spatial axes")
    if any(not isinstance(v, int) or v < 1 for v in values):
        raise UserError(f"{what} must be positive integers, got {value!r}")
    return values


def resolve_padding(
    padding: Padding | ResolvedPadding, spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int]
) -> ResolvedPadding:
    """Turn a padding spec into explicit (before, after) pads per spatial axis."""
    if isinstance(padding, ResolvedPadding):
        return padding
    if isinstance(padding, bool) or not isinstance(padding, (str, int)):
        raise UserError(f"padding must be one of {PADDINGS} or an int, got {padding!r}")
    if isinstance(padding, int):
        if padding < 0:
            raise UserError(f"padding must be >= 0, got {padding}")
        return ResolvedPadding(tuple((padding, padding) for _ in spatial), circular=False)
    mode = padding.upper()
    if mode == "CIRCULAR":
        # As flax: (k-1)//2 before, k//2 after, then a VALID conv. The output
        # length is ceil(L / stride), as with SAME.
        return ResolvedPadding(tuple(((k - 1) // 2, k // 2) for k in kernel), circular=True)
    if mode in ("SAME", "VALID"):
        pads = lax.padtype_to_pads(tuple(spatial), tuple(kernel), tuple(strides), mode)
        return ResolvedPadding(tuple(tuple(p) for p in pads), circular=False)
    raise UserError(f"padding must be one of {PADDINGS} or an int, got {padding!r}")


def conv_output_spatial(
    spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int], padding: Padding
) -> tuple[int, ...]:
    """Spatial output shape shared by every family of the lattice."""
    resolved = resolve_padding(padding, spatial, kernel, strides)
    out = []
    for size, k, s, (lo, hi) in zip(spatial, kernel, strides, resolved.pads):
        padded = size + lo + hi
        if padded < k:
            raise UserError(
                f"kernel {tuple(kernel)} is larger than the padded input {tuple(spatial)} "
                f"(padding {padding!r}); use a smaller kernel or padding 'SAME'"
            )
        out.append((padded - k) // s + 1)
    return tuple(out)


def _dimension_numbers(ndim: int) -> lax.ConvDimensionNumbers:
    spatial = {1: "W", 2: "HW", 3: "DHW"}[ndim]
    return lax.conv_dimension_numbers((1,) * (ndim + 2), (1,) * (ndim + 2), (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))


def _pad_input(x: jax.Array, resolved: ResolvedPadding) -> tuple[jax.Array, tuple[tuple[int, int], ...]]:
    """Wrap-pad circular inputs (then the conv itself is VALID); the zero pads left to apply."""
    if resolved.circular:
        x = jnp.pad(x, ((0, 0), *resolved.pads, (0, 0)), mode="wrap")
        return x, ((0, 0),) * len(resolved.pads)
    return x, resolved.pads


def _output_outgrows_input(spatial: Sequence[int], out_spatial: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether the output, spread by the strides, is longer than the (unpadded) input on some
    axis: zero padding wider than the kernel's reach (an int padding of 2 around a 3-tap kernel).

    Then ``lax.conv``'s kernel gradient is a conv whose window (the output gradient) is larger
    than its input, and XLA's algebraic simplifier swaps its operands into a conv with a
    reversed window that XLA CPU's Eigen kernels do not take: it runs as a naive loop, 20x
    slower. ``Conv`` zero-pads such inputs itself, so that every conv of the step stays on
    Eigen (measured: benchmarks/README.md, "Measurements behind rules in the code")."""
    return any((o - 1) * s + 1 > n for n, o, s in zip(spatial, out_spatial, strides))


class SpatialLayer(nnx.Module):
    """Shared bookkeeping: shapes, kernel size, stride and padding."""

    family: str = ""

    def __init__(
        self,
        in_shape: Sequence[int],
        out_channels: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
    ):
        self.in_shape = tuple(in_shape)  # (*spatial, channels)
        ndim = len(self.in_shape) - 1
        if ndim < 1:
            raise UserError(f"spatial layers need inputs with spatial axes, got shape {self.in_shape}")
        self.kernel_size = _tuple(kernel_size, ndim, "kernel_size")
        self.strides = _tuple(strides, ndim, "strides")
        self.padding = padding
        self.out_channels = out_channels
        self.out_spatial = conv_output_spatial(self.in_shape[:-1], self.kernel_size, self.strides, padding)
        self.resolved = resolve_padding(padding, self.in_shape[:-1], self.kernel_size, self.strides)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.out_spatial, self.out_channels)

    @property
    def fan_in(self) -> int:
        """Inputs into one output unit (an interior one for zero-padded convs): what init uses."""
        return math.prod(self.kernel_size) * self.in_shape[-1]

    @property
    def macs(self) -> int:
        """Multiply-accumulates per example in the forward pass (as computed, not as sparse)."""
        if self.family == "dense":
            return math.prod(self.in_shape) * math.prod(self.out_shape)
        return math.prod(self.out_spatial) * math.prod(self.kernel_size) * self.in_shape[-1] * self.out_channels


class Conv(SpatialLayer):
    """Weight sharing and locality: the ordinary convolution."""

    family = "conv"

    def __init__(
        self, in_shape, out_channels, kernel_size, strides=1, padding="SAME", *, conv_impl: str = "auto", rngs: nnx.Rngs
    ):
        super().__init__(in_shape, out_channels, kernel_size, strides, padding)
        if conv_impl not in CONV_IMPLS:
            raise unknown("conv_impl", conv_impl, CONV_IMPLS)
        self.conv_impl = conv_impl
        in_channels = self.in_shape[-1]
        self.kernel = nnx.Param(lecun_kernel(rngs.params(), (*self.kernel_size, in_channels, out_channels), self.fan_in))
        self.bias = nnx.Param(jnp.zeros((out_channels,)))

    def impl(self, backend: str | None = None) -> str:
        """``lax`` or ``matmul``: how this layer computes on ``backend`` (default: JAX's)."""
        if self.conv_impl != "auto":
            return self.conv_impl
        if (backend or jax.default_backend()) != "cpu":
            return "lax"
        patch = math.prod(self.kernel_size) * self.in_shape[-1]
        patch_bytes = 4 * math.prod(self.out_spatial) * patch  # float32
        # A window wider than the input (a zero-padded full-kernel conv): XLA swaps such a conv's
        # operands into a reversed-window conv, which runs as a naive loop, not on Eigen.
        if any(k > n for k, n in zip(self.kernel_size, self.in_shape[:-1])) and patch_bytes <= WIDE_WINDOW_MAX_PATCH_BYTES:
            return "matmul"
        if patch > MATMUL_MAX_PATCH_FEATURES:
            return "lax"
        return "matmul" if patch_bytes <= MATMUL_MAX_PATCH_BYTES or not convs_on_eigen() else "lax"

    def __call__(self, x: jax.Array) -> jax.Array:
        x, pads = _pad_input(x, self.resolved)
        if self.impl() == "matmul":
            y = conv_as_matmul(x, self.kernel[...], self.strides, pads)
        else:
            if _output_outgrows_input(x.shape[1:-1], self.out_spatial, self.strides):
                x, pads = jnp.pad(x, ((0, 0), *pads, (0, 0))), ((0, 0),) * len(pads)
            y = lax.conv_general_dilated(
                x,
                self.kernel[...],
                window_strides=self.strides,
                padding=pads,
                dimension_numbers=_dimension_numbers(len(self.strides)),
            )
        return y + self.bias[...].reshape((1,) * (y.ndim - 1) + (-1,))


class FullKernelConv(Conv):
    """Weight sharing without locality: a conv whose every output sees the whole input.

    Its output has the shape of the conv it replaces (``kernel_size``,
    ``strides``, ``padding``). With ``'CIRCULAR'`` padding its kernel is the
    input's size, wrapped around. With zero padding (``'SAME'``, ``'VALID'``, an
    int) its kernel is ``2 * size - 1`` per axis, centred on the conv window's
    centre and zero-padded so that every output position sees every input
    position: the conv with locality removed and nothing else changed.
    Its fan-in is the whole input (``prod(in_shape)``) either way.
    """

    family = "full_kernel_conv"

    def __init__(
        self, in_shape, out_channels, kernel_size=1, strides=1, padding="CIRCULAR", *, conv_impl: str = "auto", rngs: nnx.Rngs
    ):
        spatial = tuple(in_shape[:-1])
        ndim = len(spatial)
        conv_kernel, conv_strides = _tuple(kernel_size, ndim, "kernel_size"), _tuple(strides, ndim, "strides")
        conv_pads = resolve_padding(padding, spatial, conv_kernel, conv_strides)
        conv_out = conv_output_spatial(spatial, conv_kernel, conv_strides, padding)
        if conv_pads.circular:
            full, resolved = spatial, ResolvedPadding(tuple(((n - 1) // 2, n // 2) for n in spatial), circular=True)
        else:
            full = tuple(2 * n - 1 for n in spatial)
            pads = []
            for n, k, s, o, (lo, _) in zip(spatial, conv_kernel, conv_strides, conv_out, conv_pads.pads):
                before = lo - (k - 1) // 2 + n - 1  # window centre where the conv's is
                after = (o - 1) * s + 2 * n - 1 - n - before
                if before < 0 or after < 0:
                    raise UserError(f"full_kernel_conv cannot centre a full kernel on the conv's windows (padding {padding!r})")
                pads.append((before, after))
            resolved = ResolvedPadding(tuple(pads), circular=False)
        super().__init__(in_shape, out_channels, full, conv_strides, resolved, conv_impl=conv_impl, rngs=rngs)
        self.padding = padding

    @property
    def fan_in(self) -> int:
        return math.prod(self.in_shape)


class LocallyConnected(SpatialLayer):
    """Locality without weight sharing: every output position has its own kernel.

    Kernel layout as Linen's ``nn.ConvLocal``: ``(*out_spatial, in_channels *
    prod(kernel_size), out_channels)`` with the patch features ordered channel
    first (as ``lax.conv_general_dilated_patches``), and one bias per output
    entry. Computed as strided-slice patches times a matrix per position
    (:func:`locally_connected_as_matmul`), which XLA CPU runs faster than
    ``lax.conv_general_dilated_local`` (measured: benchmarks/README.md,
    "Measurements behind rules in the code"); the same numbers to float32
    rounding (tested against Linen's ``ConvLocal``).
    """

    family = "locally_connected"

    def __init__(self, in_shape, out_channels, kernel_size, strides=1, padding="SAME", *, rngs: nnx.Rngs):
        super().__init__(in_shape, out_channels, kernel_size, strides, padding)
        shape = (*self.out_spatial, self.fan_in, out_channels)
        self.kernel = nnx.Param(lecun_kernel(rngs.params(), shape, self.fan_in))
        self.bias = nnx.Param(jnp.zeros((*self.out_spatial, out_channels)))

    def __call__(self, x: jax.Array) -> jax.Array:
        x, pads = _pad_input(x, self.resolved)
        y = locally_connected_as_matmul(x, self.kernel[...], self.kernel_size, self.strides, pads)
        return y + self.bias[...][None]


class DenseMap(SpatialLayer):
    """Neither sharing nor locality: one dense matrix from the flattened input to
    the flattened output of the conv it replaces."""

    family = "dense"

    @property
    def fan_in(self) -> int:
        return math.prod(self.in_shape)

    def __init__(self, in_shape, out_channels, kernel_size, strides=1, padding="SAME", *, rngs: nnx.Rngs):
        super().__init__(in_shape, out_channels, kernel_size, strides, padding)
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        self.kernel = nnx.Param(lecun_kernel(rngs.params(), (n_in, n_out), self.fan_in))
        self.bias = nnx.Param(jnp.zeros((n_out,)))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x.reshape(x.shape[0], -1) @ self.kernel[...] + self.bias[...][None]
        return y.reshape(x.shape[0], *self.out_shape)


LAYER_FAMILIES: dict[str, type[SpatialLayer]] = {
    "conv": Conv,
    "full_kernel_conv": FullKernelConv,
    "locally_connected": LocallyConnected,
    "dense": DenseMap,
}


def make_layer(
    family: str, in_shape, out_channels, kernel_size, strides, padding, *, conv_impl: str = "auto", rngs
) -> SpatialLayer:
    """Build one lattice layer by family name (``conv_impl`` matters to the conv families only)."""
    if family not in LAYER_FAMILIES:
        raise unknown("layer family", family, LAYER_FAMILIES)
    if conv_impl not in CONV_IMPLS:
        raise unknown("conv_impl", conv_impl, CONV_IMPLS)
    extra = {"conv_impl": conv_impl} if issubclass(LAYER_FAMILIES[family], Conv) else {}
    return LAYER_FAMILIES[family](in_shape, out_channels, kernel_size, strides, padding, rngs=rngs, **extra)
