"""Sweep faults: two sweeps on one directory, and a launcher killed up to three times."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from research.rundir import RunDir
from research.train import strip_timing
from tests.helpers import TINY_STUDY, read_lines

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _sweep(study: Path, workdir: Path, variant: str = "base", **popen) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "research.cli",
        "sweep",
        "--config",
        f"{study}:{variant}",
        "--workers",
        "1",
        "--no-progress",
        "--workdir",
        str(workdir),
    ]
    return subprocess.Popen(cmd, env=ENV, cwd=ROOT, **popen)


def _summaries(directory: Path) -> dict:
    return {p.parent.name: strip_timing(json.loads(p.read_text())) for p in sorted((directory / "runs").glob("*/summary.json"))}


def _finished(directory: Path) -> dict[str, bytes]:
    """Each finished run's ``summary.json``, as bytes."""
    finished = {}
    for run_dir in sorted((directory / "runs").glob("*")):
        summary = RunDir(run_dir).summary_file
        if summary.exists():
            finished[run_dir.name] = summary.read_bytes()
    return finished


def test_a_second_sweep_on_the_same_directory_refuses_with_a_clear_message(tmp_path, tally):
    study = tmp_path / "tiny_study.py"
    study.write_text(TINY_STUDY)
    first = _sweep(study, tmp_path / "sweep", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "sweep" / "sweep.json").exists():
        time.sleep(0.05)
    second = _sweep(study, tmp_path / "sweep", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = second.communicate(timeout=120)
    tally("faults")
    assert second.returncode == 2
    assert err.strip().startswith("cvd: error: another cvd sweep (pid") and len(err.strip().splitlines()) == 1
    first.kill()
    first.wait()


def test_a_sweep_killed_up_to_three_times_finishes_every_run_exactly_once(tmp_path, tally):
    study = tmp_path / "tiny_study.py"
    study.write_text(TINY_STUDY)
    reference = tmp_path / "reference"
    quiet = {"variant": "few", "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # 4 runs
    assert _sweep(study, reference, **quiet).wait() == 0
    run = tmp_path / "run"
    rng = random.Random(0)
    kept = []  # at each kill, the summaries of the runs finished by then: no later launch may redo them
    for _ in range(3):
        proc = _sweep(study, run, **quiet)
        # Each kill comes after 1-2 more runs finish (never the last two), then anywhere:
        # mid-run, between runs, mid-write.
        target = min(len(_finished(run)) + rng.randint(1, 2), 4 - 2)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(_finished(run)) < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 1.5))
        if proc.poll() is not None:
            break  # the sweep got to the end first: the kills so far are the test
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        tally("faults")
        kept.append(_finished(run))
    assert kept, "the sweep finished before the first kill"
    assert _sweep(study, run, **quiet).wait() == 0
    assert _summaries(run) == _summaries(reference)
    for finished in kept:  # resumed after every kill: what had finished stayed finished, untouched
        assert {rid: _finished(run)[rid] for rid in finished} == finished
    index = json.loads((run / "sweep.json").read_text())
    assert index["counts"] == {"done": 4}
    for run_dir in (run / "runs").iterdir():
        records = [(r["step"], r["split"], r["replica"]) for r in read_lines(run_dir / "metrics.jsonl")]
        assert len(records) == len(set(records)), f"{run_dir.name}: a step was recorded twice"
    assert not list(run.rglob("*.tmp")), "no half-written file is left"
