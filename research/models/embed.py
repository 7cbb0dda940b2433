"""Exact weight embeddings down the lattice: conv -> locally connected -> dense.

A conv is a locally connected layer whose per-position kernels are tied
copies; a locally connected layer is a dense layer whose matrix is zero
outside each output's receptive field. These functions build those weights,
so that the embedded layer computes the same function (to float rounding).
They serve the lattice tests and the eFCN study (d'Ascoli et al. 2019,
"Finding the needle in the haystack with convolutions",
https://arxiv.org/abs/1906.06766).
"""

from __future__ import annotations

import math

import numpy as np

from research.models.layers import Conv, LocallyConnected, SpatialLayer


def conv_to_locally_connected(
    kernel: np.ndarray, bias: np.ndarray, out_spatial: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Tied locally connected weights equal to a conv ``kernel (*k, c_in, c_out)``."""
    kernel = np.asarray(kernel)
    *k, c_in, c_out = kernel.shape
    # Patch features are ordered channel first: index = c * prod(k) + offset.
    per_position = np.moveaxis(kernel, -2, 0).reshape(c_in * math.prod(k), c_out)
    lc_kernel = np.broadcast_to(per_position, (*out_spatial, *per_position.shape)).copy()
    lc_bias = np.broadcast_to(np.asarray(bias), (*out_spatial, c_out)).copy()
    return lc_kernel, lc_bias


def locally_connected_to_dense(layer: SpatialLayer, lc_kernel: np.ndarray, lc_bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dense matrix ``(prod(in_shape), prod(out_shape))`` and bias of a locally connected layer.

    ``layer`` supplies the geometry (input shape, kernel size, stride, padding).
    Entries outside every receptive field are exactly zero.
    """
    spatial, c_in = layer.in_shape[:-1], layer.in_shape[-1]
    out_spatial, kernel_size = layer.out_spatial, layer.kernel_size
    c_out = lc_kernel.shape[-1]
    n_out, n_k = math.prod(out_spatial), math.prod(kernel_size)
    lo = np.array([p[0] for p in layer.resolved.pads])
    out_idx = np.indices(out_spatial).reshape(len(out_spatial), -1).T  # (O, nd)
    k_idx = np.indices(kernel_size).reshape(len(kernel_size), -1).T  # (K, nd)
    pos = out_idx[:, None, :] * np.array(layer.strides) + k_idx[None, :, :] - lo  # (O, K, nd)
    size = np.array(spatial)
    if layer.resolved.circular:
        pos = pos % size
        valid = np.ones(pos.shape[:2], bool)
    else:
        valid = np.all((pos >= 0) & (pos < size), axis=-1)
    o, kk = np.nonzero(valid)
    flat_in = np.ravel_multi_index(tuple(pos[o, kk].T), spatial)
    per_offset = np.asarray(lc_kernel).reshape(n_out, c_in, n_k, c_out)
    weight = np.zeros((math.prod(spatial), c_in, n_out, c_out), per_offset.dtype)
    np.add.at(weight, (flat_in, slice(None), o, slice(None)), per_offset[o, :, kk, :])
    return weight.reshape(math.prod(spatial) * c_in, n_out * c_out), np.asarray(lc_bias).reshape(-1)


def conv_to_dense(layer: Conv) -> tuple[np.ndarray, np.ndarray]:
    """Dense weights computing exactly what ``layer`` (a conv or full-kernel conv) computes."""
    lc_kernel, lc_bias = conv_to_locally_connected(layer.kernel[...], layer.bias[...], layer.out_spatial)
    return locally_connected_to_dense(layer, lc_kernel, lc_bias)


def locally_connected_layer_to_dense(layer: LocallyConnected) -> tuple[np.ndarray, np.ndarray]:
    return locally_connected_to_dense(layer, np.asarray(layer.kernel[...]), np.asarray(layer.bias[...]))


# Where each family can be embedded exactly (down the lattice).
EMBEDDABLE = {
    "conv": ("conv", "locally_connected", "dense"),
    # Not locally connected: a full kernel sees the whole input, which the locally connected layer of
    # the same geometry (the conv's kernel size) cannot hold; only the dense matrix can.
    "full_kernel_conv": ("full_kernel_conv", "dense"),
    "locally_connected": ("locally_connected", "dense"),
    "dense": ("dense",),
}


def embed_layer_params(layer: SpatialLayer, kernel: np.ndarray, bias: np.ndarray, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Weights of a ``target``-family layer computing exactly what ``layer`` computes with ``kernel, bias``."""
    if target not in EMBEDDABLE[layer.family]:
        raise ValueError(f"cannot embed {layer.family} into {target}; possible: {', '.join(EMBEDDABLE[layer.family])}")
    if target == layer.family:
        return np.asarray(kernel), np.asarray(bias)
    if layer.family in ("conv", "full_kernel_conv"):
        kernel, bias = conv_to_locally_connected(kernel, bias, layer.out_spatial)
        if target == "locally_connected":
            return kernel, bias
    return locally_connected_to_dense(layer, np.asarray(kernel), np.asarray(bias))


def embed_network_params(source_model, params: dict, target: str) -> dict:
    """Pure-dict params of a ``LatticeNet`` embedded into the ``target`` family.

    Lattice layers are converted; every other parameter (head, classifier) has
    the same shape in both networks and is copied.
    """
    out = {key: value for key, value in params.items() if key != "layers"}
    out["layers"] = {}
    for i, layer in enumerate(source_model.layers):
        kernel, bias = embed_layer_params(layer, params["layers"][i]["kernel"], params["layers"][i]["bias"], target)
        out["layers"][i] = {"kernel": kernel, "bias": bias}
    return out


def permuted_input_kernel(kernel, permutation: np.ndarray, channels: int):
    """A first dense kernel ``(positions * channels, out)`` that computes on pixels permuted by
    ``permutation`` (``x'[i] = x[permutation[i]]``, as ``research.data.permute_pixels``) what
    ``kernel`` computes on the original pixels: row ``i * C + c`` is row ``permutation[i] * C + c``
    (W0 P^T). A dense net is thereby exactly symmetric under a fixed pixel permutation: trained
    by Adam on permuted inputs from this kernel, it follows the original run's trajectory."""
    rows = (np.asarray(permutation)[:, None] * channels + np.arange(channels)[None]).reshape(-1)
    return kernel[rows]


def first_dense_layer(model):
    """The dense layer that reads the flattened input (an MLP's first hidden layer or a dense
    lattice net's first layer), or None."""
    if getattr(model, "family", "") == "dense" and getattr(model, "layers", None):
        return model.layers[0]
    hidden = getattr(model, "hidden", None)
    return hidden[0] if hidden else None
