"""Launchers: run sweep jobs and report each one's outcome as it ends.

Every launcher is a backend of one scheduler (:func:`research.sweep.scheduler.schedule`,
which keeps at most ``workers`` jobs in flight, the number from
:func:`research.sweep.scheduler.workers_for`):

* ``local`` (default, :class:`LocalBackend`): long-lived worker processes
  (``python -m research.sweep.worker``), each running one job at a time in its
  own JAX process: a run that raises is recorded, a worker that crashes or is
  killed fails its one job and is replaced, never the sweep. One worker per
  visible GPU, each pinned to its GPU (``CUDA_VISIBLE_DEVICES``); on a TPU host
  one; on CPU two (:func:`default_workers`), or one when a run times itself.
* ``ray`` (:class:`research.sweep.cluster.RayBackend`): each job a Ray task, on a
  local Ray or an existing cluster (``--ray-address``); the jobs in flight default
  to what the cluster's resources hold, not to the driver's devices. Every node
  must see the sweep directory and the study file at the same paths (a shared
  filesystem) and have the package installed.
* ``slurm`` (:class:`research.sweep.cluster.SlurmBackend`): each job a SLURM job
  through submitit (``--slurm-partition``, ``--slurm-time``, ``--slurm-gpus``,
  ``--slurm-cpus``); the same shared-filesystem requirement. ``--slurm-cluster
  local`` runs the jobs as local processes through submitit's local executor, to
  try it without SLURM.

Every launcher runs :func:`research.sweep.jobs.run_logged`, so every launcher
writes the same run files and logs. A launcher calls ``on_start(job)`` and
``on_end(job, outcome)`` with outcome ``{"ok": bool, "error": str | None}`` (plus
``"node"`` where the job ran, for Ray); the sweep reads statuses from the run
directories' ``summary.json``; Ctrl-C cancels the jobs in flight. Optional
launchers' imports are checked by :func:`check_launcher` before the sweep writes
anything.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from research.errors import UserError, unknown
from research.sweep.cluster import RayBackend, SlurmBackend
from research.sweep.scheduler import Backend, Capacity, Outcome, schedule, workers_for

LAUNCHERS = ("local", "ray", "slurm")
_EXTRAS = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}  # launcher -> (module, pip extra)


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: str
    overrides: dict
    workdir: Path
    log: Path
    cache_dir: Path

    def request(self) -> dict:
        """What :func:`research.sweep.jobs.run_logged` takes (JSON-able)."""
        return {
            "config": self.spec,
            "workdir": str(self.workdir),
            "overrides": self.overrides,
            "cache_dir": str(self.cache_dir),
            "log": str(self.log),
        }


@dataclass(frozen=True)
class LaunchOptions:
    """Launcher settings beyond ``workers``. ``slurm_time_min``: each job's time limit."""

    ray_address: str | None = None
    slurm_partition: str | None = None
    slurm_time_min: int = 60
    slurm_gpus: int = 0
    slurm_cpus: int = 2
    slurm_cluster: str = "slurm"  # or "local": submitit's local executor (no SLURM needed)

    def __post_init__(self):
        if self.slurm_cluster not in ("slurm", "local"):
            raise unknown("--slurm-cluster", self.slurm_cluster, ("slurm", "local"))
        for name in ("slurm_time_min", "slurm_cpus"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_min', '').replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.slurm_gpus < 0:
            raise UserError(f"--slurm-gpus must be >= 0, got {self.slurm_gpus}")


Callback = Callable[..., None]


def check_launcher(name: str, options: LaunchOptions | None = None) -> None:
    """Refuse (one line) an unknown launcher, one whose optional package is missing, or
    SLURM where there is no ``sbatch`` (submitit would otherwise run every job here)."""
    if name not in LAUNCHERS:
        raise unknown("launcher", name, LAUNCHERS)
    if name == "slurm" and (options or LaunchOptions()).slurm_cluster == "slurm" and shutil.which("sbatch") is None:
        raise UserError(
            "the slurm launcher needs SLURM's sbatch on this machine's PATH (--slurm-cluster local runs the jobs here)"
        )
    if name in _EXTRAS:
        module, extra = _EXTRAS[name]
        try:
            __import__(module)
        except ImportError:
            raise UserError(
                f"the {name} launcher needs {module}: pip install {module} (or, in a clone of this repository, pip install -e '.[{extra}]')"
            ) from None


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


# -- local ------------------------------------------------------------------------------
def visible_gpus() -> list[str]:
    """GPU ids this process may use, found without starting JAX (which would take the
    GPUs' memory in the launcher): ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, _ in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def host_capacity() -> Capacity:
    """This host's devices for the local launcher: visible GPUs, a TPU host, CPU cores."""
    tpu = bool(glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"))  # where libtpu finds TPU chips
    return Capacity(gpus=len(visible_gpus()), cpus=os.cpu_count() or 1, tpu=tpu)


def default_workers() -> int:
    """The local launcher's workers unasked (:func:`~research.sweep.scheduler.workers_for`)."""
    return workers_for(None, "local", capacity=host_capacity())


def worker_env(slot: int, gpus: list[str], workers: int) -> dict[str, str]:
    """A worker's environment: its share of the GPUs (one each when there are as many
    workers as GPUs; with fewer workers, every ``workers``-th GPU from its slot, so none is
    idle; with more, round robin) and no JAX whole-memory preallocation, so workers
    sharing a device do not starve each other."""
    env = os.environ.copy()
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if gpus:
        share = gpus[slot::workers] if len(gpus) >= workers else [gpus[slot % len(gpus)]]
        env["CUDA_VISIBLE_DEVICES"] = ",".join(share)
    return env


class _Worker:
    """One long-lived ``research.sweep.worker`` process and its current job."""

    def __init__(self, slot: int, gpus: list[str], workers: int):
        self.slot = slot
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "research.sweep.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_env(slot, gpus, workers),
            text=True,
            bufsize=1,
        )
        self.job: Job | None = None

    def submit(self, job: Job) -> None:
        self.job = job
        self.proc.stdin.write(json.dumps(job.request()) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> Outcome:
        """The outcome of its job, once its answer line is ready; a worker that died mid-job
        (a crash or a kill) fails it with the log's last line."""
        line = self.proc.stdout.readline()
        job, self.job = self.job, None
        if line:
            return json.loads(line)
        self.stop()
        return {"ok": False, "error": _last_line(job.log) or f"worker died (exit status {self.proc.returncode})"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()


class LocalBackend:
    """Jobs on at most ``workers`` long-lived worker processes, slot ``i``'s pinned to its GPUs:
    a job goes to an idle worker, else a new one on a free slot; a worker that dies fails its
    job only, and a new one takes its slot (and its GPUs). The handle is the worker."""

    def __init__(self, workers: int):
        self.workers, self.gpus = workers, visible_gpus()
        self.pool: list[_Worker] = []

    def submit(self, job: Job) -> _Worker:
        self.pool = [w for w in self.pool if w.job is not None or w.proc.poll() is None]  # an idle one that died
        worker = next((w for w in self.pool if w.job is None), None)
        if worker is None:
            slot = min(set(range(self.workers)) - {w.slot for w in self.pool})
            worker = _Worker(slot, self.gpus, self.workers)
            self.pool.append(worker)
        worker.submit(job)
        return worker

    def wait(self, handles: Sequence[_Worker], timeout: float) -> list[tuple[_Worker, Outcome]]:
        streams = {w.proc.stdout: w for w in handles}
        ready, _, _ = select.select(list(streams), [], [], timeout)
        ended = [(streams[s], streams[s].answer()) for s in ready]
        self.pool = [w for w in self.pool if w.proc.returncode is None]  # the dead leave their slots
        return ended

    def cancel(self, handles: Sequence[_Worker]) -> None:
        """Stop the workers of the interrupted jobs (a run keeps its checkpoints)."""
        for worker in handles:
            worker.stop()

    def close(self) -> None:
        """Stop every worker, finished or interrupted."""
        for worker in self.pool:
            worker.stop()
        self.pool = []


def _backend(name: str, jobs: list[Job], workers: int | None, options: LaunchOptions) -> tuple[Backend, int]:
    """Launcher ``name``'s backend and its jobs in flight (:func:`workers_for` with its capacity)."""
    if name == "ray":
        ray = RayBackend(options)
        return ray, workers_for(workers, name, capacity=ray.capacity)
    if name == "slurm":
        folder = jobs[0].workdir.parent.parent / "slurm" if jobs else Path("slurm")
        return SlurmBackend(folder, options), workers_for(workers, name, capacity=Capacity(jobs=len(jobs)))
    slots = workers_for(workers, name, capacity=host_capacity())
    return LocalBackend(slots), slots


def launch(name: str, jobs: list[Job], workers: int | None, on_start: Callback, on_end: Callback, options: LaunchOptions) -> None:
    """Run ``jobs`` with launcher ``name`` (checked by :func:`check_launcher`), ``workers`` at once
    (None: the launcher's default)."""
    backend, slots = _backend(name, jobs, workers, options)
    try:
        schedule(jobs, backend, slots, on_start, on_end)
    finally:
        backend.close()


# -- the command line's launcher flags ----------------------------------------------
def add_launcher_arguments(parser: argparse.ArgumentParser) -> None:
    """The launcher flags of ``cvd sweep`` and ``cvd reproduce``."""
    group = parser.add_argument_group("launcher", "where the runs train (ray and slurm need a filesystem every node shares)")
    group.add_argument(
        "--launcher", choices=LAUNCHERS, default="local", help="local worker processes (default), Ray tasks or SLURM jobs"
    )
    group.add_argument(
        "--workers",
        type=int,
        default=None,
        help="runs at once (default: local one per GPU, on CPU two; ray the cluster's GPUs or CPUs; slurm all)",
    )
    group.add_argument("--ray-address", default=None, help="an existing Ray cluster, host:port (default: start a local Ray)")
    group.add_argument("--slurm-partition", default=None, help="SLURM partition (default: the cluster's default)")
    group.add_argument("--slurm-time", type=int, default=60, help="time limit of each run's SLURM job, minutes (default 60)")
    group.add_argument("--slurm-gpus", type=int, default=0, help="GPUs per run's SLURM job (default 0)")
    group.add_argument("--slurm-cpus", type=int, default=2, help="CPUs per run's SLURM job (default 2)")
    group.add_argument(
        "--slurm-cluster",
        choices=("slurm", "local"),
        default="slurm",
        help="local: submitit's local executor, to try it without SLURM",
    )


def launch_keywords(args: argparse.Namespace) -> dict:
    """The launcher keywords of ``run_sweep`` and ``reproduce`` from the parsed arguments."""
    options = LaunchOptions(
        ray_address=args.ray_address,
        slurm_partition=args.slurm_partition,
        slurm_time_min=args.slurm_time,
        slurm_gpus=args.slurm_gpus,
        slurm_cpus=args.slurm_cpus,
        slurm_cluster=args.slurm_cluster,
    )
    return {"launcher": args.launcher, "workers": args.workers, "options": options, "progress": not args.no_progress}
