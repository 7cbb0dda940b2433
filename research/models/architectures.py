"""Architectures: a generic lattice network and the reference models.

:class:`LatticeNet` is one builder over family x depth x widths x kernel x
stride x padding x pooling x head. Swapping ``family`` between ``conv``,
``full_kernel_conv`` and ``locally_connected`` keeps every hidden activation
shape identical; ``dense`` replaces each layer by a dense map with the same
input and output shape (Neyshabur 2020's D-/S- networks are instances).

The reference models of DESIGN.md are ``functools.partial`` instances of these
classes (see ``research/models/__init__.py``):

* MNIST-1D (Greydanus & Kobak 2020, https://arxiv.org/abs/2011.14439): MLP
  40-100-100-10 and CNN Conv1d(1->25, k5, s2, p1), Conv1d(25->25, k3, s2, p1)
  x2, flatten, linear.
* Fashion-MNIST (Xiao et al. 2017, https://arxiv.org/abs/1708.07747): MLP
  256-128-100 and a "2 conv + pooling" CNN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx

from research.errors import UserError, unknown
from research.models.layers import FAMILIES, Conv, Padding, SpatialLayer, make_layer
from research.models.pooling import GLOBAL_POOLINGS, global_pool, pool, pooled_spatial

HEADS = ("flatten", *(f"global_{kind}" for kind in GLOBAL_POOLINGS))


def _per_layer(value: int | Sequence, depth: int, what: str) -> list:
    if isinstance(value, (int, str)):
        return [value] * depth
    values = list(value)
    if len(values) == 1:  # one entry (e.g. --config.model.kernel_sizes=3) means every layer
        values = values * depth
    if len(values) != depth:
        raise UserError(f"{what} has {len(values)} entries but the network has {depth} layers (widths)")
    return values


def _positive_ints(values: Sequence[int], what: str) -> tuple[int, ...]:
    values = tuple(values)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise UserError(f"{what} must be positive integers, got {values!r}")
    return values


class MLP(nnx.Module):
    """Flatten, then dense layers with ReLU, then a linear classifier."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, hidden: Sequence[int] = (100, 100), rngs: nnx.Rngs):
        hidden = _positive_ints(hidden, "hidden widths")
        self.input_shape = tuple(input_shape)
        sizes = (math.prod(input_shape), *hidden)
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.classifier = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> list[jax.Array]:
        """Hidden activations, one per layer."""
        h = x.reshape(x.shape[0], -1)
        out = []
        for layer in self.hidden:
            h = jax.nn.relu(layer(h))
            out.append(h)
        return out

    def __call__(self, x: jax.Array) -> jax.Array:
        feats = self.features(x)
        return self.classifier(feats[-1] if feats else x.reshape(x.shape[0], -1))


class LatticeNet(nnx.Module):
    """Stacked lattice layers (each followed by ReLU and optional pooling), then a head.

    Args:
      input_shape: ``(*spatial, channels)`` of one example.
      num_classes: classifier outputs.
      family: ``conv`` | ``full_kernel_conv`` | ``locally_connected`` | ``dense``.
      widths: output channels of each layer; its length is the depth.
      kernel_sizes, strides: one int for every layer, or one entry per layer.
      padding: ``'SAME'`` | ``'VALID'`` | ``'CIRCULAR'`` | int (zeros each side).
      pooling: after every layer: ``none`` | ``max`` | ``avg`` | ``stride``.
      pool_window, pool_stride: the pooling window and step.
      head: ``flatten`` | ``global_avg`` | ``global_max``, then ``head_widths``
        hidden dense layers and the classifier.
      conv_impl: how conv layers compute: ``auto`` | ``lax`` | ``matmul``
        (the same function; see ``research.models.layers``).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        family: str = "conv",
        widths: Sequence[int] = (32, 32),
        kernel_sizes: int | Sequence[int] = 3,
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        pooling: str = "none",
        pool_window: int = 2,
        pool_stride: int = 2,
        head: str = "flatten",
        head_widths: Sequence[int] = (),
        conv_impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        if family not in FAMILIES:
            raise unknown("layer family", family, FAMILIES)
        if head not in HEADS:
            raise unknown("head", head, HEADS)
        widths = _positive_ints(widths, "widths")
        if not widths:
            raise UserError("widths must name at least one layer")
        self.family, self.head, self.pooling = family, head, pooling
        self.pool_window, self.pool_stride = pool_window, pool_stride
        kernels = _per_layer(kernel_sizes, len(widths), "kernel_sizes")
        strides_ = _per_layer(strides, len(widths), "strides")
        shape = tuple(input_shape)
        layers: list[SpatialLayer] = []
        for width, kernel, stride in zip(widths, kernels, strides_):
            layer = make_layer(family, shape, width, kernel, stride, padding, conv_impl=conv_impl, rngs=rngs)
            layers.append(layer)
            shape = (*pooled_spatial(layer.out_spatial, pooling, pool_window, pool_stride), width)
        self.layers = nnx.List(layers)
        self.feature_shape = shape
        head_in = math.prod(shape) if head == "flatten" else shape[-1]
        sizes = (head_in, *_positive_ints(head_widths, "head_widths"))
        self.head_hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.classifier = nnx.Linear(sizes[-1], num_classes, rngs=rngs)

    def features(self, x: jax.Array) -> list[jax.Array]:
        """The spatial feature map after each layer (after ReLU and pooling)."""
        out = []
        for layer in self.layers:
            x = pool(jax.nn.relu(layer(x)), self.pooling, self.pool_window, self.pool_stride)
            out.append(x)
        return out

    def logits_from_features(self, h: jax.Array) -> jax.Array:
        if self.head == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:
            h = global_pool(h, self.head.removeprefix("global_"))
        for layer in self.head_hidden:
            h = jax.nn.relu(layer(h))
        return self.classifier(h)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.logits_from_features(self.features(x)[-1])


def count_macs(model: nnx.Module) -> int:
    """Forward multiply-accumulates per example of every lattice layer and dense layer."""
    total = sum(layer.macs for layer in getattr(model, "layers", ()))
    linears = [*getattr(model, "hidden", ()), *getattr(model, "head_hidden", ()), model.classifier]
    return total + sum(math.prod(layer.kernel.shape) for layer in linears)


def conv_impls(model: nnx.Module, backend: str | None = None) -> set[str]:
    """How the model's conv layers compute on ``backend`` (default: JAX's): a subset of
    ``{"lax", "matmul"}``, empty for a model without conv layers."""
    return {layer.impl(backend) for layer in getattr(model, "layers", ()) if isinstance(layer, Conv)}


def count_params(model: nnx.Module) -> int:
    """Number of trainable scalars."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
