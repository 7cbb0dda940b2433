"""Sweeps: identical results from both launchers, resume after a kill, failure isolation, lock, dry runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from research.config import load_config as build_config
from research.data import dataset_shape
from research.errors import UserError
from research.sweep import axis, invalid_runs, product, run_sweep, study_runs, sweep_lock
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


@pytest.fixture(scope="module")
def local_few(tmp_path_factory) -> Path:
    """The tiny study's 4-run variant swept by the local launcher: the reference for the others."""
    directory = tmp_path_factory.mktemp("local")
    study = directory / "tiny_study.py"
    study.write_text(TINY_STUDY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        index = run_sweep(f"{study}:few", directory / "sweep", workers=2, progress=False)
    assert index["counts"] == {"done": 4}
    return directory


@pytest.fixture()
def ray_cluster(monkeypatch):
    """A real two-node Ray cluster on this machine: `ray start --head` and a second node,
    one CPU each. Yields the head's address."""
    pytest.importorskip("ray")
    import shutil
    import socket
    import subprocess

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    ray_cli = shutil.which("ray") or "ray"
    subprocess.run(
        [ray_cli, "start", "--head", f"--port={port}", "--include-dashboard=false", *common], check=True, capture_output=True
    )
    try:
        subprocess.run([ray_cli, "start", f"--address=127.0.0.1:{port}", *common], check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        ray.shutdown()
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True)


def test_a_two_node_ray_cluster_runs_a_sweep_on_both_nodes_identical_to_the_local_launcher(local_few, ray_cluster, tmp_path):
    from research.sweep import LaunchOptions

    study = local_few / "tiny_study.py"
    index = run_sweep(
        f"{study}:few",
        tmp_path,
        launcher="ray",
        options=LaunchOptions(ray_address=ray_cluster),
        progress=False,
        cache_dir=local_few / "sweep" / ".jax_cache",  # the local sweep's programs, as cvd reproduce shares them
    )
    assert index["counts"] == {"done": 4}  # more runs than nodes: both get work even if one frees up first
    assert len({entry["node"] for entry in index["runs"].values()}) == 2, "in flight: the cluster's 2 CPUs, one per node"
    assert _summaries(tmp_path) == _summaries(local_few / "sweep")
    assert all((tmp_path / "logs" / f"{rid}.log").stat().st_size > 0 for rid in index["runs"])


def test_the_slurm_launcher_through_submitit_local_executor_matches_the_local_launcher(local_few, tmp_path):
    pytest.importorskip("submitit")
    from research.sweep import LaunchOptions

    study = local_few / "tiny_study.py"
    index = run_sweep(
        f"{study}:pair",
        tmp_path,
        launcher="slurm",
        workers=2,
        options=LaunchOptions(slurm_cluster="local"),
        progress=False,
        cache_dir=local_few / "sweep" / ".jax_cache",  # the local sweep's programs, as cvd reproduce shares them
    )
    assert index["counts"] == {"done": 2}  # the "pair" variant: 2 of the reference's 4 runs
    by_hash = lambda summaries: {rid.rsplit("-", 1)[1]: s for rid, s in summaries.items()}  # ids name what varies
    reference, slurm = by_hash(_summaries(local_few / "sweep")), by_hash(_summaries(tmp_path))
    assert len(slurm) == 2 and slurm == {h: reference[h] for h in slurm}
    assert (tmp_path / "slurm").is_dir() and all((tmp_path / "logs" / f"{rid}.log").exists() for rid in index["runs"])


def test_a_missing_optional_launcher_is_one_line_and_writes_nothing(study, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(UserError, match=r"pip install -e '\.\[ray\]'"):
        run_sweep(f"{study}:base", tmp_path / "sweep", launcher="ray", progress=False)
    assert not (tmp_path / "sweep").exists()


def test_local_workers_are_pinned_one_gpu_each_without_preallocation(monkeypatch):
    from research.sweep.launchers import default_workers, visible_gpus, worker_env

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    assert visible_gpus() == ["2", "5"] and default_workers() == 2
    envs = [worker_env(slot, visible_gpus(), workers=3) for slot in range(3)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["2", "5", "2"]  # more workers than GPUs: round robin
    assert worker_env(0, ["0", "1", "2", "3"], workers=2)["CUDA_VISIBLE_DEVICES"] == "0,2"  # fewer: none idle
    assert worker_env(1, ["0", "1", "2", "3"], workers=2)["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" for e in envs)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert visible_gpus() == [] and default_workers() == 2  # on CPU: one compiles while the other trains
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert default_workers() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.setattr("glob.glob", lambda pattern: ["/dev/accel0"] if pattern.startswith("/dev/accel") else [])
    assert default_workers() == 1  # a TPU host: one process owns every chip


def test_failed_and_diverged_runs_are_recorded_and_do_not_stop_the_others(study, tmp_path):
    index = run_sweep(f"{study}:faulty", tmp_path, workers=1, retries=1, progress=False)
    statuses = {rid: entry["status"] for rid, entry in index["runs"].items()}
    assert sorted(statuses.values()) == ["diverged", "done", "failed", "invalid", "invalid"]
    failed = next(e for e in index["runs"].values() if e["status"] == "failed")
    assert "final probes are missing" in failed["error"] and failed["attempts"] == 2  # trained, probe failed; retried
    invalid = [e for e in index["runs"].values() if e["status"] == "invalid"]
    errors = " | ".join(e["error"] for e in invalid)
    assert "larger than the padded input" in errors and "larger than the training set" in errors  # found before launching
    assert all(e["attempts"] == 0 for e in invalid)
    on_disk = json.loads((tmp_path / "sweep.json").read_text())
    assert on_disk["counts"] == {"diverged": 1, "done": 1, "failed": 1, "invalid": 2}
    diverged = next(rid for rid, s in statuses.items() if s == "diverged")
    summary = json.loads((tmp_path / "runs" / diverged / "summary.json").read_text())
    assert all(r["diverged"] and r["diverged_step"] is not None for r in summary["replicas"])


def test_a_second_sweep_on_the_same_directory_is_refused(study, tmp_path):
    with sweep_lock(tmp_path):
        with pytest.raises(UserError, match="another cvd sweep"):
            run_sweep(f"{study}:base", tmp_path, progress=False)


@pytest.mark.parametrize("study_name", STUDIES)
def test_every_study_lists_its_quick_paper_and_full_runs(study_name, tmp_path, monkeypatch):
    # Models are built on their data's shapes without loading the data (the paper's MNIST-1D
    # pool takes a minute to generate): tests/test_data.py checks those shapes against loaded data.
    monkeypatch.setattr("research.sweep.load_dataset", dataset_shape)
    for variant in ("quick", "paper", "full"):
        spec = str(ROOT / "experiments" / f"{study_name}.py") + f":{variant}"
        index = run_sweep(spec, tmp_path, dry_run=True)  # the study's runs (study_runs), listed once
        assert len(index["runs"]) >= 3
        assert all(entry["status"] == "pending" for entry in index["runs"].values())
        if variant != "full":  # every quick and paper run's model builds on its data's shapes
            assert invalid_runs({rid: build_config(spec, e["overrides"]) for rid, e in index["runs"].items()}) == {}
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"
    assert len(STUDIES) == 12


def test_axes_combine_by_product_and_by_zip():
    from research.sweep import zip_axes

    families, widths = axis("model.family", ["conv", "dense"]), axis("model.widths", [(4,), (8,)])
    assert zip_axes(families, widths) == [
        {"model.family": "conv", "model.widths": (4,)},
        {"model.family": "dense", "model.widths": (8,)},
    ]
    assert len(product(families, widths)) == 4 and product(zip_axes(families, widths), axis("seed", [0, 1]))[1]["seed"] == 1
    with pytest.raises(UserError, match="one length"):
        zip_axes(families, axis("seed", [0, 1, 2]))


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
    argv = ["sweep", "--config", f"{study}:few", "--config.train.epochs=1", "--workdir", str(workdir), "--no-progress"]
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
    # One TensorBoard event file per run; each run's log holds its progress, one line per update.
    assert len(list(workdir.rglob("events.out.tfevents*"))) == len(index["runs"]) == 4
    for rid in index["runs"]:
        lines = (workdir / "logs" / f"{rid}.log").read_text().splitlines()
        progress = [line for line in lines if "step/s" in line or "s/step" in line]
        assert progress and "\r" not in "".join(lines) and "100%" in progress[-1] and "loss=" in progress[-1]


def test_a_local_sweep_whose_runs_time_themselves_runs_one_worker():
    """The compute study's cost probe times its run: a second local worker beside it would change
    the step times C4 compares, so unasked it gets one; asked, or on other launchers, as asked."""
    from experiments.common import default_config
    from research.sweep import workers_for

    timed, plain = default_config(), default_config()
    timed.probes.final = ("cost",)
    assert workers_for(None, "local", [plain, timed]) == 1
    assert workers_for(None, "local", [plain]) is None  # the launcher's default: two on CPU
    assert workers_for(3, "local", [timed]) == 3 and workers_for(None, "ray", [timed]) is None
