"""``cvd reproduce --plan``: run counts that match the sweeps, a full profile sized for one
GPU, refusals naming the run, missing data said; and the gpu-smoke profile runs on CPU too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from research import plan as planning
from research.cli import main
from research.errors import UserError
from research.reproduce import EXPERIMENTS, STUDIES
from research.sweep import study_runs

ROOT = Path(__file__).resolve().parent.parent


def _studies(profile: str) -> list[tuple[str, str]]:
    return [(study, f"{EXPERIMENTS / study}.py:{profile}") for study in STUDIES]


def test_the_quick_plan_counts_the_quick_sweeps_runs_and_refuses_what_does_not_fit(capsys):
    costs = planning.plan_profile("quick", _studies("quick"))
    assert len(costs) == sum(len(study_runs(spec)) for _, spec in _studies("quick"))
    assert all(c.data_present for c in costs) and all(c.train_flops > 0 for c in costs if c.task == "train")
    largest = max(costs, key=lambda c: c.peak_bytes)
    with pytest.raises(UserError, match=f"{largest.study} run {largest.run_id} needs about"):
        planning.check_fits(costs, "a small device", largest.peak_bytes / 2, 1e12)
    with pytest.raises(UserError, match="checkpoints need about"):
        planning.check_fits(costs, "a device", 1e12, 1e6)
    assert main(["reproduce", "--profile", "quick", "--plan", "--device-memory-gb", "0.01"]) == 2
    out, err = capsys.readouterr()
    assert "| weight_sharing | 19 |" in out and len(err.strip().splitlines()) == 1 and "needs about" in err


def test_the_full_profile_fits_one_gpu_and_eight_gpu_hours():
    costs = planning.plan_profile("full", _studies("full"))
    memory = planning.GPU_TARGET[1]
    for c in costs:
        assert 12 * c.params * c.replicas <= 0.25 * memory, c.run_id  # parameters + Adam state of all replicas
        assert c.checkpoint_bytes <= 2e9 and c.peak_bytes <= memory, c.run_id
    assert planning.estimated_seconds(costs, on_gpu=True) <= 8 * 3600
    planning.check_fits(costs, "an H100-class GPU", memory, 64e9)  # the target machine's disk
    missing = {c.dataset for c in costs if not c.data_present}
    assert {"tfds:mnist", "tfds:cifar10"} <= missing  # no TFDS data prepared on this machine
    lines = planning.plan_lines(costs, "full", "GPU", memory, 64e9, True)
    assert any(line.startswith("data sets missing here: tfds:cifar10 (") for line in lines)


def test_gpu_smoke_runs_its_first_study_on_cpu_and_reports(tmp_path, monkeypatch):
    from analysis import analyze
    from research.sweep import run_sweep

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    tiny = ["data.n_per_class=5", "data.n_val=30", "data.n_test=60", "train.batch_size=25", "probes.examples=50"]
    spec = f"{EXPERIMENTS / STUDIES[0]}.py:gpu-smoke"
    index = run_sweep(spec, tmp_path / STUDIES[0], workers=2, overrides=tiny, progress=False)
    assert set(index["counts"]) == {"done"}
    result = analyze([tmp_path], tmp_path / "report", progress=False)
    assert "F1_accuracy_vs_params" in result.figures and result.report_md.exists()
