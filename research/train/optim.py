"""Optimizers and learning-rate schedules from a ``config.optimizer`` block.

``name``: adam (``b1``, ``b2``), adamw (the same plus decoupled ``weight_decay``),
sgd (``momentum``, 0: plain) or beta_lasso (sgd's options plus ``l1`` and
``beta``: :func:`beta_lasso`); ``grad_clip_norm`` > 0 clips the global
gradient norm first; ``schedule``: constant, cosine decay to 0 over the run, or
warmup_cosine (linear from 0 over ``warmup_steps``, then cosine).

The learning rate is an injected hyperparameter (``optax.inject_hyperparams``)
so that it lives in the optimizer state: replicas trained together in one
``vmap`` can each have their own learning rate (and, for beta_lasso, their own
``l1`` and ``beta``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.errors import UserError, unknown

OPTIMIZERS = ("adam", "adamw", "sgd", "beta_lasso")
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


def add_l1_subgradient(l1) -> optax.GradientTransformation:
    """Adds ``l1 * sign(w)`` to the gradient: the subgradient of ``l1 * |w|_1`` (0 at w = 0)."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        return jax.tree.map(lambda g, w: g + l1 * jnp.sign(w), updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def zero_below(threshold) -> optax.GradientTransformation:
    """Makes the step end with every weight whose new magnitude is below ``threshold`` at exactly
    zero (its update becomes ``-w``, and ``w + (-w)`` is exactly 0); other updates pass unchanged."""

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(optax.NO_PARAMS_MSG)
        return jax.tree.map(lambda u, w: jnp.where(jnp.abs(w + u) < threshold, -w, u), updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def beta_lasso(learning_rate, l1, beta, momentum: float | None = None) -> optax.GradientTransformation:
    """beta-LASSO (Neyshabur 2020, "Towards learning convolutions from scratch", Algorithm 1,
    https://arxiv.org/abs/2007.13657): each step ``w <- w - lr * (grad + l1 * sign(w))``, then
    ``w <- 0`` wherever ``|w| < beta * l1``.

    The variant implemented: the L1 subgradient is taken at the weights before the step and
    added to the gradient, so the step is exactly optax's SGD on the L1-penalised loss (with
    ``momentum`` it passes through the momentum like the gradient; ``momentum=None`` is the
    paper's plain SGD); the threshold ``beta * l1`` applies to the weights after the step and
    is not scaled by the learning rate, as in the paper. Every parameter is penalised and
    thresholded (the paper's ``w`` is the whole parameter vector). ``l1 = 0`` is exactly SGD.
    """
    return optax.chain(add_l1_subgradient(l1), optax.sgd(learning_rate, momentum=momentum), zero_below(beta * l1))


def build_optimizer(opt_config, total_steps: int) -> optax.GradientTransformation:
    """An optax transformation whose ``hyperparams['learning_rate']`` is per replica
    (beta_lasso: ``hyperparams['l1']`` and ``['beta']`` too)."""
    name = opt_config.name
    if name not in OPTIMIZERS:
        raise unknown("optimizer.name", name, OPTIMIZERS)
    if float(opt_config.learning_rate) <= 0:
        raise UserError(f"optimizer.learning_rate must be > 0, got {opt_config.learning_rate}")
    shape = schedule_shape(opt_config, total_steps)  # an unknown name fails now, not inside jit
    clip = float(opt_config.grad_clip_norm)

    def factory(learning_rate, l1=None, beta=None):  # named: inject_hyperparams binds by signature
        lr = (lambda count: learning_rate) if opt_config.schedule == "constant" else (lambda count: learning_rate * shape(count))
        if name == "adam":
            base = optax.adam(lr, b1=opt_config.b1, b2=opt_config.b2)
        elif name == "adamw":
            base = optax.adamw(lr, b1=opt_config.b1, b2=opt_config.b2, weight_decay=opt_config.weight_decay)
        elif name == "beta_lasso":
            base = beta_lasso(lr, l1, beta, momentum=opt_config.momentum or None)
        else:
            base = optax.sgd(lr, momentum=opt_config.momentum or None)
        return optax.chain(optax.clip_by_global_norm(clip), base) if clip > 0 else base

    # Only beta_lasso carries l1 and beta in its state: the other optimizers' states (and the
    # checkpoints that hold them) keep the structure they had before beta_lasso existed.
    lasso = {"l1": float(opt_config.l1), "beta": float(opt_config.beta)} if name == "beta_lasso" else {}
    return optax.inject_hyperparams(factory)(learning_rate=float(opt_config.learning_rate), **lasso)
