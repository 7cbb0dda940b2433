"""``cvd analyze`` on what a user has (issue 29, case 1): a single ``cvd train`` run, its
``--out`` a new directory, a sweep, and several of each together; each writes
``report.md`` and ``report.html``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from research.cli import main
from tests.helpers import done_summary, write_run, write_sweep_index


@pytest.fixture()
def trained(finished_run, tmp_path) -> Path:
    """A finished ``cvd train`` run (the issue's M, with a batch that fits), ours to write into."""
    shutil.copytree(finished_run, tmp_path / "r")
    return tmp_path / "r"


def _sweep(path: Path, study: str, runs: int) -> Path:
    """A finished synthetic sweep of ``runs`` runs (no figure draws from its study)."""
    replica = {"seed": 0, "learning_rate": 0.01, "test_accuracy": 0.5, "val_accuracy": 0.5, "diverged": False}
    ids = {}
    for i in range(runs):
        rid = f"width={i + 1}-0000000{i}"
        config = {"model": {"name": "mlp", "hidden": [i + 1]}, "data": {"name": "mnist1d"}}
        write_run(path / "runs" / rid, config, done_summary([replica]))
        ids[rid] = {"status": "done", "overrides": {"model.hidden": [i + 1]}}
    write_sweep_index(path, f"experiments/{study}.py:quick", ids)
    return path


def _analyze(argv: list[str], capsys) -> str:
    code = main(["analyze", *argv, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    return out


def _report(directory: Path) -> str:
    assert (directory / "report.html").stat().st_size > 0
    return (directory / "report.md").read_text()


def test_analyze_a_single_train_run_its_out_a_sweep_and_several_of_each(trained, tmp_path, capsys):
    _analyze([str(trained)], capsys)
    assert "1 distinct trained runs" in _report(trained / "report")
    fresh = tmp_path / "new" / "deeper"  # --out NEWDIR: made, parents too
    _analyze([str(trained), "--out", str(fresh)], capsys)
    assert "1 distinct trained runs" in _report(fresh)
    sweep = _sweep(tmp_path / "sweep_a", "tiny_a", 2)
    _analyze([str(sweep)], capsys)
    assert "2 distinct trained runs" in _report(sweep / "report")
    other_run = tmp_path / "r2"
    shutil.copytree(trained, other_run, ignore=shutil.ignore_patterns("report"))
    other_sweep = _sweep(tmp_path / "sweep_b", "tiny_b", 3)
    together = tmp_path / "together"
    _analyze([str(trained), str(other_run), str(sweep), str(other_sweep), "--out", str(together)], capsys)
    assert "7 distinct trained runs" in _report(together)
