"""A replica whose update makes its weights non-finite is caught at that step (issue 29,
case 9): it is marked diverged where it happened, keeps its last finite weights, and is
evaluated with them, also when it happens on the very last step."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from research.train import spec as spec_module
from research.train import train_and_evaluate
from research.train.optim import build_optimizer
from research.train.spec import RunSpec
from tests.helpers import tiny_config

RATES = (0.01, 0.02, 0.03)  # one replica each: 0.01 trains on (that it is untouched: test_files.py); 0.02
# explodes at the first update, 0.03 at the last


def _exploding(first: int, last: int):
    """build_optimizer whose update number ``first`` is infinite for the replica of rate 0.02 and
    update number ``last`` for the one of rate 0.03: a finite loss and gradient, then
    non-finite weights (0-based update numbers; -1: never)."""

    def build(opt_config, total_steps):
        build_optimizer(opt_config, total_steps)  # its checks

        def factory(learning_rate):
            def blow_up(count):
                at = jnp.where(learning_rate > 0.025, last, jnp.where(learning_rate > 0.015, first, -1))
                return jnp.where(count == at, jnp.inf, 1.0)

            return optax.chain(optax.sgd(learning_rate), optax.scale_by_schedule(blow_up))

        return optax.inject_hyperparams(factory)(learning_rate=0.01)  # each replica's rate is set at init

    return build


def test_a_replica_is_caught_at_the_update_that_makes_its_weights_non_finite(tmp_path, monkeypatch, tally):
    config = tiny_config("mlp", epochs=2, checkpoint_every_steps=0)
    config.seeds = 1
    config.optimizer.name = "sgd"
    config.optimizer.learning_rates = RATES
    last = RunSpec.build(config).total_steps - 1
    monkeypatch.setattr(spec_module, "build_optimizer", _exploding(0, last))
    run = train_and_evaluate(config, tmp_path / "run", progress=False)
    tally("faults", 2)
    for replica, at_update in ((run["replicas"][1], 0), (run["replicas"][2], last)):
        assert replica["diverged"], "a replica whose weights went non-finite is not alive"
        assert replica["diverged_step"] == at_update, "caught at the update that went non-finite, not one later"
        for key in ("train_loss", "val_loss", "test_loss"):
            assert np.isfinite(replica[key]), f"{key}: evaluated with its last finite weights"
    assert not run["replicas"][0]["diverged"] and run["status"] == "done"
