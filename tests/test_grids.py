"""Learning-rate grids that bracket the optimum: the sweep extends a grid whose best rate
is at an edge (and not one whose best is interior), stops at the optimizer's limit,
resumes with the pieces it added, and the analysis reads a run and its pieces as one grid.

The sweep's launcher is replaced by one that writes each run's summary from a known
validation curve (peak at ``PEAK``), so the grid decisions are exact and nothing trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.load import load_results
from research.config import load_config
from research.rundir import run_config_json
from research.sweep import run_sweep
from research.sweep.extend import edge, next_piece, rate_beyond
from research.train.rate_choice import rate_scores
from research.train.spec import replica_grid
from tests.helpers import done_summary, mlp_study, write_run

GRID_STUDY = mlp_study(
    """    grids = {"edge": (1e-3, 1e-2), "interior": (3e-2, 1e-1, 3e-1), "limit": (1e-1, 3e-1)}
    return [{"optimizer.learning_rates": grids[variant]}]"""
)


def fake_launcher(peak: float, launched: list[str]):
    """A launcher that 'trains' each job by writing its summary: validation accuracy falls
    with the distance (in decades) of the rate from ``peak``; every replica of one rate equal."""

    def launch(launcher, jobs, workers, on_start, on_end, options):
        for job in jobs:
            on_start(job)
            config = load_config(job.spec, job.overrides)
            seeds, rates = replica_grid(config)
            replicas = [
                {"seed": s, "learning_rate": r, "val_accuracy_at_best": 0.9 - 0.1 * abs(math.log10(r / peak)), "diverged": False}
                for s, r in zip(seeds, rates)
            ]
            write_run(job.workdir, run_config_json(config), done_summary(replicas))
            launched.append(job.run_id)
            on_end(job, {"ok": True, "error": None})

    return launch


@pytest.fixture()
def study(tmp_path) -> Path:
    path = tmp_path / "grid_study.py"
    path.write_text(GRID_STUDY)
    return path


def sweep(study: Path, variant: str, directory: Path, peak: float, monkeypatch, **kw) -> tuple[dict, list[str]]:
    launched: list[str] = []
    monkeypatch.setattr("research.sweep.launch", fake_launcher(peak, launched))
    return run_sweep(f"{study}:{variant}", directory, progress=False, **kw), launched


def test_the_next_rate_steps_along_the_half_decade_ladder_and_stops_at_the_limit():
    assert rate_beyond(3e-2, +1, "adam") == pytest.approx(1e-1)
    assert rate_beyond(1e-3, -1, "adam") == pytest.approx(3e-4)
    assert rate_beyond(1.0, +1, "adam") is None and rate_beyond(1e-5, -1, "adam") is None
    scores = rate_scores([{"learning_rate": 0.1, "val_accuracy_at_best": 0.8}, {"learning_rate": 0.3, "diverged": True}])
    assert scores == {0.1: 0.8, 0.3: 0.0}  # a diverged replica counts against its rate
    assert edge([0.1, 0.3], scores) == -1 and next_piece([0.1, 0.3], scores, "adam") == pytest.approx(3e-2)
    assert next_piece([0.03, 0.1, 0.3], {0.03: 0.5, 0.1: 0.9, 0.3: 0.0}, "adam") is None  # interior


def test_an_edge_pick_is_extended_until_interior_and_the_analysis_reads_one_grid(study, tmp_path, monkeypatch):
    index, launched = sweep(study, "edge", tmp_path / "s", 0.1, monkeypatch)
    root = next(rid for rid, e in index["runs"].items() if "extends" not in e)
    pieces = {rid: e for rid, e in index["runs"].items() if "extends" in e}
    assert sorted(e["overrides"]["optimizer.learning_rates"][0] for e in pieces.values()) == pytest.approx([0.03, 0.1, 0.3])
    assert all(e["extends"] == root and e["status"] == "done" for e in pieces.values())
    results = load_results([tmp_path / "s"])
    assert results.runs["learning_rate"].unique().tolist() == pytest.approx([0.1])  # chosen over the whole grid
    assert not results.runs["lr_at_edge"].any() and results.runs["grid_key"].nunique() == 1
    assert results.runs["lr_grid"].iloc[0] == "0.001, 0.01, 0.03, 0.1, 0.3"
    again, relaunched = sweep(study, "edge", tmp_path / "s", 0.1, monkeypatch)  # resumed: the pieces are known and done
    assert relaunched == [] and again["runs"].keys() == index["runs"].keys()


def test_an_interior_pick_is_not_extended(study, tmp_path, monkeypatch):
    index, launched = sweep(study, "interior", tmp_path / "s", 0.1, monkeypatch)
    assert len(index["runs"]) == 1 and len(launched) == 1


def test_extension_stops_at_the_optimizers_limit_and_the_report_says_so(study, tmp_path, monkeypatch):
    index, _ = sweep(study, "limit", tmp_path / "s", 5.0, monkeypatch)
    rates = sorted(e["overrides"]["optimizer.learning_rates"][0] for e in index["runs"].values() if "extends" in e)
    assert rates == pytest.approx([1.0])  # adam's limit: nothing past it
    runs = load_results([tmp_path / "s"]).runs
    assert runs["lr_at_edge"].all() and runs["lr_at_limit"].all()


def test_no_extension_when_the_sweep_is_told_not_to(study, tmp_path, monkeypatch):
    index, launched = sweep(study, "edge", tmp_path / "s", 0.1, monkeypatch, extend_grids=False)
    assert len(index["runs"]) == 1 and len(launched) == 1
    runs = load_results([tmp_path / "s"]).runs
    assert runs["lr_at_edge"].all() and not runs["lr_at_limit"].any()


def test_a_kernel_regression_sweep_extends_nothing_and_finishes(study, tmp_path, monkeypatch):
    """Kernel regression's replica has validation numbers but no learning rate (issue 27: the
    paper profile's infinite-width sweep stopped at its end with a TypeError here)."""
    assert rate_scores([{"learning_rate": None, "val_accuracy": 0.8, "diverged": False}]) == {}

    def launch(launcher, jobs, workers, on_start, on_end, options):
        for job in jobs:
            on_start(job)
            replicas = [{"seed": None, "learning_rate": None, "val_accuracy": 0.8, "test_accuracy": 0.8, "diverged": False}]
            write_run(job.workdir, run_config_json(load_config(job.spec, job.overrides)), done_summary(replicas))
            on_end(job, {"ok": True, "error": None})

    monkeypatch.setattr("research.sweep.launch", launch)
    index = run_sweep(f"{study}:edge", tmp_path / "s", progress=False)
    assert [e["status"] for e in index["runs"].values()] == ["done"]
