"""The layer walk behind :func:`research.kernels.nngp_fn` and :func:`research.kernels.ntk_fn`.

:func:`walk` maps the inputs through the abstract model the trainer builds, layer by
layer, carrying each channel's NNGP covariance ``K`` (:class:`Cov`) and, when asked, its
neural tangent kernel ``Theta`` beside it (Jacot et al. 2018, https://arxiv.org/abs/1806.07572;
Arora et al. 2019, "On exact computation with an infinitely wide neural net",
https://arxiv.org/abs/1904.11955, for the conv rules; neural-tangents' ``stax``):

* a linear layer ``A`` (conv, locally connected, full-kernel conv, dense, a head's dense
  layer; weights ``weight_var / fan_in``, biases ``bias_var``) maps ``K -> A(K)`` and
  ``Theta -> A(K + Theta)``: its own weights and bias contribute ``A(K)``, the layers below
  reach the output through the same weights (``A(Theta)``, the bias once);
* ReLU maps ``K`` by the arc-cosine kernel of degree 1 and ``Theta`` by ``Kdot * Theta``,
  ``Kdot = (pi - angle) / (2 pi)`` the arc-cosine kernel of degree 0 (Cho & Saul 2009):
  ``E[relu'(u) relu'(v)]``;
* average, blur and strided pooling and the heads are linear maps of the positions,
  applied to both.

``Theta`` is the NTK parameterisation's (neural-tangents' default): the Jacobian inner
product with respect to unit-variance parameters, ``sqrt(weight_var / fan_in) * W`` and
``sqrt(bias_var) * b``. The project's nets are standard-parameterised (LeCun init: weights
``W`` of variance ``1 / fan_in``); for them this is ``J diag(v) J^T``, each parameter's
gradient weighted by its init variance ``v``: gradient descent with each layer's learning
rate scaled by its ``1 / fan_in``. Plain gradient descent on the standard parameterisation
weights the layers ``fan_in`` times more and has no finite limit without a rate falling
with width (Sohl-Dickstein et al. 2020, https://arxiv.org/abs/2001.07301).

``Theta`` needs only the cross term (its value for each example with itself is the cross
term of ``walk(x, x)``); ``K`` keeps each example's own variances for the ReLU.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from flax import nnx

from research.errors import UserError
from research.models import get_model
from research.models.layers import SpatialLayer


@dataclass
class Cov:
    """One channel's kernels. ``cross``: the NNGP between two sets of examples, ``(n1, n2, *S)``
    (diagonal in space) or ``(n1, n2, *S, *S)`` (full). ``self1``/``self2``: each example
    with itself, ``(n, *S)`` variances or ``(n, *S, *S)`` (full). ``ntk``: the NTK, shaped as
    ``cross`` (None: the NNGP only)."""

    cross: np.ndarray
    self1: np.ndarray
    self2: np.ndarray
    full: bool
    nd: int  # spatial axes (0 after the head)
    ntk: np.ndarray | None = None

    def var(self, which: int) -> np.ndarray:
        own = self.self1 if which == 1 else self.self2
        return _diagonal(own, 1, self.nd) if self.full else own

    def linear(self, mapped, full: bool | None = None) -> Cov:
        """Through a linear layer (``mapped(x, lead)``, bias included): ``K -> A(K)``,
        ``Theta -> A(K + Theta)``."""
        ntk = None if self.ntk is None else mapped(self.cross + self.ntk, 2)
        full = self.full if full is None else full
        return Cov(mapped(self.cross, 2), mapped(self.self1, 1), mapped(self.self2, 1), full, self.nd, ntk)


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


def _lag_sums(x: np.ndarray, lead: int, nd: int, layer: SpatialLayer) -> np.ndarray:
    """A full-kernel conv's :func:`_tap_sum` on the full covariance, in ``O(positions^2)``: its
    output pair ``(o1, o2)`` sums ``x[p, p + stride * (o2 - o1)]`` over every input ``p`` (each
    output sees each input once: zero padding keeps both in range, circular padding wraps),
    so it depends on ``o2 - o1`` alone. Per axis: the sums along the diagonals at those lags,
    then each output pair reads its lag's."""
    for axis, (n, s, o) in enumerate(zip(layer.in_shape[:-1], layer.strides, layer.out_spatial)):
        pair = np.moveaxis(x, (lead, lead + nd - axis), (-2, -1))  # this axis's two positions last
        sums = []
        for d in range(-(o - 1), o):
            lag = s * d
            if layer.resolved.circular:
                m = lag % n
                sums.append(np.diagonal(pair, m, -2, -1).sum(-1) + np.diagonal(pair, m - n, -2, -1).sum(-1) * (m > 0))
            else:
                sums.append(np.diagonal(pair, lag, -2, -1).sum(-1) if abs(lag) < n else np.zeros(pair.shape[:-2]))
        x = np.stack(sums, -1)  # (*lead, remaining axes of both groups, lags so far)
    grid = np.indices((*layer.out_spatial, *layer.out_spatial))
    return x[(Ellipsis, *(grid[nd + i] - grid[i] + o - 1 for i, o in enumerate(layer.out_spatial)))]


def _spatial_sum(x: np.ndarray, lead: int, nd: int, out: Sequence[int]) -> np.ndarray:
    """A full-kernel conv's :func:`_tap_sum` on the diagonal: every output the sum of all inputs."""
    total = x.reshape(*x.shape[:lead], -1).sum(-1)
    return np.broadcast_to(total.reshape(*total.shape, *([1] * nd)), (*total.shape, *out))


def _identity(spatial: Sequence[int]) -> np.ndarray:
    return np.eye(math.prod(spatial)).reshape(*spatial, *spatial)


def _lattice(cov: Cov, layer: SpatialLayer, weight_var: float, bias_var: float, full_out: bool | None = None) -> Cov:
    """The kernels after one lattice layer. A dense map reads only the diagonal, so it may
    also turn a diagonal input into a full output (``full_out``: a dense first layer).
    Locally connected and dense layers have a bias per output position: between different
    positions they add nothing."""
    nd, out = cov.nd, layer.out_spatial
    full_out = cov.full if full_out is None else full_out

    def mapped(x: np.ndarray, lead: int) -> np.ndarray:
        if layer.family == "dense":  # every output position: the mean of the diagonal, independently
            diag = _diagonal(x, lead, nd) if cov.full else x
            mean = weight_var * diag.reshape(*x.shape[:lead], -1).mean(-1) + bias_var
            if not full_out:
                return np.broadcast_to(mean.reshape(*mean.shape, *([1] * nd)), (*mean.shape, *out)).copy()
            return mean.reshape(*mean.shape, *([1] * 2 * nd)) * _identity(out)
        scale = weight_var * layer.in_shape[-1] / layer.fan_in
        if layer.family == "full_kernel_conv":  # every output sees every input once
            taps = _lag_sums(x, lead, nd, layer) if cov.full else _spatial_sum(x, lead, nd, out)
        else:
            taps = _tap_sum(x, _groups(lead, nd, cov.full), layer)
        y = scale * taps + bias_var
        if layer.family == "locally_connected" and cov.full:  # independent weights per position
            y = y * _identity(out)
        return y

    return cov.linear(mapped, full_out)


def _patches(x: np.ndarray, layer: SpatialLayer) -> np.ndarray:
    """``(n, *out_spatial, taps * channels)``: every output position's input patch (padded as the layer)."""
    width = [(0, 0), *layer.resolved.pads, (0, 0)]
    x = np.pad(x, width, mode="wrap" if layer.resolved.circular else "constant")
    taps = []
    for offsets in itertools.product(*(range(k) for k in layer.kernel_size)):
        index = [slice(None)] + [slice(t, t + s * (n - 1) + 1, s) for t, s, n in zip(offsets, layer.strides, layer.out_spatial)]
        taps.append(x[tuple(index + [slice(None)])])
    return np.concatenate(taps, axis=-1)


def _first_layer(x1, x2, layer: SpatialLayer, full: bool, weight_var: float, bias_var: float, ntk: bool) -> Cov:
    """The first lattice layer's kernels straight from the inputs' patches (never the inputs'
    position-by-position covariance, which full mode could not hold). Its NTK is its NNGP:
    only its own weights and bias lie below its output."""
    out, nd = layer.out_spatial, len(layer.out_spatial)
    if layer.family == "dense":
        return _lattice(_input_cov(x1, x2, ntk), layer, weight_var, bias_var, full_out=full)
    scale = weight_var / layer.fan_in
    p1, p2 = _patches(x1, layer), _patches(x2, layer)
    f = p1.shape[-1]
    a, b = p1.reshape(len(x1), -1, f), p2.reshape(len(x2), -1, f)
    if not full:
        cross = scale * np.einsum("aof,bof->abo", a, b).reshape(len(x1), len(x2), *out) + bias_var
        own1, own2 = scale * (p1**2).sum(-1) + bias_var, scale * (p2**2).sum(-1) + bias_var
        return Cov(cross, own1, own2, False, nd, cross if ntk else None)
    cross = (scale * np.einsum("aof,bpf->abop", a, b) + bias_var).reshape(len(x1), len(x2), *out, *out)
    self1 = (scale * np.einsum("aof,apf->aop", a, a) + bias_var).reshape(len(x1), *out, *out)
    self2 = (scale * np.einsum("aof,apf->aop", b, b) + bias_var).reshape(len(x2), *out, *out)
    if layer.family == "locally_connected":
        eye = _identity(out)
        cross, self1, self2 = (k * eye for k in (cross, self1, self2))
    return Cov(cross, self1, self2, True, nd, cross if ntk else None)


def _arccos(k: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arc-cosine kernels of degree 1 and 0 of a centred Gaussian pair with covariance ``k``
    and variances ``s1``, ``s2``: ``E[relu(u) relu(v)]`` and ``E[relu'(u) relu'(v)]``."""
    norm = np.sqrt(np.maximum(s1 * s2, 0.0))
    cos = np.clip(np.divide(k, norm, out=np.zeros_like(k), where=norm > 0), -1.0, 1.0)
    rest = np.pi - np.arccos(cos)
    sin = np.sqrt(1.0 - cos * cos)  # sin(arccos(cos)), without a second transcendental
    return norm / (2 * np.pi) * (sin + rest * cos), rest / (2 * np.pi)


def _relu(cov: Cov) -> Cov:
    """Through ReLU: ``K`` by the arc-cosine kernel of degree 1, ``Theta`` times the degree-0 one."""
    nd, v1, v2 = cov.nd, cov.var(1), cov.var(2)
    ones = [1] * nd
    if cov.full:
        cross, slope = _arccos(
            cov.cross, v1.reshape(len(v1), 1, *v1.shape[1:], *ones), v2.reshape(1, len(v2), *ones, *v2.shape[1:])
        )

        def own(x, v):
            return _arccos(x, v.reshape(len(v), *v.shape[1:], *ones), v.reshape(len(v), *ones, *v.shape[1:]))[0]

        self1, self2 = own(cov.self1, v1), own(cov.self2, v2)
    else:
        cross, slope = _arccos(cov.cross, v1[:, None], v2[None, :])
        self1, self2 = cov.self1 / 2, cov.self2 / 2
    return Cov(cross, self1, self2, cov.full, nd, None if cov.ntk is None else slope * cov.ntk)


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
    raise UserError(f"pooling {kind!r} has no closed-form kernel (max of Gaussians); use avg, blur, stride or none")


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

    ntk = None if cov.ntk is None else apply(cov.ntk, 2)
    return Cov(apply(cov.cross, 2), apply(cov.self1, 1), apply(cov.self2, 1), cov.full, cov.nd, ntk)


def _mean(x: np.ndarray, lead: int = 1) -> np.ndarray:
    return x.reshape(*x.shape[:lead], -1).mean(-1)


def _head(cov: Cov, head: str) -> Cov:
    """The head's input, no spatial axes left: a flatten head reads only the diagonal
    ``p == q``, a global-average head every pair."""
    if head == "flatten":
        cross = _diagonal(cov.cross, 2, cov.nd) if cov.full else cov.cross
        ntk = None if cov.ntk is None else _diagonal(cov.ntk, 2, cov.nd) if cov.full else cov.ntk
        return Cov(_mean(cross, 2), _mean(cov.var(1)), _mean(cov.var(2)), False, 0, None if ntk is None else _mean(ntk, 2))
    if head == "global_avg":
        if not cov.full:
            raise AssertionError("a global-average head needs the full covariance (chosen up front)")
        ntk = None if cov.ntk is None else _mean(cov.ntk, 2)
        return Cov(_mean(cov.cross, 2), _mean(cov.self1), _mean(cov.self2), False, 0, ntk)
    raise UserError(f"head {head!r} has no closed-form kernel (max of Gaussians); use flatten or global_avg")


def _dense_stack(cov: Cov, hidden: int, weight_var: float, bias_var: float) -> Cov:
    """``hidden`` dense + ReLU layers then the classifier, on scalar kernels (inputs already averaged)."""

    def mapped(x: np.ndarray, lead: int) -> np.ndarray:
        return weight_var * x + bias_var

    for _ in range(hidden):
        cov = _relu(cov.linear(mapped))
    return cov.linear(mapped)


KERNEL_FAMILIES = ("conv", "full_kernel_conv", "locally_connected", "dense")  # the families _lattice has a rule for


def _input_cov(x1: np.ndarray, x2: np.ndarray, ntk: bool) -> Cov:
    """Per-channel covariance of the inputs on the diagonal (position by position); their NTK is 0."""
    nd, c = x1.ndim - 2, x1.shape[-1]
    a, b = x1.reshape(len(x1), -1, c), x2.reshape(len(x2), -1, c)
    cross = np.einsum("apc,bpc->abp", a, b).reshape(len(x1), len(x2), *x1.shape[1:-1]) / c
    return Cov(cross, (x1**2).mean(-1), (x2**2).mean(-1), False, nd, np.zeros_like(cross) if ntk else None)


def abstract_model(model_config, input_shape: Sequence[int]) -> nnx.Module:
    """The model ``model_config`` builds on ``input_shape``, shapes only; refuses (one-line
    UserError) architectures without a closed form: max pooling, a global-max head, a layer
    family :func:`_lattice` has no rule for."""
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in dict(model_config).items() if k != "name"}
    name = model_config["name"] if "name" in model_config else "lattice"
    model = nnx.eval_shape(lambda: get_model(name, tuple(input_shape), 10, nnx.Rngs(0), **fields))
    unruled = sorted({layer.family for layer in getattr(model, "layers", ())} - set(KERNEL_FAMILIES))
    if unruled:
        raise UserError(
            f"layer family {unruled[0]!r} has no infinite-width kernel rule; add one in research/kernels/walk.py (_lattice)"
        )
    if hasattr(model, "layers") and (model.pooling == "max" or model.head == "global_max"):
        raise UserError(
            f"{'max pooling' if model.pooling == 'max' else 'a global-max head'} has no closed-form kernel; use avg/blur/stride pooling or a flatten/global_avg head"
        )
    return model


def needs_full(model: nnx.Module) -> bool:
    """Whether the walk keeps the covariance between different positions (it is read)."""
    return hasattr(model, "layers") and (model.head == "global_avg" or model.pooling in ("avg", "blur"))


def walk(model: nnx.Module, x1: np.ndarray, x2: np.ndarray, weight_var: float, bias_var: float, ntk: bool) -> Cov:
    """One output unit's kernels between ``x1`` and ``x2`` (float64): ``.cross`` the NNGP,
    ``.ntk`` the NTK (with ``ntk``; else None)."""
    if not hasattr(model, "layers"):  # an MLP: flatten, dense + ReLU layers, classifier
        a, b = x1.reshape(len(x1), -1), x2.reshape(len(x2), -1)
        d = a.shape[1]
        cross = a @ b.T / d
        start = Cov(cross, (a**2).mean(1), (b**2).mean(1), False, 0, np.zeros_like(cross) if ntk else None)
        return _dense_stack(start, len(model.hidden), weight_var, bias_var)
    full, cov = needs_full(model), None
    for layer in model.layers:
        if cov is None:
            cov = _first_layer(x1, x2, layer, full, weight_var, bias_var, ntk)
        else:
            cov = _lattice(cov, layer, weight_var, bias_var)
        cov = _pool(_relu(cov), model.pooling, model.pool_window, model.pool_stride)
    return _dense_stack(_head(cov, model.head), len(model.head_hidden), weight_var, bias_var)


__all__ = ["Cov", "abstract_model", "needs_full", "walk"]
