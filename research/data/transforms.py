"""Pure data transforms on channels-last arrays ``(n, *spatial, channels)``.

Each function returns new arrays and never mutates its input; randomness comes
only from an explicit seed or ``numpy.random.Generator``. They work on numpy
arrays and, where noted, on jax arrays too (the probes shift on device).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from research.errors import UserError

SHIFT_MODES = ("circular", "zero")


def _xp(x):
    return jnp if isinstance(x, jax.Array) else np


def per_class_subset(x: np.ndarray, y: np.ndarray, n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``n_per_class`` examples of every class, chosen by ``seed``, in a seeded order."""
    if n_per_class < 1:
        raise UserError(f"n_per_class must be >= 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < n_per_class:
            raise UserError(f"class {label} has only {len(idx)} training examples, fewer than n_per_class={n_per_class}")
        keep.append(rng.choice(idx, n_per_class, replace=False))
    order = rng.permutation(np.concatenate(keep))
    return x[order], y[order]


def stratified_split(y: np.ndarray, n_held_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(held_out, rest)`` index arrays: ``n_held_out`` examples drawn by ``seed`` with
    every class in the proportion it has in ``y`` (largest remainders round up).
    Both keep the original order, so the rest of the data set is untouched."""
    if not 0 <= n_held_out < len(y):
        raise UserError(f"data.n_val={n_held_out} must be between 0 and the training split's size - 1 ({len(y) - 1})")
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * n_held_out / len(y)
    take = np.floor(quota).astype(int)
    by_remainder = np.argsort(-(quota - take), kind="stable")
    take[by_remainder[: n_held_out - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    held = np.concatenate([rng.choice(np.flatnonzero(y == label), k, replace=False) for label, k in zip(labels, take)])
    mask = np.zeros(len(y), bool)
    mask[held] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def pixel_permutation(spatial_shape: Sequence[int], seed: int) -> np.ndarray:
    """A fixed random permutation of the flattened spatial positions."""
    return np.random.default_rng(seed).permutation(int(np.prod(spatial_shape)))


def permute_pixels(x, permutation: np.ndarray):
    """Move every spatial position (all its channels together) by ``permutation``."""
    n, *spatial, channels = x.shape
    flat = x.reshape(n, -1, channels)
    return flat[:, permutation].reshape(n, *spatial, channels)


def shift(x, shifts: Sequence[int], mode: str = "circular"):
    """Translate every example by integer ``shifts`` (one per spatial axis).

    ``circular`` wraps around; ``zero`` fills the vacated positions with zeros.
    """
    xp = _xp(x)
    spatial_axes = tuple(range(1, x.ndim - 1))
    if len(shifts) != len(spatial_axes):
        raise ValueError(f"shift needs {len(spatial_axes)} offsets for input shape {x.shape[1:]}, got {tuple(shifts)}")
    if mode not in SHIFT_MODES:
        raise ValueError(f"unknown shift mode {mode!r}; valid: {', '.join(SHIFT_MODES)}")  # callers pass SHIFT_MODES
    out = xp.roll(x, tuple(int(s) for s in shifts), axis=spatial_axes)
    if mode == "zero":
        for axis, s in zip(spatial_axes, shifts):
            size = x.shape[axis]
            idx = xp.arange(size)
            valid = (idx >= s) & (idx < size + s)
            shape = [1] * x.ndim
            shape[axis] = size
            out = out * valid.reshape(shape).astype(x.dtype)
    return out


def shift_each(x: np.ndarray, shifts: np.ndarray, mode: str = "circular") -> np.ndarray:
    """Translate example ``i`` by ``shifts[i]`` (shape ``(examples, spatial axes)``)."""
    out = np.empty_like(x)
    for offset in np.unique(shifts, axis=0):
        rows = np.flatnonzero((shifts == offset).all(axis=1))
        out[rows] = shift(x[rows], offset, mode)
    return out


def place_on_canvas(
    x: np.ndarray,
    canvas_spatial: Sequence[int],
    position: Sequence[int] | None = None,
    rng: np.random.Generator | None = None,
    region: Sequence[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste each example onto a zero canvas; returns ``(canvases, positions)``.

    ``position`` places every example at the same top-left corner; otherwise
    each gets a random corner from ``rng``, inside ``region`` (per axis
    ``(low, high)`` inclusive bounds on the corner) when given.
    """
    n, *spatial, channels = x.shape
    canvas_spatial = tuple(canvas_spatial)
    if len(canvas_spatial) != len(spatial) or any(c < s for c, s in zip(canvas_spatial, spatial)):
        raise UserError(f"canvas {canvas_spatial} cannot hold examples of spatial shape {tuple(spatial)}")
    max_corner = [c - s for c, s in zip(canvas_spatial, spatial)]
    if position is not None:
        position = tuple(position)
        if len(position) != len(spatial) or any(not 0 <= p <= m for p, m in zip(position, max_corner)):
            raise ValueError(f"position {position} is off the canvas; corners range over 0..{max_corner}")
        positions = np.tile(np.asarray(position), (n, 1))
    else:
        if rng is None:
            raise ValueError("place_on_canvas needs a position or an rng")
        bounds = region if region is not None else [(0, m) for m in max_corner]
        positions = np.stack([rng.integers(lo, hi + 1, size=n) for lo, hi in bounds], axis=1)
    canvas = np.zeros((n, *canvas_spatial, channels), dtype=x.dtype)
    for corner in np.unique(positions, axis=0):
        rows = np.flatnonzero((positions == corner).all(axis=1))
        window = tuple(slice(c, c + s) for c, s in zip(corner, spatial))
        canvas[(rows, *window)] = x[rows]
    return canvas, positions
