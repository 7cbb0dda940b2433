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


def test_the_quick_plan_counts_the_quick_sweeps_runs_and_refuses_what_does_not_fit(capsys, monkeypatch):
    costs = planning.plan_profile("quick", _studies("quick"))
    assert len(costs) == sum(len(study_runs(spec)) for _, spec in _studies("quick"))
    assert all(c.data_present for c in costs) and all(c.train_flops > 0 for c in costs if c.task == "train")
    largest = max(costs, key=lambda c: c.peak_bytes)
    with pytest.raises(UserError, match=f"{largest.study} run {largest.run_id} needs about"):
        planning.check_fits(costs, "a small device", largest.peak_bytes / 2, 1e12)
    with pytest.raises(UserError, match="checkpoints need about"):
        planning.check_fits(costs, "a device", 1e12, 1e6)
    # The command plans the same runs: it gets the costs computed above instead of a second planning.
    asked = []
    monkeypatch.setattr(planning, "plan_profile", lambda *args: asked.append(args) or costs)
    assert main(["reproduce", "--profile", "quick", "--plan", "--device-memory-gb", "0.01"]) == 2
    assert asked == [("quick", _studies("quick"))]
    out, err = capsys.readouterr()
    weight_sharing = len(study_runs(dict(_studies("quick"))["weight_sharing"]))  # 19 with the Fashion-MNIST subset, else fewer
    assert f"| weight_sharing | {weight_sharing} |" in out and len(err.strip().splitlines()) == 1 and "needs about" in err


def test_the_full_profile_fits_one_gpu_and_eight_gpu_hours_and_names_missing_data(monkeypatch):
    # Whatever data this machine has, the plan sees every data set but CIFAR-10.
    monkeypatch.setattr(planning, "source_available", lambda name, data_dir="": name != "tfds:cifar10")
    costs = planning.plan_profile("full", _studies("full"))
    memory = planning.GPU_TARGET[1]
    for c in costs:
        assert 12 * c.params * c.replicas <= 0.25 * memory, c.run_id  # parameters + Adam state of all replicas
        assert c.checkpoint_bytes <= 2e9 and c.peak_bytes <= memory, c.run_id
    assert planning.estimated_seconds(costs, on_gpu=True) <= 8 * 3600
    planning.check_fits(costs, "an H100-class GPU", memory, 64e9)  # the target machine's disk
    missing = {c.dataset for c in costs if not c.data_present}
    assert missing == {"tfds:cifar10"} and {"tfds:mnist", "fashion_mnist", "mnist1d"} <= {c.dataset for c in costs}
    lines = planning.plan_lines(costs, "full", "GPU", memory, 64e9, True)
    cifar = sum(c.dataset == "tfds:cifar10" for c in costs)
    assert f"data sets missing here: tfds:cifar10 ({cifar} runs)" in lines
    assert any(line.startswith("| weight_sharing |") and line.endswith("| tfds:cifar10 |") for line in lines)


# The gpu-smoke profile's first study cut to one run per family on its first data set and one
# on each other data set (the smallest width): every model family and data pipeline of the
# profile, not its 19 runs.
SMOKE_SUBSET = """
from pathlib import Path

from research.config import load_study_module

STUDY = load_study_module(Path({path!r}))


def get_config(variant=None):
    return STUDY.get_config(variant)


def get_sweep(variant=None):
    runs = STUDY.get_sweep(variant)
    first = {{}}
    for run in runs:
        key = run["model.family"] if run["data.name"] == runs[0]["data.name"] else run["data.name"]
        first.setdefault(key, run)
    return list(first.values())
"""


def test_gpu_smoke_runs_its_first_study_on_cpu_and_reports(tmp_path, monkeypatch):
    from research.sweep import run_sweep
    from tests.helpers import report_only

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    study = tmp_path / f"{STUDIES[0]}.py"  # the study's name, as the report reads it
    study.write_text(SMOKE_SUBSET.format(path=f"{EXPERIMENTS / STUDIES[0]}.py"))
    subset = study_runs(f"{study}:gpu-smoke")
    whole = [overrides for _, overrides in study_runs(f"{EXPERIMENTS / STUDIES[0]}.py:gpu-smoke")]
    assert {o["model.family"] for _, o in subset} == {"conv", "locally_connected", "dense"}
    assert {o["data.name"] for _, o in subset} == {o["data.name"] for o in whole}
    assert all(overrides in whole for _, overrides in subset)
    tiny = ["data.n_per_class=5", "data.n_val=30", "data.n_test=60", "train.batch_size=25", "probes.examples=50"]
    index = run_sweep(f"{study}:gpu-smoke", tmp_path / STUDIES[0], workers=2, overrides=tiny, progress=False)
    assert set(index["counts"]) == {"done"}
    result = report_only([tmp_path / STUDIES[0]], tmp_path / "report", save=("F1_accuracy_vs_params",))
    assert "F1_accuracy_vs_params" in result.figures and result.report_md.exists()
