"""Damaged files: a corrupted or half-written checkpoint, a truncated metrics line,
atomic summaries, and NaN / inf in one replica."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from research.atomic import atomic_write_json
from research.rundir import read_metrics
from research.train import strip_timing, train_and_evaluate
from tests.helpers import read_lines, tiny_config


def _config():
    return tiny_config("mlp", epochs=3, checkpoint_every_steps=8)  # checkpoints at steps 8, 16, 24


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    summary = train_and_evaluate(_config(), workdir, progress=False)
    return workdir, summary


def _interrupted_copy(reference_dir, tmp_path, keep_step: int):
    """A run directory as it was when the process died just after checkpoint ``keep_step``."""
    workdir = tmp_path / "run"
    shutil.copytree(reference_dir, workdir)
    (workdir / "summary.json").unlink()
    lines = [r for r in read_lines(workdir / "metrics.jsonl") if r["step"] <= keep_step]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for step_dir in (workdir / "checkpoints").iterdir():
        if step_dir.name.isdigit() and int(step_dir.name) > keep_step:
            shutil.rmtree(step_dir)
    return workdir


@pytest.mark.parametrize("damage", ["corrupted", "half_written", "emptied"])
def test_a_damaged_latest_checkpoint_is_named_and_the_previous_one_used(damage, reference, tmp_path, tally):
    ref_dir, ref_summary = reference
    config = _config()
    config.train.keep_checkpoints = 3
    workdir = tmp_path / "run"
    train_and_evaluate(config, workdir, progress=False)
    (workdir / "summary.json").unlink()
    latest = workdir / "checkpoints" / "24"
    files = sorted(p for p in latest.rglob("*") if p.is_file() and p.stat().st_size > 0)
    if damage == "corrupted":
        for path in files:
            path.write_bytes(b"\x00garbage" * 8)
    elif damage == "half_written":
        for path in files[len(files) // 2 :]:
            path.unlink()
    else:
        shutil.rmtree(latest / "state")
    tally("faults")
    with pytest.warns(UserWarning, match=r"checkpoints/24 is unreadable"):
        resumed = train_and_evaluate(config, workdir, progress=False)
    assert strip_timing(resumed) == strip_timing(ref_summary)
    assert read_lines(workdir / "metrics.jsonl") == read_lines(ref_dir / "metrics.jsonl")


def test_a_truncated_metrics_line_is_skipped_and_resume_leaves_no_duplicates(reference, tmp_path, tally):
    ref_dir, ref_summary = reference
    workdir = _interrupted_copy(ref_dir, tmp_path, keep_step=16)
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 20, "split": "tra')  # the write the kill cut short
    tally("faults")
    with pytest.warns(UserWarning, match="truncated or corrupt metrics line"):
        records = read_metrics(workdir / "metrics.jsonl")
    assert max(r["step"] for r in records) == 16
    with pytest.warns(UserWarning, match="truncated"):
        resumed = train_and_evaluate(_config(), workdir, progress=False)
    assert strip_timing(resumed) == strip_timing(ref_summary)
    lines = read_lines(workdir / "metrics.jsonl")
    assert lines == read_lines(ref_dir / "metrics.jsonl")
    keys = [(r["step"], r["split"], r["replica"]) for r in lines]
    assert len(keys) == len(set(keys)), "no duplicate records"


def test_atomic_writes_leave_the_old_file_when_a_write_fails(tmp_path, tally):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"status": "done"})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"status": object()})  # fails while serialising
    tally("faults")
    assert json.loads(path.read_text()) == {"status": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"], "no temporary file left behind"


@pytest.mark.parametrize("bad_lr", [1e30, float("inf")])
def test_nan_or_inf_in_one_replica_marks_it_and_spares_the_others(bad_lr, tmp_path, tally):
    def run(lrs, name):
        config = tiny_config("mlp")
        config.optimizer.name = "sgd"
        config.seeds = 1  # one replica per rate
        config.optimizer.learning_rates = lrs
        return train_and_evaluate(config, tmp_path / name, progress=False)

    healthy = run((0.05, 0.05), "healthy")
    mixed = run((0.05, bad_lr), "mixed")
    tally("faults")
    assert mixed["status"] == "done"
    assert mixed["replicas"][1]["diverged"] and mixed["replicas"][1]["diverged_step"] is not None
    assert mixed["replicas"][0] == healthy["replicas"][0]
    tests = [r for r in read_lines(tmp_path / "mixed" / "metrics.jsonl") if r["split"] == "test" and r["replica"] == 1]
    assert all(r["alive"] is False for r in tests)
    # Its non-finite losses are stored as strings (JSON has no NaN) and read back as floats,
    # so the analysis's curves stay numeric (a 'nan' string made F10 fail on the paper run).
    stored = read_lines(tmp_path / "mixed" / "metrics.jsonl")
    read = read_metrics(tmp_path / "mixed" / "metrics.jsonl")
    spelled = [i for i, r in enumerate(stored) if isinstance(r.get("loss"), str)]
    assert spelled or bad_lr == float("inf")  # at 1e30 the replica logs losses that overflow
    assert all(isinstance(read[i]["loss"], float) and not math.isfinite(read[i]["loss"]) for i in spelled)
