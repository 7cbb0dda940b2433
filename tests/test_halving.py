"""Successive halving over a run's learning rates (research.train.rate_choice): which rates it
keeps, that the dropped replicas stop and keep their numbers, and that a run killed after the
decision resumes to the same summary and metrics."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from research import plan as planning
from research.config import apply_override
from research.data import dataset_shape
from research.errors import UserError
from research.train import engine as engine_module
from research.train import strip_timing, train_and_evaluate
from research.train.rate_choice import better_half, halving_epoch, rate_scores
from research.train.spec import RunSpec
from tests.helpers import read_lines, tiny_config

RATES = (1e-3, 3e-3, 1e-2, 1e-1)


def halving_config(rates=RATES, **train):
    c = tiny_config("mlp", **{"epochs": 6, "halve_rates_at": 0.3, **train})
    c.optimizer.learning_rates = rates
    return c


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("halved")
    calls = {"n": 0}
    original = engine_module.Engine.run_steps

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    engine_module.Engine.run_steps = counting
    try:
        summary = train_and_evaluate(halving_config(), workdir, progress=False)
    finally:
        engine_module.Engine.run_steps = original
    return workdir, summary, calls["n"]


def test_better_half_ranks_by_mean_validation_with_diverged_as_zero():
    rows = [
        {"learning_rate": 0.1, "val_accuracy_at_best": 0.9, "diverged": True},  # a diverged seed: 0
        {"learning_rate": 0.1, "val_accuracy_at_best": 0.9},
        {"learning_rate": 0.01, "val_accuracy_at_best": 0.6},
        {"learning_rate": 0.01, "val_accuracy_at_best": 0.6},
        {"learning_rate": 0.003, "val_accuracy_at_best": 0.5},
        {"learning_rate": 0.003, "val_accuracy_at_best": 0.7},
        {"learning_rate": 0.001, "val_accuracy_at_best": 0.2},
        {"learning_rate": 0.001, "val_accuracy_at_best": 0.2},
    ]
    assert better_half(rate_scores(rows)) == [0.003, 0.01]  # tie at 0.6: the smaller rate first
    assert better_half({0.1: 0.5, 0.01: 0.4, 0.001: 0.3}) == [0.01, 0.1]  # ceil(3 / 2) rates
    assert halving_epoch(0.3, 6) == 2 and halving_epoch(0.0, 6) is None


def test_halving_keeps_the_better_half_by_mean_best_validation(halved):
    workdir, summary, _ = halved
    decided = summary["rate_halving"]["at_epoch"]
    assert decided == halving_epoch(0.3, 6)
    val = [r for r in read_lines(workdir / "metrics.jsonl") if r["split"] == "val"]
    best = {}
    for record in val:
        if record["epoch"] <= decided:
            best[record["replica"]] = max(best.get(record["replica"], 0.0), record["accuracy"])
    replicas = summary["replicas"]
    rows = [{"learning_rate": replicas[r]["learning_rate"], "val_accuracy_at_best": v} for r, v in best.items()]
    assert summary["rate_halving"]["kept_learning_rates"] == better_half(rate_scores(rows))
    kept = set(summary["rate_halving"]["kept_learning_rates"])
    assert len(replicas) == 8 and summary["epochs"] == 6
    for r, replica in enumerate(replicas):
        epochs = [rec["epoch"] for rec in val if rec["replica"] == r]
        if replica["learning_rate"] in kept:
            assert "dropped_at_epoch" not in replica and max(epochs) == 6
        else:
            assert replica["dropped_at_epoch"] == decided and max(epochs) == decided
            assert replica["best_val_epoch"] <= decided


def test_a_run_killed_after_halving_resumes_to_the_same_summary_and_metrics(halved, tmp_path, monkeypatch):
    reference_dir, reference, calls = halved
    original = engine_module.Engine.run_steps
    seen = {"n": 0}

    def crash_late(self, *args, **kwargs):
        seen["n"] += 1
        if seen["n"] == calls - 2:  # after the decision (epoch 2 of 6) and a checkpoint after it
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(engine_module.Engine, "run_steps", crash_late)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_and_evaluate(halving_config(), tmp_path, progress=False)
    monkeypatch.setattr(engine_module.Engine, "run_steps", original)
    resumed = train_and_evaluate(halving_config(), tmp_path, progress=False)
    assert strip_timing(resumed) == strip_timing(reference)
    assert read_lines(tmp_path / "metrics.jsonl") == read_lines(reference_dir / "metrics.jsonl")


def test_kept_replicas_train_as_a_run_of_only_their_rates(halved, tmp_path):
    _, summary, _ = halved
    kept = tuple(summary["rate_halving"]["kept_learning_rates"])
    alone = train_and_evaluate(halving_config(rates=kept, halve_rates_at=0.0), tmp_path, progress=False)
    halved_kept = [r for r in summary["replicas"] if r["learning_rate"] in kept]
    for mine, theirs in zip(halved_kept, alone["replicas"]):
        assert mine["learning_rate"] == theirs["learning_rate"] and mine["seed"] == theirs["seed"]
        np.testing.assert_allclose(mine["test_loss"], theirs["test_loss"], rtol=1e-5)
        assert mine["test_accuracy_at_best_val"] == pytest.approx(theirs["test_accuracy_at_best_val"], abs=1e-6)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("train.halve_rates_at", "1.0", r"train.halve_rates_at must be a fraction of the epochs in \[0, 1\)"),
        ("train.embed_at_epoch", "1", "cannot be combined with train.embed_at_epoch"),
        ("data.n_val", "0", "needs a validation split"),
    ],
)
def test_halving_refuses_what_it_cannot_do_in_one_line(key, value, message):
    config = halving_config()
    apply_override(config, key, value)
    with pytest.raises(UserError, match=message):
        train_and_evaluate(config, "/nonexistent/never-written", progress=False)


def test_the_summary_of_a_halved_run_is_json(halved):
    workdir, summary, _ = halved
    assert json.loads((workdir / "summary.json").read_text())["rate_halving"] == summary["rate_halving"]


def test_the_plan_counts_the_halved_replica_epochs_and_each_distinct_training_once():
    config = halving_config(epochs=8)  # 4 rates x 2 seeds; the first evaluation at or past epoch 3 halves
    spec = RunSpec.build(config, dataset_shape(config.data))
    assert planning.halved_replica_epochs(spec, 8) == 8 * 3 + 4 * 5
    plain = halving_config(epochs=8, halve_rates_at=0.0)
    assert planning.halved_replica_epochs(RunSpec.build(plain, dataset_shape(plain.data)), 8) == 8 * 8
    sparse = halving_config(epochs=10, eval_every_epochs=3)  # due from epoch 3, evaluated at 3, 6, 9, 10
    assert planning.halved_replica_epochs(RunSpec.build(sparse, dataset_shape(sparse.data)), 10) == 8 * 3 + 4 * 7
    late = halving_config(epochs=10, halve_rates_at=0.4, eval_every_epochs=3)  # due from 4: decided at 6
    assert planning.halved_replica_epochs(RunSpec.build(late, dataset_shape(late.data)), 10) == 8 * 6 + 4 * 4
    cost = planning.run_cost("study_a", "run", config)
    shared = dataclasses.replace(cost, study="study_b")  # another study's run that trains the same
    assert planning.estimated_seconds([cost, shared], on_gpu=False) == planning.estimated_seconds([cost], on_gpu=False)
    other = planning.run_cost("study_b", "run", plain)
    assert other.train_flops > cost.train_flops and other.training != cost.training


def test_the_plan_counts_a_grid_piece_as_the_run_at_one_rate_and_every_study_in_one_queue():
    config = halving_config(epochs=8)  # 4 rates x 2 seeds
    cost = planning.run_cost("study_a", "run", config)
    one_rate = halving_config(epochs=8)
    one_rate.optimizer.learning_rates = (max(config.optimizer.learning_rates),)
    alone = planning.run_cost("study_a", "run+lr=x", one_rate)
    assert (cost.piece_flops, cost.piece_steps) == (alone.train_flops, alone.steps) and alone.piece_steps == 0
    plain = planning.estimated_seconds([cost], on_gpu=False)
    extended = planning.estimated_seconds([cost], on_gpu=False, extend_grids=True)
    assert extended == pytest.approx(plain + planning.EXTENSION_SHARE * planning.run_seconds(cost, False, piece=True))
    # Two runs on two workers take as long as the longer, in one study or two (one queue); a
    # run that times itself follows them, alone.
    twin = dataclasses.replace(cost, run_id="twin", training="twin")
    assert planning.estimated_seconds([cost, twin], on_gpu=False, workers=2) == pytest.approx(plain)
    other_study = dataclasses.replace(twin, study="study_b")
    assert planning.estimated_seconds([cost, other_study], on_gpu=False, workers=2) == pytest.approx(plain)
    timed = dataclasses.replace(twin, study="compute", training="timed", timed=True)
    assert planning.estimated_seconds([cost, twin, timed], on_gpu=False, workers=2) == pytest.approx(2 * plain)
    shared = dataclasses.replace(cost, study="compute", timed=True)  # trained in the queue; its probes not modelled
    assert planning.estimated_seconds([shared, cost, twin], on_gpu=False, workers=2) == pytest.approx(plain)
