"""beta-LASSO in training (C9): replicas with their own rate and l1 in one program, sparsity
that rises on a tiny problem, and the sparsity probe's counts and weight maps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from research.models import get_model
from research.probes.sparsity import MAP_UNITS, first_layer_maps, nonzero_fractions
from research.train.loop import device_data
from research.train.spec import RunSpec
from research.train.trained import TrainedRun
from tests.helpers import tiny_config

RATES = (0.05, 0.1)
L1 = (0.0, 1e-3, 3e-4, 3e-3)  # per replica: (seed 0, rate 0.05), (seed 1, 0.05), (seed 0, 0.1), (seed 1, 0.1)


def _config(seeds: int, rates=RATES, seed: int = 0):
    c = tiny_config("cnn", strategy="scan")
    c.model.family = "dense"
    c.optimizer.name = "beta_lasso"
    c.optimizer.l1 = 1e-3
    c.optimizer.beta = 20.0
    c.optimizer.learning_rates = tuple(rates)
    c.seed, c.seeds = seed, seeds
    return c


def _train(spec: RunSpec, l1s, epochs: int) -> tuple[dict, list[np.ndarray]]:
    """Every replica of ``spec`` trained ``epochs`` epochs with per-replica ``l1s``; the state and
    the first layer's non-zero share per replica after each epoch."""
    state = spec.init_state()
    state["opt_state"].hyperparams["l1"] = jnp.asarray(l1s, jnp.float32)
    engine, (x, y, _) = spec.engines["initial"], device_data(spec)
    nonzero = []
    for epoch in range(epochs):
        perms = engine.permutations(state, epoch, spec.data.splits["train"])
        state = engine.run_steps(state, x, y, perms, 0, spec.steps_per_epoch, "scan")
        nonzero.append(nonzero_fractions(state["params"])["nonzero_first_layer"])
    return state, nonzero


def test_replicas_with_their_own_rate_and_l1_train_in_one_program_as_each_would_alone():
    together = RunSpec.build(_config(seeds=2))
    state, _ = _train(together, L1, epochs=1)
    assert together.engines["initial"].compiled_programs() == {"scan": 1}
    for r in (1, 3):  # two replicas that differ in seed, rate and l1 (each one alone: one compile each)
        alone_spec = RunSpec.build(_config(seeds=1, rates=(together.learning_rates[r],), seed=together.seeds[r]))
        alone, _ = _train(alone_spec, [L1[r]], epochs=1)
        for ours, theirs in zip(jax.tree.leaves(state["params"]), jax.tree.leaves(alone["params"])):
            np.testing.assert_allclose(np.asarray(ours[r]), np.asarray(theirs[0]), rtol=1e-4, atol=1e-6)
    nonzero = nonzero_fractions(state["params"])["nonzero_all"]
    assert nonzero[0] == 1.0  # l1 = 0: plain SGD, no weight is zeroed
    assert nonzero[1] < 1.0 and nonzero[3] < nonzero[2] < 1.0  # more l1 (at one rate): sparser


def test_sparsity_rises_over_a_short_run():
    spec = RunSpec.build(_config(seeds=1, rates=(0.1,)))
    _, nonzero = _train(spec, [1e-3], epochs=4)
    nonzero = np.array(nonzero)[:, 0]
    assert nonzero[0] < 1.0 and nonzero[-1] < nonzero[0], nonzero


@pytest.mark.parametrize("family", ["dense", "conv"])
def test_weight_maps_are_the_first_layers_weights_into_the_central_units(family):
    """Dense: a unit's map is its column of the kernel; conv: the kernel, placed on its receptive
    field (zero elsewhere). Zeros counted per replica."""
    models = [
        get_model("lattice", (12, 1), 3, nnx.Rngs(s), family=family, widths=(6, 4), kernel_sizes=3, strides=1) for s in (0, 1)
    ]
    run = TrainedRun.from_models(models, np.zeros((2, 12, 1), np.float32), np.zeros(2, np.int32))
    maps = first_layer_maps(run)
    assert maps.shape == (2, MAP_UNITS, 12)
    kernel = np.asarray(nnx.to_pure_dict(run.params)["layers"][0]["kernel"])
    if family == "dense":  # (R, inputs, 12 positions x 6 channels), output position 6
        np.testing.assert_allclose(maps, np.abs(kernel.reshape(2, 12, 12, 6)[:, :, 6, :MAP_UNITS]).transpose(0, 2, 1), atol=1e-6)
    else:  # (R, 3, 1, 6): the centre unit sees inputs 5, 6, 7
        np.testing.assert_allclose(maps[..., 5:8], np.abs(kernel[:, :, 0, :MAP_UNITS]).transpose(0, 2, 1), atol=1e-6)
        assert not maps[..., :5].any() and not maps[..., 8:].any()
    params = jax.tree.map(
        lambda a: a.at[0].set(0.0) if a.ndim > 2 else a, run.params
    )  # replica 0: every kernel of rank > 1 zeroed
    fractions = nonzero_fractions(params)
    assert fractions["nonzero_first_layer"][0] == 0.0 and fractions["nonzero_first_layer"][1] == 1.0
