"""Workdirs under conflicting use, without space or write access (issue 29, cases 2, 4 and 5):
a live run's workdir is locked (a second train, ``--overwrite``, a probe are refused); a full
or read-only disk is one line and exit 2, leaves no temporary file and deletes nothing,
and the run resumes exactly once there is space; ``--overwrite`` never follows a link.

The real full disk is a small tmpfs, and so is the read-only one as root: mounting needs root
and a kernel that lets this process mount (skipped with the reason otherwise); without root a
directory without write permission stands for the read-only one, and a simulated full disk
(every fsync failing with ENOSPC from some point on) runs everywhere."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.cli import main
from research.train import strip_timing
from tests.helpers import SMALL_TRAIN, TINY_STUDY, read_lines

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _refused(argv: list[str], capsys, expected: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("cvd: error:") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err
    return err


def _same_run(workdir: Path, reference: Path) -> None:
    summary = json.loads((workdir / "summary.json").read_text())
    assert strip_timing(summary) == strip_timing(json.loads((reference / "summary.json").read_text()))
    assert read_lines(workdir / "metrics.jsonl") == read_lines(reference / "metrics.jsonl")


def test_a_live_run_locks_its_workdir_against_train_overwrite_and_probe(tmp_path, capsys, tally):
    live = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "research.cli", *SMALL_TRAIN, "--config.train.epochs=100000", "--workdir", str(live)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not (live / "config.json").exists():
            time.sleep(0.05)
        assert proc.poll() is None, "the live run ended early"
        config = (live / "config.json").read_bytes()
        other = [*SMALL_TRAIN, "--config.train.epochs=1", "--workdir", str(live)]  # another config: ends at once
        for argv in ([*other, "--overwrite"], other, ["probe", str(live)]):
            _refused(argv, capsys, f"another cvd train (pid {proc.pid}) is running in {live}")
            tally("faults")
        assert (live / "config.json").read_bytes() == config, "the live run's files are untouched"
        assert proc.poll() is None, "the live run goes on"
    finally:
        proc.kill()  # at once: a SIGINT waits for a compile to end
        proc.wait()
    assert not (live / "summary.json").exists()


def test_overwrite_never_follows_a_symbolic_link(finished_run, tmp_path, capsys, tally):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run, workdir)
    elsewhere = tmp_path / "big_disk" / "checkpoints"
    shutil.move(workdir / "checkpoints", elsewhere)
    (workdir / "checkpoints").symlink_to(elsewhere)
    before = _snapshot(tmp_path)
    tally("faults")
    _refused([*SMALL_TRAIN, "--config.train.epochs=1", "--workdir", str(workdir), "--overwrite"], capsys, "symbolic link")
    assert _snapshot(tmp_path) == before, "nothing deleted"


def test_a_simulated_full_disk_is_one_line_no_temp_file_and_resumes_exactly(finished_run, tmp_path, capsys, monkeypatch, tally):
    """Every fsync fails with ENOSPC from the 4th on (mid-run: after config.json and some metrics)."""
    workdir = tmp_path / "run"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _refused([*SMALL_TRAIN, "--workdir", str(workdir)], capsys, "No space left on device")
    tally("faults")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not [p for p in workdir.rglob("*") if p.name.endswith(".tmp")], "no temporary file left"
    assert not (workdir / "summary.json").exists(), "a run stopped by a full disk is interrupted, not failed"
    assert main([*SMALL_TRAIN, "--workdir", str(workdir)]) == 0
    _same_run(workdir, finished_run)


def test_a_sweep_on_a_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch, tally):
    study = tmp_path / "study.py"
    study.write_text(TINY_STUDY)

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    argv = ["sweep", "--config", f"{study}:few", "--workdir", str(tmp_path / "sweep"), "--no-progress"]
    _refused(argv, capsys, "No space left on device")
    tally("faults")
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")], "no temporary file left"


def _mount_tmpfs(path: Path, options: str) -> None:
    """Mount a tmpfs at ``path``, or skip the test saying why it cannot."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture()
def mounts():
    mounted: list[Path] = []
    yield mounted
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_real_full_disk_is_one_line_no_temp_file_and_resumes_exactly(finished_run, tmp_path, capsys, mounts, tally):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "size=400k")
    mounts.append(disk)
    workdir = disk / "run"
    _refused([*SMALL_TRAIN, "--workdir", str(workdir)], capsys, "No space left on device")
    tally("faults")
    assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp") or "tmp" in p.name.split(".")], "no temp file left"
    assert not (workdir / "summary.json").exists()
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # space freed
    assert main([*SMALL_TRAIN, "--workdir", str(workdir)]) == 0
    _same_run(workdir, finished_run)


def test_an_unwritable_workdir_is_one_line_for_train_overwrite_and_probe(finished_run, tmp_path, capsys, mounts, tally):
    """A read-only tmpfs as root (who may write anywhere else); a directory without write
    permission for anyone else."""
    disk = tmp_path / "ro"
    if os.geteuid() == 0:
        _mount_tmpfs(disk, "size=64m")
        mounts.append(disk)
    shutil.copytree(finished_run, disk / "run")
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        expected = "Read-only file system"
    else:
        for directory in [disk / "run", *(p for p in (disk / "run").rglob("*") if p.is_dir())]:
            directory.chmod(0o555)
        expected = "Permission denied"
    before = _snapshot(disk)
    for argv in (["probe", str(disk / "run"), "--probe", "shift"], [*SMALL_TRAIN, "--workdir", str(disk / "run"), "--overwrite"]):
        _refused(argv, capsys, expected)
        tally("faults")
    assert _snapshot(disk) == before, "nothing written or deleted"
    if os.geteuid() != 0:
        for directory in [disk / "run", *(p for p in (disk / "run").rglob("*") if p.is_dir())]:
            directory.chmod(0o755)  # so that pytest can remove it
