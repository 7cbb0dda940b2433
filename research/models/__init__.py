"""Models by name: the layer lattice, pooling, architectures and their registry.

``get_model(name, input_shape, num_classes, rngs, **overrides)`` builds a
registered model. Variants are ``functools.partial`` instances that differ in
a field or two; any field can still be overridden from the config (for
example ``model.family=locally_connected`` turns ``mnist1d_cnn`` into its
locally connected twin with identical activation shapes).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial

from flax import nnx

from research.errors import UserError, did_you_mean
from research.models.architectures import HEADS, MLP, LatticeNet, conv_impls, count_macs, count_params
from research.models.layers import FAMILIES, PADDINGS
from research.models.pooling import POOLINGS
from research.registry import Registry

MODELS: Registry[Callable[..., nnx.Module]] = Registry("model")

MODELS.register("mlp", MLP)
MODELS.register("lattice", LatticeNet)
MODELS.register("mnist1d_mlp", partial(MLP, hidden=(100, 100)))
MODELS.register(
    "mnist1d_cnn",
    partial(LatticeNet, family="conv", widths=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=2, padding=1),
)
MODELS.register("fashion_mlp", partial(MLP, hidden=(256, 128, 100)))
MODELS.register(
    "fashion_cnn",
    partial(
        LatticeNet,
        family="conv",
        widths=(32, 64),
        kernel_sizes=3,
        padding="SAME",
        pooling="max",
        pool_window=2,
        pool_stride=2,
        head_widths=(128,),
    ),
)


def model_fields(name: str) -> list[str]:
    """The keyword fields a registered model accepts (for config validation)."""
    factory = MODELS.get(name)
    fn = factory.func if isinstance(factory, partial) else factory
    params = inspect.signature(fn.__init__ if isinstance(fn, type) else fn).parameters
    return [p for p, v in params.items() if v.kind == v.KEYWORD_ONLY and p != "rngs"]


def model_defaults(name: str) -> dict:
    """Every field of model ``name`` with the value it takes when the config does not set it
    (the variant's ``partial`` keywords over the class's defaults)."""
    factory = MODELS.get(name)
    fn = factory.func if isinstance(factory, partial) else factory
    params = inspect.signature(fn.__init__ if isinstance(fn, type) else fn).parameters
    defaults = {p: v.default for p, v in params.items() if v.kind == v.KEYWORD_ONLY and p != "rngs"}
    if isinstance(factory, partial):
        defaults.update(factory.keywords)
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in defaults.items() if v is not inspect.Parameter.empty}


def get_model(name: str, input_shape: Sequence[int], num_classes: int, rngs: nnx.Rngs, **fields) -> nnx.Module:
    """Build model ``name``; ``fields`` override the variant's defaults."""
    factory = MODELS.get(name)
    valid = model_fields(name)
    for field in fields:
        if field not in valid:
            raise UserError(f"model {name!r} has no field {field!r}.{did_you_mean(field, valid)} Valid: {', '.join(valid)}")
    return factory(tuple(input_shape), num_classes, rngs=rngs, **fields)


__all__ = [
    "FAMILIES",
    "HEADS",
    "MLP",
    "MODELS",
    "PADDINGS",
    "POOLINGS",
    "LatticeNet",
    "conv_impls",
    "count_macs",
    "count_params",
    "get_model",
    "model_defaults",
    "model_fields",
]
