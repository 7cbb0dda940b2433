"""kill -9 at random moments of a training run, 5 trials: the same command again
resumes and ends bit-identical (summary and metrics) to an uninterrupted run.

Two trials kill at a random point of training (which, with a checkpoint every
10 steps and metrics every 5, lands in steps, checkpoint writes and metric
writes alike); two target the dangerous moments: mid checkpoint write (a
timer fires inside ``Checkpointer.save``) and mid metric write (half a line
written, then SIGKILL); one kills an early-stopping run inside its patience
window (after its best validation epoch, before it stops).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from research.train import strip_timing
from tests.helpers import read_lines

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--config",
    str(ROOT / "experiments/mnist1d.py") + ":mlp",
    "--config.seeds=2",
    "--config.data.n_per_class=10",
    "--config.train.batch_size=10",
    "--config.train.epochs=30",
    "--config.train.log_every_steps=5",
    "--config.train.checkpoint_every_steps=10",
    "--no-progress",
]
# Every launch trains the same config, so they share one compilation cache: the reference
# run compiles, the killed and resumed runs load its executables (same programs, same
# numbers) and spend their time training, where the kills land.
_COMPILE_CACHE = tempfile.TemporaryDirectory(prefix="cvd-kills-jax-cache-")
ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "JAX_COMPILATION_CACHE_DIR": _COMPILE_CACHE.name,
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
}

# Runs `cvd train` with a fault armed: FAULT=checkpoint:N kills the process a few
# milliseconds into the N-th checkpoint write; FAULT=metrics:N writes half of the
# N-th flush's buffered lines, then kills.
DRIVER = r"""
import os, signal, sys, threading, random
from research.train import checkpoint, metrics
from research.cli import main

kind, n = os.environ["FAULT"].split(":")
n = int(n)
calls = {"n": 0}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "checkpoint":
    original = checkpoint.Checkpointer.save
    def save(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == n:
            threading.Timer(random.uniform(0.0, 0.01), die).start()
        return original(self, *a, **k)
    checkpoint.Checkpointer.save = save
else:
    original_write = metrics.MetricWriter.write_scalars
    def write_scalars(self, step, scalars, **labels):
        calls["n"] += 1
        if calls["n"] == n:
            import json
            line = json.dumps({"step": int(step), "split": labels.get("split"), "replica": labels.get("replica")})
            self._file.write(line[: len(line) // 2])
            self._file.flush()
            os.fsync(self._file.fileno())
            die()
        return original_write(self, step, scalars, **labels)
    metrics.MetricWriter.write_scalars = write_scalars
sys.exit(main(["train", *sys.argv[1:]]))
"""


PATIENCE = 3
PATIENCE_ARGS = [*ARGS, f"--config.train.patience={PATIENCE}"]


def _train(workdir: Path, args=ARGS, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "research.cli", "train", *args, "--workdir", str(workdir)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **popen,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("reference")
    assert _train(workdir).wait() == 0
    return workdir


def _resume_and_compare(workdir: Path, reference: Path, args=ARGS) -> None:
    assert not (workdir / "summary.json").exists(), "the fault came too late to test anything"
    assert _train(workdir, args).wait() == 0
    ref = json.loads((reference / "summary.json").read_text())
    run = json.loads((workdir / "summary.json").read_text())
    assert strip_timing(run) == strip_timing(ref)
    assert read_lines(workdir / "metrics.jsonl") == read_lines(reference / "metrics.jsonl")


# Two trials kill early and late (after metric line 9 and 55 of about 150). Trials 2-6 of
# range(7) are left out: they killed at about the moments these kill at (lines 56, 16, 16,
# 40 and 51); the targeted kills below cover the writes.
@pytest.mark.parametrize("trial", [1, 0])
def test_kill_9_at_a_random_moment(trial, reference, tmp_path, tally):
    rng = random.Random(trial)
    target_lines = rng.randint(1, 60)  # of ~150 metric lines: early, middle or late
    workdir = tmp_path / "run"
    proc = _train(workdir)
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_bytes().count(b"\n") >= target_lines:
            time.sleep(rng.uniform(0, 0.05))
            break
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    tally("faults")
    _resume_and_compare(workdir, reference)


@pytest.mark.parametrize("fault", ["checkpoint:2", "metrics:7"])  # the patience test kills in a later checkpoint write
def test_kill_9_inside_a_write(fault, reference, tmp_path, tally):
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *ARGS, "--workdir", str(workdir)],
        env={**ENV, "FAULT": fault},
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    tally("faults")
    if fault.startswith("metrics"):
        assert not (workdir / "metrics.jsonl").read_text().endswith("\n"), "a half-written line is on disk"
    _resume_and_compare(workdir, reference)


def test_kill_9_inside_the_patience_window_resumes_to_the_same_early_stop(tmp_path_factory, tally):
    """Early stopping's state (each replica's best epoch and the test accuracy there) is
    rebuilt from the metrics on resume: a kill between the best epoch and the stop changes nothing."""
    reference = tmp_path_factory.mktemp("patience_reference")
    assert _train(reference, PATIENCE_ARGS).wait() == 0
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["stopped_early"], "the reference must stop early for the window to exist"
    best = max(r["best_val_epoch"] for r in summary["replicas"])
    steps_per_epoch = summary["steps"] // summary["epochs"]
    checkpoint = best * steps_per_epoch // 10 + 1  # the first checkpoint (every 10 steps) after the last best epoch
    assert 10 * checkpoint < summary["steps"], "no checkpoint inside the patience window"
    assert checkpoint > 2, "the kill must land in a save that also deletes an old checkpoint (keep_checkpoints=2)"
    workdir = tmp_path_factory.mktemp("patience") / "run"
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, *PATIENCE_ARGS, "--workdir", str(workdir)],
        env={**ENV, "FAULT": f"checkpoint:{checkpoint}"},
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-500:]
    tally("faults")
    _resume_and_compare(workdir, reference, PATIENCE_ARGS)
