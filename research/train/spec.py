"""``RunSpec``: everything a run is, derived once from its config and frozen.

A run spec holds the validated config, the data set (or only its shapes), the
replica grid (seeds x learning rates), steps, the optimizer and one phase per
model the run trains (the initial model; for an eFCN run also the embedded
one), each with its abstract model, its step strategy, its compiled
:class:`~research.train.engine.Engine` and the abstract train state its
checkpoints restore into. Training (:mod:`research.train.loop`), reading a
trained run back (:mod:`research.train.trained`), the planner, the sweep's
invalid-run check, the studies' parameter counts and the benchmarks all build
a ``RunSpec``; nothing else re-derives a run.

Building one validates everything and computes nothing heavy: models are
built abstractly (``nnx.eval_shape``); an engine (whose programs compile on
first use) and an abstract train state are made the first time they are asked
for, then kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from research.data import load_dataset
from research.data.transforms import pixel_permutation
from research.errors import UserError
from research.models import get_model
from research.models.embed import EMBEDDABLE, first_dense_layer, permuted_input_kernel
from research.train.engine import Engine, TrainState, choose_strategy, replica_sharding, run_once
from research.train.optim import build_optimizer
from research.validation import INT32_MAX, validate


class DataShape(Protocol):
    """What a spec needs of a data set: a :class:`~research.data.Dataset`, or the
    :class:`~research.data.DatasetShape` computed without reading any data."""

    input_shape: tuple[int, ...]
    num_classes: int
    splits: dict[str, int]


@dataclass(frozen=True)
class Tracker:
    """A probe recorded during training: ``record(model, stacked params)`` returns per-replica
    arrays; ``check(model)`` may refuse the model up front (a one-line UserError)."""

    record: Callable[[nnx.Module, nnx.State], dict[str, np.ndarray]]
    check: Callable[[nnx.Module], None] = lambda model: None


def model_fields(config) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.model.items() if k != "name"}


def build_model(config, data: DataShape, seed: int, **changes) -> nnx.Module:
    """The config's model for ``data``'s shapes, initialised from ``seed`` (``changes``
    override model fields, e.g. ``family`` for the eFCN's embedded phase); with
    ``data.permute_init``, its first dense layer starts at W0 P^T (:func:`mirror_permutation`)."""
    fields = {**model_fields(config), **changes}
    model = get_model(config.model.name, data.input_shape, data.num_classes, nnx.Rngs(jax.random.key(seed)), **fields)
    if config.data.get("permute_init", False):
        mirror_permutation(model, config, data)
    return model


def mirror_permutation(model: nnx.Module, config, data: DataShape) -> None:
    """Start ``model``'s first dense layer at W0 P^T for the run's pixel permutation P, so that
    training on the permuted pixels mirrors training on the original ones from W0 exactly."""
    layer = first_dense_layer(model)
    if not config.data.permute_pixels or layer is None:
        raise UserError("data.permute_init needs data.permute_pixels=True and a dense first layer (model mlp or family dense)")
    permutation = pixel_permutation(data.input_shape[:-1], int(config.data.permutation_seed))
    layer.kernel[...] = permuted_input_kernel(layer.kernel[...], permutation, data.input_shape[-1])


_ABSTRACT_MODELS: dict[str, nnx.Module] = {}


def abstract_model(config, data: DataShape, **changes) -> nnx.Module:
    """The config's model with shapes only (no compute): validates the model fields.

    Tracing a model is most of what planning a profile costs, and its runs share models, so
    each abstract model is traced once per process, keyed by what decides its shapes and its
    checks (model fields, data shapes, ``changes``, the permutation options), and handed out
    as a clone (measured: benchmarks/README.md, "Measurements behind rules in the code")."""
    permutation = (config.data.get("permute_init", False), config.data.get("permute_pixels", False))
    key = f"{config.model.to_json(sort_keys=True)}|{data.input_shape}|{data.num_classes}|{sorted(changes.items())}|{permutation}"
    if key not in _ABSTRACT_MODELS:
        _ABSTRACT_MODELS[key] = nnx.eval_shape(lambda: build_model(config, data, int(config.seed), **changes))
    return nnx.clone(_ABSTRACT_MODELS[key])


def replica_grid(config) -> tuple[list[int], list[float]]:
    """``(seeds, learning_rates)``, one entry per replica: every rate of
    ``optimizer.learning_rates`` (or the one ``learning_rate``) with every seed,
    rate-major. Replicas of one rate share their seeds with the other rates, so
    rates are compared on the same initialisations and batch orders."""
    rates = [float(v) for v in config.optimizer.learning_rates] or [float(config.optimizer.learning_rate)]
    seeds = [config.seed + s for s in range(config.seeds)]
    return [seed for _ in rates for seed in seeds], [rate for rate in rates for _ in seeds]


def embedding_target(config, model) -> tuple[int, str]:
    """``(epoch, target family)`` of an eFCN run (``train.embed_at_epoch`` > 0), else ``(0, "")``."""
    at = int(config.train.embed_at_epoch)
    if not at:
        return 0, ""
    target = config.train.embed_into
    if not 0 < at < config.train.epochs:
        raise UserError(f"train.embed_at_epoch must be between 1 and epochs-1 ({config.train.epochs - 1}), got {at}")
    family = getattr(model, "family", None)
    if family is None:
        raise UserError(f"train.embed_at_epoch needs a lattice model (model.family); {config.model.name!r} has none")
    if target not in EMBEDDABLE[family]:
        raise UserError(f"cannot embed {family} into {target!r} exactly; possible: {', '.join(EMBEDDABLE[family])}")
    return at, target


def segments(start: int, total: int, steps_per_epoch: int, log_every: int) -> Iterator[tuple[int, int, int]]:
    """``(epoch, begin, end)``: the steps ``begin..end-1`` of ``epoch`` from global step
    ``start`` to ``total``, each segment ending at the next log point or the epoch's end."""
    step = start
    while step < total:
        epoch, begin = divmod(step, steps_per_epoch)
        end = min(steps_per_epoch, (step // log_every + 1) * log_every - epoch * steps_per_epoch)
        yield epoch, begin, end
        step += end - begin


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one model: the initial one, or the eFCN's embedded one.
    ``model`` is abstract (shapes only); ``changes``: the model fields where it differs
    from the config's model (the embedded family)."""

    name: str
    model: nnx.Module
    strategy: str
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """One run's shape, derived from its config and data (nothing trained). Build it with
    :meth:`build`; engines and abstract states are made on first use and kept."""

    config: ml_collections.ConfigDict
    data: DataShape
    seeds: tuple[int, ...]
    learning_rates: tuple[float, ...]
    steps_per_epoch: int
    total_steps: int
    log_every: int
    switch_step: int  # eFCN: the step at which the embedded phase starts (total + 1: never)
    embed_into: str
    tx: optax.GradientTransformation
    phases: Mapping[str, Phase]

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, data: DataShape | None = None, track=None) -> RunSpec:
        """Validate the config, data set, model and optimizer; raises UserError, writes nothing.
        ``data``: the data set (loaded from ``config.data`` when not given) or its shapes."""
        validate(config)
        data = load_dataset(config.data) if data is None else data
        seeds, lrs = replica_grid(config)
        batch, n_train = config.train.batch_size, data.splits["train"]
        if batch > n_train:
            raise UserError(f"train.batch_size={batch} is larger than the training set ({n_train} examples)")
        steps_per_epoch = n_train // batch
        total_steps = steps_per_epoch * config.train.epochs
        if total_steps > INT32_MAX:  # the step counter on the device
            raise UserError(
                f"train.epochs={config.train.epochs} at {steps_per_epoch} steps an epoch is {total_steps} steps, "
                f"more than {INT32_MAX} training steps (a 32-bit counter)"
            )
        model = abstract_model(config, data)
        # eFCN (d'Ascoli et al. 2019): train as model.family, then embed exactly into
        # another family at an epoch boundary and train on with a fresh optimizer.
        embed_at, embed_into = embedding_target(config, model)
        models = {"initial": (model, {})}
        if embed_at:
            changes = {"family": embed_into}
            models["embedded"] = (abstract_model(config, data, **changes), changes)
        for tracker in (track or {}).values():  # a tracker may refuse the model up front
            tracker.check(model)
        sharded = replica_sharding(len(seeds)) is not None
        backend = jax.default_backend()
        phases = {
            name: Phase(name, m, choose_strategy(config.train.strategy, m, backend, len(seeds), sharded), MappingProxyType(c))
            for name, (m, c) in models.items()
        }
        return cls(
            config=config,
            data=data,
            seeds=tuple(seeds),
            learning_rates=tuple(lrs),
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            log_every=config.train.log_every_steps or steps_per_epoch,
            switch_step=embed_at * steps_per_epoch if embed_at else total_steps + 1,
            embed_into=embed_into,
            tx=build_optimizer(config.optimizer, total_steps),
            phases=MappingProxyType(phases),
        )

    @property
    def replicas(self) -> int:
        return len(self.seeds)

    @property
    def initial(self) -> Phase:
        return self.phases["initial"]

    def evaluation_due(self, epoch: int, end_of_epoch: bool) -> bool:
        """Evaluate after ``epoch`` (0-based) every ``eval_every_epochs`` and at the last one."""
        every = self.config.train.eval_every_epochs
        return end_of_epoch and ((epoch + 1) % every == 0 or epoch + 1 == self.config.train.epochs)

    def segments(self, start: int = 0) -> Iterator[tuple[int, int, int]]:
        """The run's ``(epoch, begin, end)`` segments from global step ``start`` (:func:`segments`)."""
        return segments(start, self.total_steps, self.steps_per_epoch, self.log_every)

    @cached_property
    def engines(self) -> Mapping[str, Engine]:
        """Each phase's engine; steps run in ``lax.scan`` chunks that divide the epoch and the log interval."""
        train = self.config.train
        chunk = math.gcd(self.steps_per_epoch, self.log_every)
        return MappingProxyType(
            {
                name: Engine(nnx.graphdef(p.model), self.tx, train.batch_size, chunk=chunk, augment_shift=train.augment_shift)
                for name, p in self.phases.items()
            }
        )

    def initializer(self, phase: str = "initial") -> tuple[Callable, tuple]:
        """``(init, args)``: ``init(*args)`` builds the stacked train state of every replica
        (run it with :meth:`init_state`, or ``jax.eval_shape`` it for the shapes)."""
        engine, changes = self.engines[phase], self.phases[phase].changes

        def init_one(seed, learning_rate):
            params = nnx.state(build_model(self.config, self.data, seed, **changes), nnx.Param)
            return engine.init_replica(params, seed, learning_rate)

        return jax.vmap(init_one), (jnp.asarray(self.seeds, jnp.uint32), jnp.asarray(self.learning_rates, jnp.float32))

    def init_state(self, phase: str = "initial") -> TrainState:
        """Every replica's initial train state, computed once on the device."""
        init, args = self.initializer(phase)
        return run_once(init, *args)

    @cached_property
    def abstract_states(self) -> Mapping[str, Any]:
        """Each phase's train state as shapes: what its checkpoints restore into."""
        return MappingProxyType({name: jax.eval_shape(*_flat(self.initializer(name))) for name in self.phases})


def _flat(initializer: tuple[Callable, tuple]) -> tuple:
    init, args = initializer
    return (init, *args)
