"""Sweeps: identical results from both launchers, resume after a kill, failure isolation, lock, dry runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from research.errors import UserError
from research.sweep import invalid_runs, run_sweep, study_runs, sweep_lock
from research.sweep.jobs import build_config
from research.train import strip_timing
from tests.helpers import TINY_STUDY

ROOT = Path(__file__).resolve().parent.parent
STUDIES = sorted(
    p.stem for p in (ROOT / "experiments").glob("*.py") if p.stem not in ("__init__", "common", "mnist1d", "fashion_mnist")
)


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
def test_every_study_lists_its_quick_paper_and_full_runs(study_name, tmp_path):
    for variant in ("quick", "paper", "full"):
        runs = study_runs(str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}")
        assert len(runs) >= 3
        index = run_sweep(str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}", tmp_path, dry_run=True)
        assert all(entry["status"] == "pending" for entry in index["runs"].values())
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"
    # Every quick and paper run's data set and model build (their data need no download).
    for variant in ("quick", "paper"):
        spec = str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}"
        assert invalid_runs({rid: build_config(spec, overrides) for rid, overrides in study_runs(spec)}) == {}
    assert len(STUDIES) == 10


def test_sweep_values_keep_their_own_types_and_study_files_set_any_documented_type(tmp_path):
    """Mixed-type axes (int or string padding, int or tuple kernel sizes) build as written."""
    study = tmp_path / "mixed.py"
    study.write_text(
        "from experiments.common import lattice_config\n"
        "from research.sweep import axis, product\n"
        "def get_config(variant='quick'):\n"
        "    c = lattice_config('quick')\n"
        "    c.model.kernel_sizes = 3  # an int for every layer, although the base config has a tuple\n"
        "    return c\n"
        "def get_sweep(variant='quick'):\n"
        "    return product(axis('model.padding', ['SAME', 2]), axis('model.kernel_sizes', [3, (5, 3, 3)]))\n"
    )
    runs = study_runs(f"{study}:quick")
    configs = {rid: build_config(f"{study}:quick", overrides) for rid, overrides in runs}
    assert sorted(repr(c.model.padding) for c in configs.values()) == ["'SAME'", "'SAME'", "2", "2"]
    assert {repr(c.model.kernel_sizes) for c in configs.values()} == {"3", "(5, 3, 3)"}
    assert invalid_runs(configs) == {}


def test_command_line_overrides_apply_to_every_run_of_a_sweep(study, tmp_path, capsys):
    from research.cli import main

    workdir = tmp_path / "sweep"
    argv = ["sweep", "--config", f"{study}:base", "--config.train.epochs=1", "--workdir", str(workdir), "--no-progress"]
    assert main([*argv, "--print-config"]) == 0
    assert '"epochs": 1' in capsys.readouterr().out and not workdir.exists()
    assert main(argv) == 0
    index = json.loads((workdir / "sweep.json").read_text())
    assert index["overrides"] == {"train.epochs": "1"} and set(index["counts"]) == {"done"}
    epochs = {
        json.loads((workdir / entry["workdir"] / "config.json").read_text())["train"]["epochs"]
        for entry in index["runs"].values()
    }
    assert epochs == {1}
