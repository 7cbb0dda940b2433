"""Locality index (C2): does a dense first layer learn local receptive fields?

For each unit of a dense first layer, its squared incoming weights, summed
over input channels, give a mass over input positions. The index is the
fraction of that mass within ``radius`` of the unit's mass centroid, averaged
over units. A perfectly local unit scores 1. The index is read against its
shuffled baseline (``shuffled``): at each input position, the units' masses are
permuted among the units (seeded). That keeps the population's mass at every
position (an envelope shared by all units, e.g. more weight on the centre of
the canvas) and every position's distribution over units, and removes only what
ties one unit's mass to positions near each other. A baseline that shuffled each
unit's weights over positions would also remove a shared envelope, so i.i.d.
units under one envelope, none of them local, would score above it; against this
one they do not. Both sit above the fraction of positions within the radius
(``uniform``), because concentrated weights sit near their own centroid wherever
they are. ``unit_spread`` is the standard
deviation of the per-unit index. Recorded at every evaluation
with ``probes.track = ("locality",)``, it shows locality emerging in training
(Neyshabur 2020, https://arxiv.org/abs/2007.13657).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from flax import nnx

from research.errors import UserError
from research.probes.base import ProbeOptions, register_probe
from research.train.trained import TrainedRun


def check_dense_first(model: nnx.Module) -> None:
    """Refuse models whose first layer is not dense (before training starts)."""
    if hasattr(model, "layers") and getattr(model, "family", "") == "dense":
        return
    if hasattr(model, "hidden") and len(model.hidden):
        return
    raise UserError(
        f"the locality index needs a dense first layer (model mlp or family dense); this model's is {getattr(model, 'family', '?')}"
    )


def first_dense_kernel(model: nnx.Module, params: nnx.State) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(kernel (replicas, inputs, units), input shape)`` of the model's first
    layer, which must be dense (an MLP or the ``dense`` lattice family)."""
    pure = nnx.to_pure_dict(params)
    if hasattr(model, "layers") and getattr(model, "family", "") == "dense":
        return np.asarray(pure["layers"][0]["kernel"]), tuple(model.layers[0].in_shape)
    if hasattr(model, "hidden") and len(model.hidden):
        return np.asarray(pure["hidden"][0]["kernel"]), tuple(model.input_shape)
    check_dense_first(model)
    raise AssertionError("unreachable")


def _unit_index(mass: np.ndarray, coords: np.ndarray, radius: float) -> np.ndarray:
    """Per unit ``(R, units)``: the share of its mass ``(R, positions, units)`` within ``radius`` of its centroid."""
    mass = mass / np.maximum(mass.sum(1, keepdims=True), 1e-30)
    centroid = np.einsum("rpu,pd->rud", mass, coords)  # (R, units, dims)
    distance = np.linalg.norm(coords[None, :, None, :] - centroid[:, None, :, :], axis=-1)  # (R, positions, units)
    return (mass * (distance <= radius)).sum(1)


def locality_index(
    kernel: np.ndarray, input_shape: tuple[int, ...], radius: float, seed: int = 0, replica_ids: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """Per replica, for ``kernel`` ``(replicas, prod(input_shape), units)``: the index
    (mean over units), its spread over units, the shuffled baseline, and (a float) the
    index of uniform weights. Each replica's shuffle is drawn from ``(seed, its index)``
    (``replica_ids``: the replicas' indices in their run, default 0, 1, ...), so it does not
    depend on the replicas beside it."""
    *spatial, channels = input_shape
    replicas, _, units = kernel.shape
    mass = (kernel.reshape(replicas, math.prod(spatial), channels, units) ** 2).sum(2)  # (R, positions, units)
    coords = np.stack(np.meshgrid(*[np.arange(s) for s in spatial], indexing="ij"), -1).reshape(-1, len(spatial))
    per_unit = _unit_index(mass, coords, radius)
    ids = range(replicas) if replica_ids is None else replica_ids
    # per replica and position: units permuted
    order = np.stack([np.random.default_rng([seed, int(r)]).random(mass.shape[1:]).argsort(1) for r in ids])
    shuffled = _unit_index(np.take_along_axis(mass, order, 2), coords, radius)
    centre = (np.asarray(spatial) - 1) / 2
    uniform = float((np.linalg.norm(coords - centre, axis=-1) <= radius).mean())
    return {"index": per_unit.mean(-1), "unit_spread": per_unit.std(-1), "shuffled": shuffled.mean(-1), "uniform": uniform}


def default_radius(input_shape: tuple[int, ...]) -> float:
    return max(1.0, min(input_shape[:-1]) / 10)


def track_locality(model: nnx.Module, params: nnx.State) -> dict[str, np.ndarray]:
    """The index of stacked replica ``params``, for recording during training."""
    kernel, shape = first_dense_kernel(model, params)
    result = locality_index(kernel, shape, default_radius(shape))
    index = result["index"]
    return {
        "locality_index": index,
        "locality_shuffled": result["shuffled"],
        "locality_unit_spread": result["unit_spread"],
        "locality_uniform": np.full_like(index, result["uniform"]),
    }


@register_probe("locality")
def locality(run: TrainedRun, options: ProbeOptions) -> dict:
    """How local a dense first layer learned to be: its weight mass near each unit's centre against a shuffled baseline (C2)."""
    kernel, shape = first_dense_kernel(run.model, run.params)
    radius = default_radius(shape)
    result = locality_index(kernel, shape, radius, replica_ids=run.replica_indices)
    return {
        "radius": radius,
        "locality_index": result["index"].tolist(),
        "shuffled": result["shuffled"].tolist(),
        "unit_spread": result["unit_spread"].tolist(),
        "uniform": result["uniform"],
    }
