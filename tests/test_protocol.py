"""The training protocol. Early stopping on validation: each replica reports its best-validation epoch and the test
accuracy there; a run stops once every replica has gone ``train.patience`` epochs without
improving; the logged learning rate is the one the schedule applied; dead optimizer options
are refused; the sample-efficiency study trains every size for its step budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.report import unconverged
from experiments.common import BUDGETS
from research.config import config_from_json, config_to_json, default_config, load_config
from research.data import SOURCE_SHAPES, dataset_shape
from research.errors import UserError
from research.rundir import RunDir
from research.sweep import study_runs
from research.train import train_and_evaluate
from research.train.early_stopping import BestValidation
from research.train.optim import applied_learning_rates
from research.validation import validate
from tests.helpers import tiny_config


def test_best_validation_keeps_the_peak_and_the_test_accuracy_there():
    best = BestValidation(replicas=2, patience=0)
    curve = [([0.5, 0.6], [0.50, 0.61]), ([0.7, 0.6], [0.72, 0.65]), ([0.6, 0.8], [0.90, 0.79]), ([0.65, 0.7], [0.1, 0.1])]
    for epoch, (val, test) in enumerate(curve, 1):
        best.update(epoch, val, test, [True, True])
    assert best.replica_fields(0) == {"best_val_epoch": 2, "val_accuracy_at_best": 0.7, "test_accuracy_at_best_val": 0.72}
    assert best.replica_fields(1) == {"best_val_epoch": 3, "val_accuracy_at_best": 0.8, "test_accuracy_at_best_val": 0.79}
    assert not best.all_done()  # no patience: never stops


def test_a_replica_past_its_patience_is_frozen_and_the_run_stops_when_all_are():
    best = BestValidation(replicas=2, patience=2)
    best.update(1, [0.5, 0.5], [0.5, 0.5], [True, True])
    best.update(2, [0.4, 0.6], [0.4, 0.6], [True, True])
    best.update(3, [0.4, 0.7], [0.4, 0.7], [True, True])  # replica 0: two epochs without improving
    assert best.done.tolist() == [True, False] and not best.all_done()
    best.update(4, [0.9, 0.7], [0.9, 0.7], [True, True])  # too late for replica 0: frozen
    assert best.replica_fields(0)["best_val_epoch"] == 1
    best.update(5, [0.9, 0.7], [0.9, 0.7], [True, True])
    assert best.all_done() and best.replica_fields(1)["best_val_epoch"] == 3


def test_a_diverged_replica_is_done_with_its_best_before_divergence():
    best = BestValidation(replicas=2, patience=5)
    best.update(1, [0.5, 0.5], [0.5, 0.5], [True, True])
    best.update(2, [0.1, 0.9], [0.1, 0.9], [False, True])
    assert best.done.tolist() == [True, False] and best.replica_fields(0)["best_val_epoch"] == 1


def test_replay_from_metric_records_equals_the_live_updates():
    live, replayed = BestValidation(2, 2), BestValidation(2, 2)
    records = []
    for epoch, val in enumerate([[0.5, 0.4], [0.6, 0.4], [0.55, 0.45]], 1):
        test = [v + 0.01 for v in val]
        live.update(epoch, val, test, [True, True])
        for r in range(2):
            records += [
                {"split": "val", "epoch": epoch, "replica": r, "accuracy": val[r], "alive": True},
                {"split": "test", "epoch": epoch, "replica": r, "accuracy": test[r], "alive": True},
                {"split": "train", "replica": r, "loss": 1.0},
            ]
    replayed.replay(records)
    for r in range(2):
        assert replayed.replica_fields(r) == live.replica_fields(r)
    np.testing.assert_array_equal(replayed.done, live.done)


def test_a_run_whose_validation_stops_improving_stops_early_and_reports_its_best_epoch(tmp_path):
    config = tiny_config("mlp", epochs=12, patience=2, checkpoint_every_steps=0)
    config.optimizer.learning_rate = 1e-9  # validation accuracy cannot improve after the first epoch
    summary = train_and_evaluate(config, tmp_path / "run", progress=False)
    assert summary["stopped_early"] and summary["epochs"] == 3 and summary["max_epochs"] == 12
    records = RunDir(tmp_path / "run").metrics()
    for r, replica in enumerate(summary["replicas"]):
        val = {rec["epoch"]: rec["accuracy"] for rec in records if rec["split"] == "val" and rec["replica"] == r}
        test = {rec["epoch"]: rec["accuracy"] for rec in records if rec["split"] == "test" and rec["replica"] == r}
        assert max(val) == 3
        first_best = min(e for e, v in val.items() if v == max(val.values()))
        assert replica["best_val_epoch"] == first_best
        assert replica["test_accuracy_at_best_val"] == test[first_best]


def test_patience_needs_a_validation_split():
    config = tiny_config("mlp", patience=3)
    config.data.n_val = 0
    with pytest.raises(UserError, match="needs a validation split"):
        validate(config)


def test_the_logged_learning_rate_is_the_scheduled_one(tmp_path):
    config = tiny_config("mlp", epochs=2, log_every_steps=2)
    config.optimizer.schedule = "cosine"
    summary = train_and_evaluate(config, tmp_path / "run", progress=False)
    total = summary["steps"]
    for record in RunDir(tmp_path / "run").metrics():
        if record["split"] == "train":
            expected = applied_learning_rates(config.optimizer, total, [1e-2], record["step"])[0]
            assert record["learning_rate"] == pytest.approx(float(expected), rel=1e-6)
            assert record["step"] < total or record["learning_rate"] < 1e-2 * 0.1  # annealed by the end


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "adam", "weight_decay": 1e-4},
        {"name": "sgd", "weight_decay": 1e-4},
        {"name": "adam", "momentum": 0.5},
        {"name": "adamw", "momentum": 0.5},
        {"name": "sgd", "b1": 0.5},
        {"name": "sgd", "b2": 0.9},
        {"name": "adam", "l1": 1e-4},
        {"name": "sgd", "l1": 1e-4},
        {"name": "sgd", "beta": 10.0},
        {"name": "beta_lasso", "b1": 0.5},
        {"schedule": "cosine", "warmup_steps": 10},
    ],
)
def test_an_option_the_optimizer_ignores_is_refused(changes):
    config = default_config()
    for key, value in changes.items():
        config.optimizer[key] = value
    with pytest.raises(UserError, match="has no effect"):
        validate(config)


def test_a_run_written_with_adams_dead_weight_decay_reads_back_as_the_same_run():
    stored = config_to_json(default_config())
    stored["optimizer"]["weight_decay"] = 1e-4  # what configs carried before it was refused
    config = config_from_json(stored)
    validate(config)
    assert config.optimizer.weight_decay == 0.0


@pytest.mark.parametrize("variant", ["quick", "paper"])
def test_sample_efficiency_trains_every_size_at_least_its_budget_and_the_largest_on_the_whole_split(variant):
    spec = f"{Path(__file__).resolve().parent.parent / 'experiments/sample_efficiency.py'}:{variant}"
    budget = BUDGETS[variant].sample_efficiency_steps
    for _, overrides in study_runs(spec):
        config = load_config(spec, overrides)
        shape = dataset_shape(config.data)
        steps_per_epoch = shape.splits["train"] // config.train.batch_size
        steps = steps_per_epoch * config.train.epochs
        assert budget <= steps < budget + steps_per_epoch, (overrides, steps)
        if config.data.n_per_class == 0:  # 100%: every example the validation split left
            source = SOURCE_SHAPES[config.data.name]
            assert shape.splits["train"] == source.n_train - shape.splits["val"]


def test_the_paper_trains_local_mnist1d_nets_on_a_grid_a_half_decade_higher_and_others_as_before():
    """Paper: every MNIST-1D conv and locally connected net on the default grid chose its top
    rate, so their grid moves up (experiments/common.py, mnist1d_local_rates); dense, the
    full-kernel conv, runs with a grid of their own and every quick run keep theirs."""
    experiments = Path(__file__).resolve().parent.parent / "experiments"
    paper = BUDGETS["paper"]
    seen = set()
    for study in ("weight_sharing", "locality", "data_scaling"):
        for variant in ("quick", "paper"):
            spec = f"{experiments / study}.py:{variant}"
            for _, overrides in study_runs(spec):
                config = load_config(spec, overrides)
                rates = tuple(config.optimizer.learning_rates)
                local = config.model.name == "lattice" and config.model.family in ("conv", "locally_connected")
                if variant == "paper" and local and config.data.name.startswith("mnist1d") and rates != (1e-3, 3e-3, 1e-2):
                    assert rates == paper.mnist1d_local_rates, overrides  # the wide runs keep their own 3
                else:
                    assert rates != paper.mnist1d_local_rates, overrides
                seen.add((variant, local, rates == paper.mnist1d_local_rates))
    assert ("paper", True, True) in seen and ("paper", False, False) in seen and ("quick", True, False) in seen


def test_a_run_is_flagged_unconverged_only_past_the_margin_and_the_splits_noise():
    runs = pd.DataFrame(
        {
            "run_key": ["small_split", "large_split", "stopped", "flat"],
            "val_accuracy_gain_last_fifth": [0.03, 0.03, 0.10, 0.001],
            "val_accuracy": [0.5, 0.5, 0.5, 0.5],
            "val_examples": [400, 40_000, 400, 400],
            "stopped_early": [False, False, True, False],
        }
    )
    flags = unconverged(runs)
    # 400 examples at 50%: two standard errors are 5 points, so a 3-point rise is noise;
    # on 40,000 they are 0.5 points and the same rise is real.
    assert flags.to_dict() == {"flat": False, "large_split": True, "small_split": False, "stopped": False}
