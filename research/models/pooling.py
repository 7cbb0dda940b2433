"""Pooling and downsampling over the spatial axes of channels-last arrays.

``pool(x, kind, window, stride)`` with kind one of ``none``, ``max``, ``avg``
(VALID windows), ``stride`` (keep every ``stride``-th position: downsampling
without pooling) or ``blur`` (anti-aliased downsampling, Zhang 2019, "Making
convolutional networks shift-invariant again", https://arxiv.org/abs/1904.11486:
a binomial low-pass filter of length ``window + 1`` per axis, zero-padded, then
every ``stride``-th position). ``global_pool(x, kind)`` reduces every spatial axis
(``avg`` or ``max``) and is exactly invariant to circular shifts of its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from research.errors import UserError, unknown

POOLINGS = ("none", "max", "avg", "stride", "blur")
GLOBAL_POOLINGS = ("avg", "max")


def pooled_spatial(spatial: Sequence[int], kind: str, window: int, stride: int) -> tuple[int, ...]:
    """Spatial shape after :func:`pool` (validates the arguments)."""
    if kind not in POOLINGS:
        raise unknown("pooling", kind, POOLINGS)
    if kind == "none":
        return tuple(spatial)
    if window < 1 or stride < 1:
        raise UserError(f"pool window and stride must be >= 1, got window={window}, stride={stride}")
    if kind in ("stride", "blur"):
        return tuple(-(-n // stride) for n in spatial)
    if any(n < window for n in spatial):
        raise UserError(f"pool window {window} is larger than the feature map {tuple(spatial)}")
    return tuple((n - window) // stride + 1 for n in spatial)


def pool(x: jax.Array, kind: str, window: int = 2, stride: int = 2) -> jax.Array:
    """Pool ``(batch, *spatial, channels)`` over its spatial axes."""
    ndim = x.ndim - 2
    pooled_spatial(x.shape[1:-1], kind, window, stride)
    if kind == "none":
        return x
    if kind == "blur":
        x = blur(x, window)
    if kind in ("stride", "blur"):
        return x[(slice(None),) + (slice(None, None, stride),) * ndim]
    if window == stride:
        return _pool_tiles(x, kind, window)
    return _pool_reduce_window(x, kind, window, stride)


def blur(x: jax.Array, window: int) -> jax.Array:
    """Binomial low-pass filter of length ``window + 1`` along every spatial axis
    (``[1, 2, 1] / 4`` for window 2), zero-padded so the shape is kept."""
    taps = jnp.asarray([math.comb(window, k) for k in range(window + 1)], x.dtype) / 2**window
    for axis in range(1, x.ndim - 1):
        pads = [(0, 0)] * x.ndim
        pads[axis] = (window // 2, window - window // 2)
        padded = jnp.pad(x, pads)
        n = x.shape[axis]
        x = sum(taps[k] * lax.slice_in_dim(padded, k, k + n, axis=axis) for k in range(window + 1))
    return x


def _pool_tiles(x: jax.Array, kind: str, window: int) -> jax.Array:
    """Non-overlapping windows as reshape-then-reduce: the same windows as
    ``reduce_window`` (trailing remainder dropped, as VALID), with a much cheaper
    backward pass on XLA CPU (measured: benchmarks/README.md, "Measurements
    behind rules in the code")."""
    n, *spatial, c = x.shape
    out = [size // window for size in spatial]
    x = x[(slice(None), *(slice(0, o * window) for o in out))]
    tiled = x.reshape(n, *[d for o in out for d in (o, window)], c)
    axes = tuple(2 + 2 * i for i in range(len(out)))
    return tiled.max(axis=axes) if kind == "max" else tiled.mean(axis=axes)


def _pool_reduce_window(x: jax.Array, kind: str, window: int, stride: int) -> jax.Array:
    ndim = x.ndim - 2
    dims = (1, *(window,) * ndim, 1)
    strides = (1, *(stride,) * ndim, 1)
    if kind == "max":
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID")
    total = lax.reduce_window(x, 0.0, lax.add, dims, strides, "VALID")
    return total / (window**ndim)


def global_pool(x: jax.Array, kind: str) -> jax.Array:
    """Reduce every spatial axis: ``(batch, *spatial, c) -> (batch, c)``."""
    axes = tuple(range(1, x.ndim - 1))
    if kind == "avg":
        return jnp.mean(x, axis=axes)
    if kind == "max":
        return jnp.max(x, axis=axes)
    raise unknown("global pooling", kind, GLOBAL_POOLINGS)
