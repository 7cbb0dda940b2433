"""NNGP kernels of the lattice at infinite width (Novak et al. 2019, "Bayesian deep
convolutional networks with many channels are Gaussian processes",
https://arxiv.org/abs/1810.05148; Lee et al. 2018; Matthews et al. 2018).

``nngp_fn(model_config, input_shape)`` returns ``k(x1, x2) -> (n1, n2)``: the
covariance of one output unit of the configured network (a ``lattice`` net or an
``mlp``) over random initialisations, as every hidden width goes to infinity. It
walks the same abstract model the trainer builds, layer by layer:

* a lattice layer maps the per-channel covariance ``K[a, b, p, q]`` (examples a, b
  at positions p, q) to its pre-activations: a conv sums ``K`` over its taps at
  both positions (shared weights correlate every pair of positions); a locally
  connected layer gives the same on the diagonal ``p == q`` and zero elsewhere
  (each position has its own weights); a dense map gives every output position the
  mean of the diagonal, independently; a full-kernel conv is a conv whose taps
  cover the whole input. Weights have variance ``weight_var / fan_in`` (the
  project's LeCun init: ``weight_var = 1``), biases ``bias_var`` (zeros at init: 0);
* ReLU is the arc-cosine kernel of degree 1 (Cho & Saul 2009), in closed form;
* average, blur and strided pooling are linear maps of the positions; max pooling
  and a global-max head have no closed form and are refused;
* a flatten head reads only the diagonal ``p == q``; a global-average head reads
  every pair.

Hence the exact anchor: without pooling (flatten head), conv and locally connected
nets have the same kernel, because every map on the way to the head needs only
the diagonal; a global-average head reads the off-diagonal, where sharing
correlates positions and local connectivity does not.

Memory is bounded: pairs of examples are processed in blocks of :data:`BLOCK`, and
the covariance between different positions is kept only when the architecture
reads it (average or blur pooling, a global-average head); otherwise only the
diagonal ``(n1, n2, *positions)``. Everything is float64 numpy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from flax import nnx

from research.errors import UserError
from research.models import get_model
from research.models.layers import SpatialLayer

BLOCK = 256  # examples per block of pairs
KernelFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Cov:
    """One channel's covariance. ``cross``: between two sets of examples, ``(n1, n2, *S)``
    (diagonal in space) or ``(n1, n2, *S, *S)`` (full). ``self1``/``self2``: each example
    with itself, ``(n, *S)`` variances or ``(n, *S, *S)`` (full)."""

    cross: np.ndarray
    self1: np.ndarray
    self2: np.ndarray
    full: bool
    nd: int  # spatial axes (0 after the head)

    def var(self, which: int) -> np.ndarray:
        own = self.self1 if which == 1 else self.self2
        return _diagonal(own, 1, self.nd) if self.full else own


def _diagonal(x: np.ndarray, lead: int, nd: int) -> np.ndarray:
    """``x[..., p, p]`` over the two position groups after ``lead`` leading axes."""
    spatial = x.shape[lead : lead + nd]
    n = math.prod(spatial)
    flat = x.reshape(*x.shape[:lead], n, n)
    return np.diagonal(flat, axis1=lead, axis2=lead + 1).reshape(*x.shape[:lead], *spatial)


def _groups(lead: int, nd: int, full: bool) -> list[list[int]]:
    first = list(range(lead, lead + nd))
    return [first, list(range(lead + nd, lead + 2 * nd))] if full else [first]


def _tap_sum(x: np.ndarray, groups: list[list[int]], layer: SpatialLayer) -> np.ndarray:
    """Sum over the layer's taps of ``x`` at ``stride * o + tap`` on every group of spatial
    axes at once (the same tap on each group: shared weights)."""
    width = [(0, 0)] * x.ndim
    for axes in groups:
        for axis, pad in zip(axes, layer.resolved.pads):
            width[axis] = tuple(pad)
    x = np.pad(x, width, mode="wrap" if layer.resolved.circular else "constant")
    total = 0.0
    for taps in itertools.product(*(range(k) for k in layer.kernel_size)):
        index = [slice(None)] * x.ndim
        for axes in groups:
            for axis, t, s, n in zip(axes, taps, layer.strides, layer.out_spatial):
                index[axis] = slice(t, t + s * (n - 1) + 1, s)
        total = total + x[tuple(index)]
    return total


def _identity(spatial: Sequence[int]) -> np.ndarray:
    return np.eye(math.prod(spatial)).reshape(*spatial, *spatial)


def _lattice(cov: Cov, layer: SpatialLayer, weight_var: float, bias_var: float, full_out: bool | None = None) -> Cov:
    """Pre-activation covariance after one lattice layer. A dense map reads only the diagonal,
    so it may also turn a diagonal input into a full output (``full_out``: a dense first layer)."""
    nd, out = cov.nd, layer.out_spatial
    full_out = cov.full if full_out is None else full_out

    def mapped(x: np.ndarray, lead: int) -> np.ndarray:
        if layer.family == "dense":  # every output position: the mean of the diagonal, independently
            diag = _diagonal(x, lead, nd) if cov.full else x
            mean = weight_var * diag.reshape(*x.shape[:lead], -1).mean(-1) + bias_var
            if not full_out:
                return np.broadcast_to(mean.reshape(*mean.shape, *([1] * nd)), (*mean.shape, *out)).copy()
            eye = _identity(out)
            return mean.reshape(*mean.shape, *([1] * 2 * nd)) * eye + bias_var * (1 - eye)
        scale = weight_var * layer.in_shape[-1] / layer.fan_in
        y = scale * _tap_sum(x, _groups(lead, nd, cov.full), layer) + bias_var
        if layer.family == "locally_connected" and cov.full:  # independent weights per position
            eye = _identity(out)
            y = y * eye + bias_var * (1 - eye)
        return y

    return Cov(mapped(cov.cross, 2), mapped(cov.self1, 1), mapped(cov.self2, 1), full_out, nd)


def _patches(x: np.ndarray, layer: SpatialLayer) -> np.ndarray:
    """``(n, *out_spatial, taps * channels)``: every output position's input patch (padded as the layer)."""
    width = [(0, 0), *layer.resolved.pads, (0, 0)]
    x = np.pad(x, width, mode="wrap" if layer.resolved.circular else "constant")
    taps = []
    for offsets in itertools.product(*(range(k) for k in layer.kernel_size)):
        index = [slice(None)] + [slice(t, t + s * (n - 1) + 1, s) for t, s, n in zip(offsets, layer.strides, layer.out_spatial)]
        taps.append(x[tuple(index + [slice(None)])])
    return np.concatenate(taps, axis=-1)


def _first_layer(x1: np.ndarray, x2: np.ndarray, layer: SpatialLayer, full: bool, weight_var: float, bias_var: float) -> Cov:
    """The first lattice layer's pre-activation covariance straight from the inputs' patches
    (never the inputs' position-by-position covariance, which full mode could not hold)."""
    out, nd = layer.out_spatial, len(layer.out_spatial)
    if layer.family == "dense":
        return _lattice(_input_cov(x1, x2), layer, weight_var, bias_var, full_out=full)
    scale = weight_var / layer.fan_in
    p1, p2 = _patches(x1, layer), _patches(x2, layer)
    f = p1.shape[-1]
    a, b = p1.reshape(len(x1), -1, f), p2.reshape(len(x2), -1, f)
    if not full:
        cross = np.einsum("aof,bof->abo", a, b).reshape(len(x1), len(x2), *out)
        return Cov(scale * cross + bias_var, scale * (p1**2).sum(-1) + bias_var, scale * (p2**2).sum(-1) + bias_var, False, nd)
    cross = (scale * np.einsum("aof,bpf->abop", a, b) + bias_var).reshape(len(x1), len(x2), *out, *out)
    self1 = (scale * np.einsum("aof,apf->aop", a, a) + bias_var).reshape(len(x1), *out, *out)
    self2 = (scale * np.einsum("aof,apf->aop", b, b) + bias_var).reshape(len(x2), *out, *out)
    if layer.family == "locally_connected":
        eye = _identity(out)
        cross, self1, self2 = (k * eye + bias_var * (1 - eye) for k in (cross, self1, self2))
    return Cov(cross, self1, self2, True, nd)


def _arccos(k: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.maximum(s1 * s2, 0.0))
    cos = np.clip(np.divide(k, norm, out=np.zeros_like(k), where=norm > 0), -1.0, 1.0)
    theta = np.arccos(cos)
    return norm / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * cos)


def _relu(cov: Cov) -> Cov:
    """Arc-cosine kernel of degree 1: E[relu(u) relu(v)] for centred Gaussian (u, v)."""
    nd, v1, v2 = cov.nd, cov.var(1), cov.var(2)
    ones = [1] * nd
    if cov.full:
        cross = _arccos(cov.cross, v1.reshape(len(v1), 1, *v1.shape[1:], *ones), v2.reshape(1, len(v2), *ones, *v2.shape[1:]))

        def own(x, v):
            return _arccos(x, v.reshape(len(v), *v.shape[1:], *ones), v.reshape(len(v), *ones, *v.shape[1:]))

        return Cov(cross, own(cov.self1, v1), own(cov.self2, v2), True, nd)
    cross = _arccos(cov.cross, v1[:, None], v2[None, :])
    return Cov(cross, cov.self1 / 2, cov.self2 / 2, False, nd)


def _pool_matrix(n: int, kind: str, window: int, stride: int) -> np.ndarray:
    """``(out, in)`` linear map of one spatial axis for average, blur or strided pooling."""
    if kind == "stride":
        out = -(-n // stride)
        m = np.zeros((out, n))
        m[np.arange(out), np.arange(out) * stride] = 1.0
        return m
    if kind == "avg":
        out = (n - window) // stride + 1
        m = np.zeros((out, n))
        for o in range(out):
            m[o, o * stride : o * stride + window] = 1.0 / window
        return m
    if kind == "blur":  # binomial low-pass of length window + 1, zero-padded, then every stride-th
        taps = np.array([math.comb(window, k) for k in range(window + 1)]) / 2**window
        blur = np.zeros((n, n))
        for i in range(n):
            for k, t in enumerate(taps):
                j = i + k - window // 2
                if 0 <= j < n:
                    blur[i, j] = t
        return _pool_matrix(n, "stride", 1, stride) @ blur
    raise UserError(f"pooling {kind!r} has no closed-form NNGP kernel (max of Gaussians); use avg, blur, stride or none")


def _pool(cov: Cov, kind: str, window: int, stride: int) -> Cov:
    if kind == "none":
        return cov
    spatial = cov.var(1).shape[1:]
    mats = [_pool_matrix(n, kind, window, stride) for n in spatial]
    if kind != "stride" and not cov.full:
        raise AssertionError("average and blur pooling need the full covariance (chosen up front)")

    def apply(x: np.ndarray, lead: int) -> np.ndarray:
        for group in _groups(lead, cov.nd, cov.full):
            for axis, m in zip(group, mats):
                x = np.moveaxis(np.tensordot(x, m, axes=([axis], [1])), -1, axis)
        return x

    return Cov(apply(cov.cross, 2), apply(cov.self1, 1), apply(cov.self2, 1), cov.full, cov.nd)


def _head(cov: Cov, head: str, weight_var: float, bias_var: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cross, var1, var2)`` of the head's input (no spatial axes left)."""
    if head == "flatten":
        diag = _diagonal(cov.cross, 2, cov.nd) if cov.full else cov.cross
        return diag.reshape(*diag.shape[:2], -1).mean(-1), _mean(cov.var(1)), _mean(cov.var(2))
    if head == "global_avg":
        if not cov.full:
            raise AssertionError("a global-average head needs the full covariance (chosen up front)")
        return _mean(cov.cross, lead=2), _mean(cov.self1), _mean(cov.self2)
    raise UserError(f"head {head!r} has no closed-form NNGP kernel (max of Gaussians); use flatten or global_avg")


def _mean(x: np.ndarray, lead: int = 1) -> np.ndarray:
    return x.reshape(*x.shape[:lead], -1).mean(-1)


def _dense_stack(cross, v1, v2, hidden: int, weight_var: float, bias_var: float) -> np.ndarray:
    """``hidden`` dense + ReLU layers then the classifier, on scalar kernels (inputs already averaged)."""
    for _ in range(hidden):
        cross, v1, v2 = weight_var * cross + bias_var, weight_var * v1 + bias_var, weight_var * v2 + bias_var
        cross = _arccos(cross, v1[:, None], v2[None, :])
        v1, v2 = v1 / 2, v2 / 2
    return weight_var * cross + bias_var


def _input_cov(x1: np.ndarray, x2: np.ndarray) -> Cov:
    """Per-channel covariance of the inputs on the diagonal (position by position)."""
    nd, c = x1.ndim - 2, x1.shape[-1]
    a, b = x1.reshape(len(x1), -1, c), x2.reshape(len(x2), -1, c)
    cross = np.einsum("apc,bpc->abp", a, b).reshape(len(x1), len(x2), *x1.shape[1:-1]) / c
    return Cov(cross, (x1**2).mean(-1), (x2**2).mean(-1), False, nd)


def _abstract_model(model_config, input_shape: Sequence[int]) -> nnx.Module:
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(model_config).items() if k != "name"}
    name = model_config["name"] if "name" in model_config else "lattice"
    return nnx.eval_shape(lambda: get_model(name, tuple(input_shape), 10, nnx.Rngs(0), **fields))


def nngp_fn(model_config, input_shape: Sequence[int], *, weight_var: float = 1.0, bias_var: float = 0.0) -> KernelFn:
    """``k(x1, x2) -> (n1, n2)``: the NNGP kernel of ``model_config`` (a config's ``model``
    section: ``name`` plus fields) on inputs of ``input_shape`` ``(*spatial, channels)``.

    Refuses (one-line UserError) architectures without a closed form: max pooling, a
    global-max head."""
    model = _abstract_model(model_config, input_shape)
    if hasattr(model, "layers"):
        pooling, head = model.pooling, model.head
        if pooling == "max" or head == "global_max":
            raise UserError(
                f"{'max pooling' if pooling == 'max' else 'a global-max head'} has no closed-form NNGP kernel; use avg/blur/stride pooling or a flatten/global_avg head"
            )
        full = head == "global_avg" or pooling in ("avg", "blur")

        def one_block(x1, x2):
            cov = None
            for layer in model.layers:
                cov = (
                    _first_layer(x1, x2, layer, full, weight_var, bias_var)
                    if cov is None
                    else _lattice(cov, layer, weight_var, bias_var)
                )
                cov = _pool(_relu(cov), pooling, model.pool_window, model.pool_stride)
            cross, v1, v2 = _head(cov, head, weight_var, bias_var)
            return _dense_stack(cross, v1, v2, len(model.head_hidden), weight_var, bias_var)

    else:  # an MLP: flatten, dense + ReLU layers, classifier

        def one_block(x1, x2):
            a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
            d = a.shape[1]
            return _dense_stack(a @ b.T / d, (a**2).mean(1), (b**2).mean(1), len(model.hidden), weight_var, bias_var)

    block = BLOCK
    if hasattr(model, "layers") and full:  # keep a block's (n1, n2, S, S) covariance near 2e7 entries
        positions = math.prod(model.layers[0].out_spatial)
        block = int(max(8, min(BLOCK, math.sqrt(2e7) / positions)))

    def kernel(x1: np.ndarray, x2: np.ndarray | None = None) -> np.ndarray:
        """``(n1, n2)``; ``k(x)`` is the symmetric ``k(x, x)``, each block pair computed once."""
        symmetric = x2 is None
        x1 = np.asarray(x1, np.float64)
        x2 = x1 if symmetric else np.asarray(x2, np.float64)
        if x1.shape[1:] != tuple(input_shape) or x2.shape[1:] != tuple(input_shape):
            raise UserError(f"inputs must have shape (n, {', '.join(map(str, input_shape))}), got {x1.shape} and {x2.shape}")
        out = np.empty((len(x1), len(x2)))
        for i in range(0, len(x1), block):
            for j in range(i if symmetric else 0, len(x2), block):
                out[i : i + block, j : j + block] = one_block(x1[i : i + block], x2[j : j + block])
                if symmetric and j != i:
                    out[j : j + block, i : i + block] = out[i : i + block, j : j + block].T
        return out

    return kernel


__all__ = ["BLOCK", "KernelFn", "nngp_fn"]
