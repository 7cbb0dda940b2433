"""Every optimizer option does what its name says: each one's updates against optax's own."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research.config import default_config
from research.errors import UserError
from research.train.optim import build_optimizer

GRADS = [jnp.array([3.0, -4.0]), jnp.array([0.5, 1.0]), jnp.array([-2.0, 0.0])]


def _updates(tx: optax.GradientTransformation) -> list[np.ndarray]:
    params = jnp.array([1.0, 2.0])
    state, out = tx.init(params), []
    for g in GRADS:
        update, state = tx.update(g, state, params)
        params = optax.apply_updates(params, update)
        out.append(np.asarray(update))
    return out


def _optimizer(**options):
    c = default_config().optimizer
    c.update(options)
    return build_optimizer(c, total_steps=10)


@pytest.mark.parametrize(
    "options, reference",
    [
        ({"name": "adam", "b1": 0.5, "b2": 0.9}, optax.adam(0.1, b1=0.5, b2=0.9)),
        ({"name": "adamw", "b1": 0.5, "weight_decay": 0.3}, optax.adamw(0.1, b1=0.5, weight_decay=0.3)),
        ({"name": "sgd", "momentum": 0.7}, optax.sgd(0.1, momentum=0.7)),
        ({"name": "sgd", "momentum": 0.0}, optax.sgd(0.1)),
        ({"name": "beta_lasso", "momentum": 0.7, "l1": 0.0}, optax.sgd(0.1, momentum=0.7)),  # l1 = 0: exactly SGD
        ({"name": "sgd", "momentum": 0.0, "grad_clip_norm": 1.0}, optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))),
    ],
)
def test_each_optimizer_option_matches_optax(options, reference):
    ours = _updates(_optimizer(learning_rate=0.1, **options))
    np.testing.assert_allclose(ours, _updates(reference), rtol=1e-6)
    if options.get("grad_clip_norm"):  # the first gradient (norm 5) is scaled to norm 1
        np.testing.assert_allclose(np.linalg.norm(ours[0]), 0.1, rtol=1e-6)


def test_schedules_shape_the_learning_rate():
    def rates(**options):
        tx, params = _optimizer(name="sgd", momentum=0.0, learning_rate=1.0, **options), jnp.zeros(1)
        state, seen = tx.init(params), []
        for _ in range(10):
            update, state = tx.update(jnp.ones(1), state, params)
            seen.append(-float(update[0]))  # sgd: the update is -lr * gradient
        return np.array(seen)

    np.testing.assert_allclose(rates(schedule="constant"), 1.0)
    cosine = rates(schedule="cosine")
    assert cosine[0] == pytest.approx(1.0) and np.all(np.diff(cosine) < 0) and cosine[-1] < 0.05
    warm = rates(schedule="warmup_cosine", warmup_steps=4)
    np.testing.assert_allclose(warm[:5], [0.0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    assert np.all(np.diff(warm[4:]) < 0)


def test_bad_optimizer_names_are_one_line_errors():
    with pytest.raises(UserError, match="unknown optimizer.name 'adan'.*Did you mean 'adam'"):
        _optimizer(name="adan")
    with pytest.raises(UserError, match="unknown optimizer.schedule"):
        _optimizer(schedule="linear")


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_beta_lasso_zeroes_exactly_the_weights_below_its_threshold_and_is_sgd_plus_l1_elsewhere(momentum):
    """Each step: optax's SGD on the gradient plus l1 * sign(w); then every weight whose new
    magnitude is below beta * l1 is exactly 0 and every other one is that SGD step, bit for bit."""
    l1, beta, lr = 0.01, 5.0, 0.1  # threshold 0.05
    tx = _optimizer(name="beta_lasso", learning_rate=lr, momentum=momentum, l1=l1, beta=beta)
    reference = _optimizer(name="sgd", learning_rate=lr, momentum=momentum)  # optax's SGD (tested above)
    params = jnp.array([1.0, -0.04, 0.3, 0.0, -0.2, 0.06, 0.5, -0.5])
    ours, theirs = (tx.init(params), params), (reference.init(params), params)
    zeroed = kept = 0
    for step in range(4):
        grads = jnp.array([0.5, 0.1, 2.7, 0.0, -1.0, 0.3, 4.0, -4.5]) * (1 - 0.2 * step)
        update, state = tx.update(grads, ours[0], ours[1])
        new = optax.apply_updates(ours[1], update)
        sgd_update, sgd_state = reference.update(grads + l1 * jnp.sign(theirs[1]), theirs[0], theirs[1])
        sgd_step = np.asarray(optax.apply_updates(theirs[1], sgd_update))
        below = np.abs(sgd_step) < beta * l1
        np.testing.assert_array_equal(np.asarray(new)[below], 0.0)
        np.testing.assert_array_equal(np.asarray(new)[~below], sgd_step[~below])
        zeroed, kept = zeroed + int(below.sum()), kept + int((~below).sum())
        ours, theirs = (state, new), (sgd_state, jnp.where(below, 0.0, sgd_step))
    assert zeroed >= 4 and kept >= 4  # both branches were exercised


def test_beta_lasso_options_are_hyperparameters_in_its_state_only():
    """l1 and beta live in the optimizer state (per replica under vmap); the other optimizers'
    states keep the structure their checkpoints were written with."""
    params = jnp.zeros(3)
    lasso = _optimizer(name="beta_lasso", l1=1e-4, beta=20.0).init(params).hyperparams
    assert set(lasso) == {"learning_rate", "l1", "beta"} and float(lasso["l1"]) == pytest.approx(1e-4)
    for name in ("adam", "sgd"):
        assert set(_optimizer(name=name).init(params).hyperparams) == {"learning_rate"}
