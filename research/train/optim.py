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

import optax

from research.errors import UserError, unknown

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def _schedule(opt_config, learning_rate, total_steps: int):
    kind = opt_config.schedule
    warmup = int(opt_config.warmup_steps)
    if kind == "constant":
        return lambda count: learning_rate
    if kind == "cosine":
        return lambda count: learning_rate * optax.cosine_decay_schedule(1.0, max(total_steps, 1))(count)
    if kind == "warmup_cosine":
        shape = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, max(total_steps, warmup + 1))
        return lambda count: learning_rate * shape(count)
    raise unknown("optimizer.schedule", kind, SCHEDULES)


def build_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
    """An optax transformation whose ``hyperparams['learning_rate']`` is per replica."""
    name = opt_config.name
    if name not in OPTIMIZERS:
        raise unknown("optimizer.name", name, OPTIMIZERS)
    if float(opt_config.learning_rate) <= 0:
        raise UserError(f"optimizer.learning_rate must be > 0, got {opt_config.learning_rate}")
    _schedule(opt_config, 1.0, total_steps)  # validate the schedule name now, not inside jit
    clip = float(opt_config.grad_clip_norm)

    def factory(learning_rate):
        lr = _schedule(opt_config, learning_rate, total_steps)
        if name == "adam":
            base = optax.adam(lr, b1=opt_config.b1, b2=opt_config.b2)
        elif name == "adamw":
            base = optax.adamw(lr, b1=opt_config.b1, b2=opt_config.b2, weight_decay=opt_config.weight_decay)
        else:
            base = optax.sgd(lr, momentum=opt_config.momentum or None)
        return optax.chain(optax.clip_by_global_norm(clip), base) if clip > 0 else base

    return optax.inject_hyperparams(factory)(learning_rate=float(opt_config.learning_rate))
