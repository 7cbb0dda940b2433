"""What a run holds in memory while it trains, from its spec alone: the one estimate that
``cvd reproduce --plan`` (:mod:`research.plan`) and every ``cvd train`` use.

Per replica: float32 parameters, gradients and two Adam moments (16 bytes a
parameter), plus a training batch's activations twice (kept for the backward
pass, and their gradients: every intermediate value of the traced forward pass)
or an evaluation batch's, whichever is more; plus the data set on the device
(float32). Nothing is allocated: the model is abstract and its forward pass only
traced. :func:`check_memory` refuses, before anything is allocated or written, a
run whose estimate exceeds the device's memory (the host's on CPU).
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
from flax import nnx

from research.errors import UserError
from research.models import count_macs, count_params

BYTES = 4  # float32
GPU_TARGET = ("an H100-class GPU", 80e9)  # the full profile's machine, when planned elsewhere


def _activation_elements(model: nnx.Module, input_shape) -> int:
    """Every intermediate value of one example's forward pass (a traced jaxpr, nothing computed)."""
    graphdef, state = nnx.split(model)
    jaxpr = jax.make_jaxpr(lambda s, x: nnx.merge(graphdef, s)(x))(state, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
    return sum(math.prod(v.aval.shape) for eqn in jaxpr.eqns for v in eqn.outvars if hasattr(v.aval, "shape"))


_MODEL_CACHE: dict[str, tuple[int, int, int]] = {}


def model_sizes(spec) -> tuple[int, int, int]:
    """``(params, forward MACs per example, activation elements per example)`` of a run spec's model."""
    config, shape, model = spec.config, spec.data, spec.initial.model
    key = f"{config.model.to_json(sort_keys=True)}|{shape.input_shape}|{shape.num_classes}"
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = (count_params(model), count_macs(model), _activation_elements(model, shape.input_shape))
    return _MODEL_CACHE[key]


def peak_bytes(spec) -> float:
    """A run spec's peak device memory in bytes (the module docstring says what it counts)."""
    params, _, activations = model_sizes(spec)
    config, splits = spec.config, spec.data.splits
    n_all = sum(splits.values())
    batch_values = max(2 * int(config.train.batch_size), min(int(config.train.eval_batch_size), n_all))
    example = math.prod(spec.data.input_shape)
    return float(spec.replicas * (16 * params + BYTES * batch_values * activations) + BYTES * example * n_all)


def device_memory(profile: str = "") -> tuple[str, float]:
    """``(device, bytes)`` to check against: this machine's accelerator, or for the ``full``
    profile planned on a CPU-only machine the GPU it is sized for, or host memory."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return f"{device.device_kind} ({device.platform})", float(stats["bytes_limit"])
    if profile == "full":
        return GPU_TARGET
    return "host memory (CPU)", float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(spec) -> None:
    """Refuse (one line naming the estimate) a run that cannot fit this machine's memory."""
    needed = peak_bytes(spec)
    device, memory = device_memory()
    if needed > memory:
        params = model_sizes(spec)[0]
        raise UserError(
            f"this run needs about {needed / 1e9:.1f} GB of memory ({spec.replicas} replicas x {params:,} parameters, "
            f"the planner's estimate), more than the {memory / 1e9:.1f} GB of {device}; "
            "train fewer seeds or learning rates, or a smaller model or batch"
        )
