"""Damaged run files are recovered, never a traceback (issue 29, case 3): a ``summary.json``
truncated, emptied or of the wrong shape, non-UTF-8 bytes in ``metrics.jsonl``, a
``sweep.json`` truncated or of the wrong shape. ``cvd analyze`` reads around the damage;
``cvd train`` rebuilds a summary from the checkpoints, to the same ``summary.json`` (timing
aside), and ``cvd sweep`` its index from the run directories. (A sweep run whose summary is
damaged is retrained by the same ``train_and_probe`` as ``cvd train``.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from research.cli import main
from research.config import load_config
from research.pipeline import train_and_probe
from research.sweep import study_runs
from research.train import strip_timing
from tests.helpers import SMALL_TRAIN, mlp_study, read_lines, write_sweep_index

STUDY = mlp_study('    return [{"optimizer.learning_rate": 0.01}]', seeds=1, hidden=8, extra="    c.train.epochs = 2\n")
GARBAGE = b'\xff\xfe\x80 not UTF-8 {"step": \xc3\x28\n'
SUMMARY_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "empty": lambda text: "",
    "wrong_shape": lambda text: json.dumps({"status": "done", "replicas": "all of them", "dataset": 7}),
    "not_an_object": lambda text: "[1, 2, 3]",
}


def _summary(workdir: Path) -> dict:
    return strip_timing(json.loads((workdir / "summary.json").read_text()))


def _ok(argv: list[str], capsys) -> None:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("damage", sorted(SUMMARY_DAMAGE))
def test_a_damaged_summary_is_read_around_then_rebuilt(damage, finished_run, tmp_path, capsys, tally):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    summary = workdir / "summary.json"
    summary.write_text(SUMMARY_DAMAGE[damage](summary.read_text()))
    tally("faults")
    _ok(["analyze", str(workdir), "--out", str(tmp_path / "report"), "--no-progress"], capsys)
    _ok([*SMALL_TRAIN, "--workdir", str(workdir)], capsys)
    assert _summary(workdir) == _summary(finished_run)
    assert read_lines(workdir / "metrics.jsonl") == read_lines(finished_run / "metrics.jsonl")


def test_non_utf8_bytes_in_metrics_are_skipped_by_analyze_and_resume(finished_run, tmp_path, capsys, tally):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    (workdir / "summary.json").unlink()  # interrupted after its checkpoint at step 10 of 20
    shutil.rmtree(workdir / "checkpoints" / "20")
    kept = [line for line in (workdir / "metrics.jsonl").read_bytes().splitlines(True) if json.loads(line)["step"] <= 10]
    (workdir / "metrics.jsonl").write_bytes(b"".join(kept[:2]) + GARBAGE + b"".join(kept[2:]) + GARBAGE)
    tally("faults")
    with pytest.warns(UserWarning, match="corrupt metrics line"):
        _ok(["analyze", str(workdir), "--out", str(tmp_path / "report"), "--no-progress"], capsys)
        _ok([*SMALL_TRAIN, "--workdir", str(workdir)], capsys)
    assert _summary(workdir) == _summary(finished_run)
    assert read_lines(workdir / "metrics.jsonl") == read_lines(finished_run / "metrics.jsonl")


INDEX_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "runs_a_list": lambda text: json.dumps({"runs": [1, 2]}),
    "not_an_object": lambda text: "7",
}


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[str, Path]:
    """``(spec, directory)`` of a finished one-run sweep (trained here, as its worker would)."""
    root = tmp_path_factory.mktemp("sweep")
    study = root / "one_run.py"
    study.write_text(STUDY)
    spec, sweep = f"{study}:quick", root / "sweep"
    ((rid, overrides),) = study_runs(spec)
    train_and_probe(load_config(spec, overrides), sweep / "runs" / rid, progress=False)
    write_sweep_index(sweep, spec, {rid: {"status": "done", "overrides": overrides, "attempts": 1}})
    return spec, sweep


@pytest.mark.parametrize("damage", sorted(INDEX_DAMAGE))
def test_a_damaged_sweep_index_is_rebuilt_from_the_run_directories(damage, finished_sweep, tmp_path, capsys, tally):
    spec, original = finished_sweep
    sweep = tmp_path / "sweep"
    shutil.copytree(original, sweep)
    index = sweep / "sweep.json"
    index.write_text(INDEX_DAMAGE[damage](index.read_text()))
    (run,) = (sweep / "runs").iterdir()
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(GARBAGE)
    tally("faults", 2)
    with pytest.warns(UserWarning, match="sweep.json is unreadable"):
        _ok(["analyze", str(sweep), "--no-progress"], capsys)
    assert "1 distinct trained runs" in (sweep / "report" / "report.md").read_text()
    with pytest.warns(UserWarning, match="rebuilding it from the run directories"):
        _ok(["sweep", "--config", spec, "--workdir", str(sweep), "--no-progress"], capsys)
    rebuilt = json.loads(index.read_text())
    assert rebuilt["counts"] == {"done": 1} and list(rebuilt["runs"]) == [run.name]
    assert _summary(run) == _summary(original / "runs" / run.name), "a finished run is not run again"
