"""Sweep faults: two sweeps on one directory, and a launcher killed three times."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from research.train import strip_timing
from tests.helpers import TINY_STUDY, read_lines

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _sweep(study: Path, workdir: Path, **popen) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "research.cli",
        "sweep",
        "--config",
        f"{study}:base",
        "--workers",
        "1",
        "--no-progress",
        "--workdir",
        str(workdir),
    ]
    return subprocess.Popen(cmd, env=ENV, cwd=ROOT, **popen)


def _summaries(directory: Path) -> dict:
    return {p.parent.name: strip_timing(json.loads(p.read_text())) for p in sorted((directory / "runs").glob("*/summary.json"))}


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


def test_a_sweep_killed_three_times_finishes_every_run_exactly_once(tmp_path, tally):
    study = tmp_path / "tiny_study.py"
    study.write_text(TINY_STUDY)
    reference = tmp_path / "reference"
    assert _sweep(study, reference, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait() == 0
    run = tmp_path / "run"
    rng = random.Random(0)
    kills = 0
    while kills < 3:
        proc = _sweep(study, run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done_before = len(list(run.glob("runs/*/summary.json")))
        target = done_before + rng.randint(1, 3)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(list(run.glob("runs/*/summary.json"))) < target:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 1.5))  # anywhere: mid-run, between runs, mid-write
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        tally("faults")
    assert kills == 3, "the sweep finished before the third kill"
    assert _sweep(study, run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait() == 0
    assert _summaries(run) == _summaries(reference)
    index = json.loads((run / "sweep.json").read_text())
    assert index["counts"] == {"done": 12}
    for run_dir in (run / "runs").iterdir():
        records = [(r["step"], r["split"], r["replica"]) for r in read_lines(run_dir / "metrics.jsonl")]
        assert len(records) == len(set(records)), f"{run_dir.name}: a step was recorded twice"
    assert not list(run.rglob("*.tmp")), "no half-written file is left"
