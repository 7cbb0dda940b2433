"""Optimizers and learning-rate schedules from a ``config.optimizer`` block.

The learning rate is an injected hyperparameter (``optax.inject_hyperparams``)
so that it lives in the optimizer state: replicas trained together in one
``vmap`` can each have their own learning rate.
"""

from __future__ import annotations

import optax

from research.errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


def _schedule(opt_config, learning_rate, total_steps: int):
    kind = opt_config.get("schedule", "constant")
    warmup = int(opt_config.get("warmup_steps", 0))
    if kind == "constant":
        return lambda count: learning_rate
    if kind == "cosine":
        return lambda count: learning_rate * optax.cosine_decay_schedule(1.0, max(total_steps, 1))(count)
    if kind == "warmup_cosine":
        shape = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, max(total_steps, warmup + 1))
        return lambda count: learning_rate * shape(count)
    raise UserError(f"unknown optimizer.schedule {kind!r}; valid: {', '.join(SCHEDULES)}")


def build_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
    """An optax transformation whose ``hyperparams['learning_rate']`` is per replica."""
    name = opt_config.get("name", "adam")
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer.name {name!r}; valid: {', '.join(OPTIMIZERS)}")
    if float(opt_config.learning_rate) <= 0:
        raise UserError(f"optimizer.learning_rate must be > 0, got {opt_config.learning_rate}")
    _schedule(opt_config, 1.0, total_steps)  # validate the schedule name now, not inside jit
    clip = float(opt_config.get("grad_clip_norm", 0.0))

    def factory(learning_rate):
        lr = _schedule(opt_config, learning_rate, total_steps)
        if name == "adam":
            base = optax.adam(lr, b1=opt_config.get("b1", 0.9), b2=opt_config.get("b2", 0.999))
        elif name == "adamw":
            base = optax.adamw(lr, weight_decay=opt_config.get("weight_decay", 1e-4))
        else:
            base = optax.sgd(lr, momentum=opt_config.get("momentum", 0.9) or None)
        return optax.chain(optax.clip_by_global_norm(clip), base) if clip > 0 else base

    return optax.inject_hyperparams(factory)(learning_rate=float(opt_config.learning_rate))
