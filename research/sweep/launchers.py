"""Launchers: run sweep jobs and report each one's outcome as it ends.

* ``local`` (default): a pool of long-lived worker processes (``python -m
  research.sweep.worker``), each running one job at a time in its own JAX
  process: a run that raises is recorded, a worker that crashes or is killed
  fails its one job and is replaced, never the sweep. One worker per visible
  GPU, each pinned to its GPU (``CUDA_VISIBLE_DEVICES``); on a TPU host one; on
  CPU two (:func:`default_workers`), or one when a run times itself (``TIMED_PROBES``).
* ``ray``: each job a Ray task, on a local Ray (``ray.init()``) or an existing
  cluster (``--ray-address``). A task asks for one CPU, and one GPU where the
  cluster has GPUs; the jobs in flight default to what the cluster's resources
  hold (its GPUs, else its CPUs), not to the driver's devices. Every node must
  see the sweep directory and the study file at the same paths (a shared
  filesystem) and have the package installed.
* ``slurm``: each job a SLURM job through submitit (``--slurm-partition``,
  ``--slurm-time``, ``--slurm-gpus``, ``--slurm-cpus``); the same shared-filesystem
  requirement. ``--slurm-cluster local`` runs the jobs as local processes through
  submitit's local executor, to try it without SLURM.

Every launcher runs :func:`research.sweep.jobs.run_logged`, so every launcher
writes the same run files and logs. A launcher calls ``on_start(job)`` and
``on_end(job, outcome)`` with outcome ``{"ok": bool, "error": str | None}`` (plus
``"node"`` where the job ran, for Ray); the sweep reads statuses from the run
directories' ``summary.json``. Optional launchers' imports are checked by
:func:`check_launcher` before the sweep writes anything.
"""

from __future__ import annotations

import glob
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from research.errors import UserError, unknown

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


CPU_WORKERS = 2


def default_workers() -> int:
    """One worker per visible GPU; on a TPU host (one process owns every chip) one; on CPU
    :data:`CPU_WORKERS` (at most one per core): while one worker compiles, mostly on one
    thread, the other trains. Measured on 2 cores (the locality study's 8 quick runs):
    51.9 s with 2 workers, 63.7 s with 1, 59.0 s with 3, the same results to the bit."""
    gpus = visible_gpus()
    if gpus:
        return len(gpus)
    if glob.glob("/dev/accel*") or glob.glob("/dev/vfio/[0-9]*"):  # where libtpu finds TPU chips
        return 1
    return max(1, min(CPU_WORKERS, os.cpu_count() or 1))


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

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()


def run_local(jobs: list[Job], workers: int, on_start: Callback, on_end: Callback, options: LaunchOptions) -> None:
    """Run jobs on ``workers`` long-lived worker processes; a worker that dies
    fails its job only, and a new one takes its slot (and its GPU)."""
    queue = list(jobs)
    gpus = visible_gpus()
    pool: list[_Worker] = []
    try:
        while queue or any(w.job for w in pool):
            for worker in pool:
                if worker.job is None and queue:
                    job = queue.pop(0)
                    worker.submit(job)
                    on_start(job)
            free_slots = [s for s in range(workers) if s not in {w.slot for w in pool}]
            while queue and free_slots:
                worker = _Worker(free_slots.pop(0), gpus, workers)
                pool.append(worker)
                job = queue.pop(0)
                worker.submit(job)
                on_start(job)
            busy = {w.proc.stdout: w for w in pool if w.job is not None}
            ready, _, _ = select.select(list(busy), [], [], 0.2)
            for stream in ready:
                worker = busy[stream]
                line = stream.readline()
                job, worker.job = worker.job, None
                if line:
                    on_end(job, json.loads(line))
                else:  # the worker died mid-job (a crash or a kill): fail the job, replace the worker
                    worker.stop()
                    pool.remove(worker)
                    on_end(
                        job, {"ok": False, "error": _last_line(job.log) or f"worker died (exit status {worker.proc.returncode})"}
                    )
    finally:
        for worker in pool:  # finished or interrupted: stop the workers (an interrupted run keeps its checkpoints)
            worker.stop()


# -- Ray --------------------------------------------------------------------------------
def _crash(e: BaseException) -> dict:
    """A job whose process failed outside ``run_logged``: one line of why."""
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip()
    return {"ok": False, "error": f"{type(cause).__name__}: {text.splitlines()[-1][:300] if text else ''}"}


def run_ray(jobs: list[Job], workers: int | None, on_start: Callback, on_end: Callback, options: LaunchOptions) -> None:
    import ray

    from research.sweep.jobs import run_logged

    if not ray.is_initialized():
        ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))

    @ray.remote
    def task(request):
        return {**run_logged(request), "node": ray.get_runtime_context().get_node_id()}

    # Default: one run per GPU, else one per node (a run's JAX already uses a node's cores).
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    in_flight = workers or max(1, gpus or min(nodes, cpus))
    options_ = {"num_cpus": 1, "num_gpus": 1 if gpus else 0}
    pending, queue = {}, list(jobs)
    while queue or pending:
        while queue and len(pending) < in_flight:
            job = queue.pop(0)
            pending[task.options(**options_).remote(job.request())] = job
            on_start(job)
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as e:  # the task's process died (not a run that raised: run_logged records those)
                outcome = _crash(e)
            on_end(job, outcome)


# -- SLURM (submitit) -------------------------------------------------------------------
def run_slurm(jobs: list[Job], workers: int | None, on_start: Callback, on_end: Callback, options: LaunchOptions) -> None:
    """Each job one SLURM job; at most ``workers`` in the queue at once (default: all)."""
    import submitit

    from research.sweep.jobs import run_logged

    folder = jobs[0].workdir.parent.parent / "slurm" if jobs else Path("slurm")
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=options.slurm_cluster)
    parameters = {"timeout_min": options.slurm_time_min, "cpus_per_task": options.slurm_cpus, "gpus_per_node": options.slurm_gpus}
    if options.slurm_partition:
        parameters["slurm_partition"] = options.slurm_partition
    executor.update_parameters(name="cvd", **parameters)
    in_flight = workers or len(jobs)
    pending: dict = {}
    queue = list(jobs)
    try:
        while queue or pending:
            while queue and len(pending) < in_flight:
                job = queue.pop(0)
                pending[job.run_id] = (executor.submit(run_logged, job.request()), job)
                on_start(job)
            finished = [rid for rid, (handle, _) in pending.items() if handle.done()]
            for rid in finished:
                handle, job = pending.pop(rid)
                try:
                    outcome = handle.result()
                except Exception as e:  # the SLURM job failed outside run_logged (time limit, node failure)
                    outcome = _crash(e)
                on_end(job, outcome)
            if not finished:
                time.sleep(0.5)
    finally:  # interrupted: cancel what is queued or running, so a rerun does not race it
        for handle, _ in pending.values():
            handle.cancel(check=False)


RUNNERS = {"local": run_local, "ray": run_ray, "slurm": run_slurm}


def launch(name: str, jobs: list[Job], workers: int | None, on_start: Callback, on_end: Callback, options: LaunchOptions) -> None:
    """Run ``jobs`` with launcher ``name`` (checked by :func:`check_launcher`)."""
    if name == "local":
        workers = workers or default_workers()
    RUNNERS[name](jobs, workers, on_start, on_end, options)
