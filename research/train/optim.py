"""Optimizers and learning-rate schedules from a ``config.optimizer`` block.

``name``: adam (``b1``, ``b2``), adamw (the same plus decoupled ``weight_decay``)
or sgd (``momentum``, 0: plain); ``grad_clip_norm`` > 0 clips the global
gradient norm first; ``schedule``: constant, cosine decay to 0 over the run, or
warmup_cosine (linear from 0 over ``warmup_steps``, then cosine).

The learning rate is an injected hyperparameter (``optax.inject_hyperparams``)
so that it lives in the optimizer state: replicas trained together in one
``vmap`` can each have their own learning rate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optax

from research.errors import UserError, unknown

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def schedule_shape(opt_config, total_steps: int) -> Callable:
    """The schedule's multiplier of the base learning rate as a function of the update count."""
    kind = opt_config.schedule
    warmup = int(opt_config.warmup_steps)
    if kind == "constant":
        return lambda count: 1.0
    if kind == "cosine":
        return optax.cosine_decay_schedule(1.0, max(total_steps, 1))
    if kind == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, max(total_steps, warmup + 1))
    raise unknown("optimizer.schedule", kind, SCHEDULES)


def applied_learning_rates(opt_config, total_steps: int, base_rates, step: int) -> np.ndarray:
    """Per replica, the rate the update of step ``step`` (1-based) applied: base x schedule."""
    return np.asarray(base_rates, np.float32) * np.float32(schedule_shape(opt_config, total_steps)(max(step - 1, 0)))


def build_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
    """An optax transformation whose ``hyperparams['learning_rate']`` is per replica."""
    name = opt_config.name
    if name not in OPTIMIZERS:
        raise unknown("optimizer.name", name, OPTIMIZERS)
    if float(opt_config.learning_rate) <= 0:
        raise UserError(f"optimizer.learning_rate must be > 0, got {opt_config.learning_rate}")
    shape = schedule_shape(opt_config, total_steps)  # an unknown name fails now, not inside jit
    clip = float(opt_config.grad_clip_norm)

    def factory(learning_rate):
        lr = (lambda count: learning_rate) if opt_config.schedule == "constant" else (lambda count: learning_rate * shape(count))
        if name == "adam":
            base = optax.adam(lr, b1=opt_config.b1, b2=opt_config.b2)
        elif name == "adamw":
            base = optax.adamw(lr, b1=opt_config.b1, b2=opt_config.b2, weight_decay=opt_config.weight_decay)
        else:
            base = optax.sgd(lr, momentum=opt_config.momentum or None)
        return optax.chain(optax.clip_by_global_norm(clip), base) if clip > 0 else base

    return optax.inject_hyperparams(factory)(learning_rate=float(opt_config.learning_rate))
