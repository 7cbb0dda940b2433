"""The one check of a config's values: :func:`validate` raises a one-line UserError.

Types are kept by :func:`research.config.set_value`; here are the ranges and the
combinations: integers and their bounds, positive learning rates, optimizer options in
range and none set where it has no effect (:data:`research.config.LIVE_WHEN`), early
stopping and rate halving only with a validation split. Model fields are checked by the
model when it is built; the number of training steps by the run spec
(:class:`research.train.spec.RunSpec`).
"""

from __future__ import annotations

import ml_collections

from research.config import LIVE_WHEN, default_config
from research.errors import UserError

# -- range checks that types alone do not catch ---------------------------------------
# The numeric optimizer keys' valid ranges: key -> (lowest allowed, first value above the range).
OPTIMIZER_RANGES = {
    "b1": (0.0, 1.0),
    "b2": (0.0, 1.0),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, float("inf")),
    "l1": (0.0, float("inf")),
    "beta": (0.0, float("inf")),
    "grad_clip_norm": (0.0, float("inf")),
    "warmup_steps": (0, float("inf")),
}


INT32_MAX = 2**31 - 1  # the step counter and shifts are int32 on the device
MAX_REPLICAS = 2**20  # seeds x learning rates in one program: far beyond any device's memory


def _integer_at_least(section, key: str, minimum: int = 1, maximum: int | None = INT32_MAX) -> int:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{key} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise UserError(f"{key} must be an integer between {minimum} and {maximum}, got {value!r}")
    return value


def _in_range(section, ranges: dict[str, tuple[float, float]]) -> None:
    for key, (low, above) in ranges.items():
        value = section[key]
        if not low <= value < above:
            upper = f" and < {above:g}" if above != float("inf") else ""
            raise UserError(f"optimizer.{key} must be >= {low:g}{upper}, got {value!r}")


def _positive_rates(optimizer) -> None:
    """``learning_rate`` and every rate of ``learning_rates`` > 0 (so not NaN)."""
    rates = tuple(optimizer.learning_rates)
    if any(isinstance(lr, (str, bool)) or not float(lr) > 0 for lr in rates):
        raise UserError(f"optimizer.learning_rates must be > 0, got {rates}")
    rate = optimizer.learning_rate
    if isinstance(rate, (str, bool)) or not float(rate) > 0:
        raise UserError(f"optimizer.learning_rate must be > 0, got {rate!r}")


def _halving(config: ml_collections.ConfigDict) -> None:
    """``train.halve_rates_at`` in [0, 1), on validation, and not with the eFCN switch."""
    fraction = config.train.halve_rates_at
    if isinstance(fraction, (str, bool)) or not 0 <= float(fraction) < 1:
        raise UserError(f"train.halve_rates_at must be a fraction of the epochs in [0, 1), got {fraction!r}")
    if fraction and int(config.data.n_val) == 0:
        raise UserError(
            "train.halve_rates_at ranks rates on validation accuracy; it needs a validation split (data.n_val -1 or > 0)"
        )
    if fraction and config.train.embed_at_epoch:
        raise UserError("train.halve_rates_at cannot be combined with train.embed_at_epoch (the eFCN switch)")


def validate(config: ml_collections.ConfigDict) -> None:
    """The one check of a config's values (types are kept by :func:`set_value`): raises a
    one-line UserError. Model fields are checked by the model when it is built; the
    number of training steps by the run spec (:class:`research.train.spec.RunSpec`)."""
    _integer_at_least(config, "seeds", 1, MAX_REPLICAS)
    _integer_at_least(config, "seed", 0, 2**32 - 1)
    if config.seed + config.seeds > 2**32:  # replica r's seed is seed + r, a uint32
        raise UserError(f"seed + seeds must be <= 4294967296 (seeds are 32-bit), got {config.seed} + {config.seeds}")
    _integer_at_least(config.train, "epochs", 1, maximum=None)  # bounded by its steps (RunSpec)
    for key in ("batch_size", "eval_batch_size", "keep_checkpoints", "eval_every_epochs"):
        _integer_at_least(config.train, key)
    for key in ("log_every_steps", "checkpoint_every_steps", "augment_shift", "patience"):
        _integer_at_least(config.train, key, 0)
    if config.train.patience and int(config.data.n_val) == 0:
        raise UserError("train.patience stops on validation accuracy; it needs a validation split (data.n_val -1 or > 0)")
    _halving(config)
    _positive_rates(config.optimizer)
    replicas = config.seeds * max(1, len(config.optimizer.learning_rates))
    if replicas > MAX_REPLICAS:
        raise UserError(f"seeds x learning_rates is {replicas} replicas, more than the {MAX_REPLICAS} one program may train")
    _in_range(config.optimizer, OPTIMIZER_RANGES)
    _no_dead_options(config.optimizer)


def _no_dead_options(optimizer: ml_collections.ConfigDict) -> None:
    defaults = default_config().optimizer
    for key, (switch, live) in LIVE_WHEN.items():
        if optimizer[switch] not in live and optimizer[key] != defaults[key]:
            raise UserError(
                f"optimizer.{key}={optimizer[key]!r} has no effect with optimizer.{switch}={optimizer[switch]!r} "
                f"(it acts with {switch} {' or '.join(live)}); leave it at {defaults[key]!r} or change {switch}"
            )
