"""Convolutions and locally connected layers as im2col matmuls (``conv_impl="matmul"``).

:func:`patches` gathers every output position's input patch by strided slices of
the zero-padded input; :func:`conv_as_matmul` multiplies them by the kernel as a
``(taps * in, out)`` matrix, and :func:`locally_connected_as_matmul` by one such
matrix per output position. On CPU a batch whose patches would exceed
:data:`PATCH_CHUNK_BYTES` runs a slice of examples at a time, with its own
backward pass (a custom VJP) that recomputes each slice's patches instead of
saving them. The layers of ``research.models.layers`` call these; padding is
resolved there, so every function here takes explicit ``(before, after)`` zero pads.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

Pads = tuple[tuple[int, int], ...]


def patches(x: jax.Array, window: Sequence[int], strides: Sequence[int], pads: Sequence[tuple[int, int]]) -> jax.Array:
    """``(N, *out_spatial, taps * C)``: every output position's input patch (im2col).

    One strided slice of the zero-padded input per kernel tap, concatenated along
    channels tap-major, channel-minor (the order of a ``(*window, C, O)`` kernel).
    """
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    out = [(x.shape[1 + d] - k) // s + 1 for d, (k, s) in enumerate(zip(window, strides))]
    taps = [
        x[(slice(None), *(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offsets, strides, out)), slice(None))]
        for offsets in itertools.product(*(range(k) for k in window))
    ]
    return jnp.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]


# Bytes of im2col patches one slice of the batch may hold (see :func:`batch_chunk`):
# a few MB, so that the patches are written and read back in the CPU's caches.
PATCH_CHUNK_BYTES = 5 * 2**20


def batch_chunk(batch: int, bytes_per_example: int, budget: int | None = None) -> int:
    """The largest divisor of ``batch`` whose examples' patches fit in ``budget`` bytes (at least 1;
    default :data:`PATCH_CHUNK_BYTES`, read when called, so a cost count can lift it).

    Why: on CPU, writing and reading back a large layer's whole-batch patches costs
    more than the matmul itself; slices whose patches stay in cache do not
    (measured: benchmarks/README.md, "Measurements behind rules in the code").
    """
    budget = PATCH_CHUNK_BYTES if budget is None else budget
    fits = max(1, budget // max(1, bytes_per_example))
    return max(d for d in range(1, min(batch, fits) + 1) if batch % d == 0)


def _conv_matmul_whole(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: Pads) -> jax.Array:
    window = kernel.shape[: len(strides)]
    return patches(x, window, strides, pads) @ kernel.reshape(-1, kernel.shape[-1])


def _by_chunks(a: jax.Array, chunk: int) -> jax.Array:
    return a.reshape(a.shape[0] // chunk, chunk, *a.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_matmul_chunked(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: Pads, chunk: int) -> jax.Array:
    y = lax.map(lambda xc: _conv_matmul_whole(xc, kernel, strides, pads), _by_chunks(x, chunk))
    return y.reshape(x.shape[0], *y.shape[2:])


def _conv_matmul_chunked_fwd(
    x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: Pads, chunk: int
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _conv_matmul_chunked(x, kernel, strides, pads, chunk), (x, kernel)


def _conv_matmul_chunked_bwd(
    strides: tuple[int, ...], pads: Pads, chunk: int, residuals: tuple[jax.Array, jax.Array], dy: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Slice by slice of the batch: the patches recomputed (in cache, not saved from the
    forward pass), the kernel's gradient accumulated, the input's gradient as the
    patches' transpose applied to ``dy @ kernel.T``."""
    x, kernel = residuals
    window = kernel.shape[: len(strides)]
    matrix = kernel.reshape(-1, kernel.shape[-1])

    def one_chunk(d_matrix: jax.Array, xs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x_chunk, dy_chunk = xs
        cols, cols_transpose = jax.vjp(lambda a: patches(a, window, strides, pads), x_chunk)
        d_matrix = d_matrix + jnp.einsum("...f,...o->fo", cols, dy_chunk)
        (dx_chunk,) = cols_transpose(dy_chunk @ matrix.T)
        return d_matrix, dx_chunk

    d_matrix, dx = lax.scan(one_chunk, jnp.zeros_like(matrix), (_by_chunks(x, chunk), _by_chunks(dy, chunk)))
    return dx.reshape(x.shape), d_matrix.reshape(kernel.shape)


_conv_matmul_chunked.defvjp(_conv_matmul_chunked_fwd, _conv_matmul_chunked_bwd)


@functools.partial(jax.jit, static_argnums=(2, 3))  # one program when called eagerly; inlined under jit
def conv_as_matmul(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...], pads: Pads) -> jax.Array:
    """``lax.conv_general_dilated`` (channels last, kernel ``(*window, in, out)``) as
    im2col: the input's :func:`patches` times the kernel reshaped to ``(taps * in, out)``.

    On CPU, a batch whose patches exceed :data:`PATCH_CHUNK_BYTES` is computed a
    slice of examples at a time (:func:`batch_chunk`), forward and backward, so that
    no whole-batch patch array is ever written to memory. The budget is per replica:
    vmapped over R replicas, a slice holds R times as much. That form has a custom
    VJP, so it supports reverse-mode derivatives only (``grad``, ``jacrev``; not
    ``jvp``/``jacfwd``/``hessian``, which the whole-batch form allows)."""
    window = kernel.shape[: len(strides)]
    out_positions = math.prod((n + lo + hi - k) // s + 1 for n, k, s, (lo, hi) in zip(x.shape[1:-1], window, strides, pads))
    chunk = batch_chunk(x.shape[0], out_positions * math.prod(kernel.shape[:-1]) * x.dtype.itemsize)
    if chunk == x.shape[0] or jax.default_backend() != "cpu":
        return _conv_matmul_whole(x, kernel, strides, pads)
    return _conv_matmul_chunked(x, kernel, strides, pads, chunk)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def locally_connected_as_matmul(
    x: jax.Array, kernel: jax.Array, window: tuple[int, ...], strides: tuple[int, ...], pads: Pads
) -> jax.Array:
    """``lax.conv_general_dilated_local`` as im2col: one ``(taps * in) x out`` matmul per
    output position. The kernel's patch axis is channel-major (as ``conv_general_dilated_local``),
    so it is reordered to :func:`patches`' tap-major order first."""
    *out_spatial, fan_in, out_channels = kernel.shape
    channels = fan_in // math.prod(window)
    kernel = jnp.swapaxes(kernel.reshape(*out_spatial, channels, math.prod(window), out_channels), -3, -2)
    return jnp.einsum("n...f,...fo->n...o", patches(x, window, strides, pads), kernel.reshape(*out_spatial, fan_in, out_channels))
