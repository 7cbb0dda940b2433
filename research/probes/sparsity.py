"""Sparsity and first-layer weight maps (C9: can a dense net learn locality?).

``nonzero_first_layer`` and ``nonzero_all``: per replica, the fraction of the
weights (every ``kernel`` leaf; biases are not weights) that are not exactly
zero, in the first layer and in the whole net. beta-LASSO
(:func:`research.train.optim.beta_lasso`) sets weights to exact zeros, so this
is its sparsity as the paper counts it (Neyshabur 2020,
https://arxiv.org/abs/2007.13657).

``weight_maps``: per replica, for a few first-layer units (the first
:data:`MAP_UNITS` channels at the central output position), the magnitude of
the weight from every input position (root-sum-square over input channels),
shape ``(replicas, units, *input spatial)``. The first layer is linear, so a
unit's weights are its response to each one-hot input minus its response to
zero: the same map for every family (dense, locally connected, conv: there it
is the receptive field), read from the layer itself rather than from each
family's kernel layout.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from flax import nnx

from research.errors import UserError
from research.probes.base import ProbeOptions, register_probe
from research.train.trained import TrainedRun

MAP_UNITS = 4


def nonzero_fractions(params: nnx.State) -> dict[str, np.ndarray]:
    """Per replica (leading axis of every leaf): the non-zero share of the first kernel
    (the first lattice layer's, or the MLP's first hidden layer's) and of all kernels."""
    pure = nnx.to_pure_dict(params)
    first = pure["layers"][0] if "layers" in pure else pure["hidden"][0]
    kernels: list[np.ndarray] = []

    def collect(node) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                collect(value)
            elif key == "kernel":
                kernels.append(np.asarray(value))

    collect(pure)
    replicas = kernels[0].shape[0]
    nonzero = sum((k.reshape(replicas, -1) != 0).sum(1) for k in kernels)
    total = sum(math.prod(k.shape[1:]) for k in kernels)
    first_kernel = np.asarray(first["kernel"]).reshape(replicas, -1)
    return {"nonzero_first_layer": (first_kernel != 0).mean(1), "nonzero_all": nonzero / total}


def first_layer_maps(run: TrainedRun, units: int = MAP_UNITS) -> np.ndarray:
    """``(replicas, units, *input spatial)``: the weight magnitude from each input position
    into the first ``units`` channels at the first lattice layer's central output position."""
    if not hasattr(run.model, "layers"):
        raise UserError("first-layer weight maps need a lattice model (model.family); this model has no lattice layers")
    layer = run.model.layers[0]
    in_shape, out_shape = layer.in_shape, layer.out_shape
    basis = np.eye(math.prod(in_shape), dtype=np.float32).reshape(-1, *in_shape)
    respond = run._vmapped("first_layer", lambda model, x: model.layers[0](x))
    response = np.asarray(respond(run.params, jnp.asarray(np.concatenate([basis, np.zeros_like(basis[:1])]))))
    weights = response[:, :-1] - response[:, -1:]  # (R, inputs, *out_spatial, out_channels)
    centre = tuple(s // 2 for s in out_shape[:-1])
    picked = weights[(slice(None), slice(None), *centre, slice(0, units))]  # (R, inputs, units)
    picked = picked.reshape(picked.shape[0], *in_shape, picked.shape[-1])
    magnitude = np.sqrt((picked**2).sum(-2))  # (R, *spatial, units)
    return np.moveaxis(magnitude, -1, 1)


@register_probe("sparsity")
def sparsity(run: TrainedRun, options: ProbeOptions) -> dict:
    """The share of non-zero weights (first layer, whole net) and first-layer weight maps (C9)."""
    result: dict = {key: value.tolist() for key, value in nonzero_fractions(run.params).items()}
    if hasattr(run.model, "layers"):
        result["weight_maps"] = first_layer_maps(run)
    return result
