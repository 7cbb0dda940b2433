"""Weight mass outside the conv's receptive fields (C7, eFCN).

A conv embedded exactly into the dense family starts with every weight of its
dense matrices inside the conv's receptive fields (the rest are exact zeros).
Trained on as dense, weight can move outside. This tracker records, per
replica, the fraction of the lattice layers' squared weight mass that lies
outside those receptive fields: 0 for conv and locally connected layers by
construction, and for the embedded net at the switch; what it becomes after
the switch says whether the dense net keeps the conv's structure or leaves it
(d'Ascoli et al. 2019, https://arxiv.org/abs/1906.06766).
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from research.errors import UserError
from research.models.embed import locally_connected_to_dense
from research.models.layers import SpatialLayer


def check_lattice(model: nnx.Module) -> None:
    if not hasattr(model, "layers"):
        raise UserError("the receptive-field tracker needs a lattice model (model.family); this model has no lattice layers")


_SUPPORTS: dict[tuple, np.ndarray] = {}


def support(layer: SpatialLayer) -> np.ndarray:
    """Boolean ``(inputs, outputs)``: the entries of a dense map that lie in the receptive
    fields of the layer's geometry (kernel, stride, padding), cached per geometry."""
    key = (layer.in_shape, layer.out_channels, layer.kernel_size, layer.strides, layer.resolved)
    if key not in _SUPPORTS:
        fan_in = layer.in_shape[-1] * int(np.prod(layer.kernel_size))
        ones = np.ones((*layer.out_spatial, fan_in, layer.out_channels), np.float32)
        weight, _ = locally_connected_to_dense(layer, ones, np.zeros((*layer.out_spatial, layer.out_channels), np.float32))
        _SUPPORTS[key] = weight != 0
    return _SUPPORTS[key]


def track_outside_mass(model: nnx.Module, params: nnx.State) -> dict[str, np.ndarray]:
    """Per replica: squared weight mass of the dense lattice layers outside the receptive fields, over all of it."""
    pure = nnx.to_pure_dict(params)
    replicas = np.asarray(next(iter(pure["layers"].values()))["kernel"]).shape[0]
    outside, total = np.zeros(replicas), np.zeros(replicas)
    for i, layer in enumerate(model.layers):
        kernel = np.asarray(pure["layers"][i]["kernel"], np.float64) ** 2
        total += kernel.reshape(replicas, -1).sum(1)
        if layer.family == "dense":
            outside += (kernel * ~support(layer)[None]).reshape(replicas, -1).sum(1)
    return {"outside_receptive_field": outside / np.maximum(total, 1e-30)}
