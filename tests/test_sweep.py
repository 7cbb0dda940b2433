"""Sweeps: identical results from both launchers, resume after a kill, failure isolation, lock, dry runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.errors import UserError
from research.sweep import invalid_runs, run_sweep, study_runs, sweep_lock
from research.train import strip_timing

ROOT = Path(__file__).resolve().parent.parent
STUDIES = sorted(
    p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem not in ("__init__", "common", "mnist1d", "fashion_mnist")
)

TINY_STUDY = """
from research.config import default_config
from research.sweep import axis, product


def get_config(variant=None):
    c = default_config()
    c.seeds = 2
    c.model.name = "lattice"
    c.model.widths = (2, 2)
    c.model.strides = 2
    c.data.n_per_class = 5
    c.train.batch_size = 10
    c.train.epochs = 2
    c.optimizer.learning_rate = 1e-2
    return c


def get_sweep(variant=None):
    runs = product(axis("model.family", ["conv", "locally_connected", "dense"]), axis("model.kernel_sizes", [3, 5]),
                   axis("optimizer.learning_rate", [1e-2, 3e-3]))
    if variant == "faulty":
        runs = runs[:1] + [
            {"model.family": "conv", "model.kernel_sizes": 99, "model.padding": "VALID"},  # invalid: kernel > input
            {"train.batch_size": 10_000},  # raises when it runs: batch larger than the training set
            {"optimizer.name": "sgd", "optimizer.learning_rate": 1e30},  # every replica diverges
        ]
    return runs
"""


@pytest.fixture()
def study(tmp_path) -> str:
    path = tmp_path / "tiny_study.py"
    path.write_text(TINY_STUDY)
    return str(path)


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _summaries(directory: Path) -> dict:
    return {p.parent.name: strip_timing(json.loads(p.read_text())) for p in sorted((directory / "runs").glob("*/summary.json"))}


def test_local_and_ray_launchers_give_identical_summaries(study, tmp_path):
    ray = pytest.importorskip("ray")
    local = run_sweep(f"{study}:base", tmp_path / "local", launcher="local", workers=2, progress=False)
    assert len(local["runs"]) == 12 and local["counts"] == {"done": 12}
    try:
        remote = run_sweep(f"{study}:base", tmp_path / "ray", launcher="ray", workers=2, progress=False)
    finally:
        ray.shutdown()
    assert remote["counts"] == {"done": 12}
    local_summaries, ray_summaries = _summaries(tmp_path / "local"), _summaries(tmp_path / "ray")
    assert len(local_summaries) == 12 and local_summaries == ray_summaries
    # The same command again trains nothing.
    again = run_sweep(f"{study}:base", tmp_path / "local", workers=2, progress=False)
    assert all(entry["attempts"] == 1 for entry in again["runs"].values())


def test_killed_sweep_completes_only_what_was_missing(study, tmp_path):
    cmd = [sys.executable, "-m", "research.cli", "sweep", "--config", f"{study}:base", "--workers", "1", "--no-progress"]
    reference = tmp_path / "reference"
    subprocess.run([*cmd[:-1], "--workdir", str(reference)], check=True, capture_output=True, cwd=ROOT)
    run = tmp_path / "run"
    proc = subprocess.Popen([*cmd, "--workdir", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(run.glob("runs/*/summary.json"))) < 4:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished_before = {p.parent.name: p.stat().st_mtime_ns for p in run.glob("runs/*/summary.json")}
    assert 4 <= len(finished_before) < 12
    subprocess.run([*cmd, "--workdir", str(run)], check=True, capture_output=True, cwd=ROOT)
    assert _summaries(run) == _summaries(reference)
    # Runs finished before the kill were not run again.
    assert all((run / "runs" / rid / "summary.json").stat().st_mtime_ns == mtime for rid, mtime in finished_before.items())
    index = json.loads((run / "sweep.json").read_text())
    assert index["counts"] == {"done": 12}


def test_failed_and_diverged_runs_are_recorded_and_do_not_stop_the_others(study, tmp_path):
    index = run_sweep(f"{study}:faulty", tmp_path, workers=1, retries=1, progress=False)
    statuses = {rid: entry["status"] for rid, entry in index["runs"].items()}
    assert sorted(statuses.values()) == ["diverged", "done", "failed", "invalid"]
    failed = next(e for e in index["runs"].values() if e["status"] == "failed")
    assert "larger than the training set" in failed["error"] and failed["attempts"] == 2  # tried, then retried once
    invalid = next(e for e in index["runs"].values() if e["status"] == "invalid")
    assert "larger than the padded input" in invalid["error"] and invalid["attempts"] == 0  # found before launching
    on_disk = json.loads((tmp_path / "sweep.json").read_text())
    assert on_disk["counts"] == {"diverged": 1, "done": 1, "failed": 1, "invalid": 1}
    diverged = next(rid for rid, s in statuses.items() if s == "diverged")
    summary = json.loads((tmp_path / "runs" / diverged / "summary.json").read_text())
    assert all(r["diverged"] and r["diverged_step"] is not None for r in summary["replicas"])


def test_a_second_sweep_on_the_same_directory_is_refused(study, tmp_path):
    with sweep_lock(tmp_path):
        with pytest.raises(UserError, match="another cvd sweep"):
            run_sweep(f"{study}:base", tmp_path, progress=False)


@pytest.mark.parametrize("study_name", STUDIES)
def test_every_study_lists_its_quick_and_full_runs(study_name, tmp_path):
    for variant in ("quick", "full"):
        runs = study_runs(str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}")
        assert len(runs) >= 5
        index = run_sweep(str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}", tmp_path, dry_run=True)
        assert all(entry["status"] == "pending" for entry in index["runs"].values())
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"
    # Every quick run's data set and model build (the quick data needs no download).
    assert (
        invalid_runs(
            str(ROOT / "experiments" / f"{study_name}.py") + ":quick",
            study_runs(str(ROOT / "experiments" / f"{study_name}.py") + ":quick"),
        )
        == {}
    )
    assert len(STUDIES) == 8
