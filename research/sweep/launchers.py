"""Launchers: run sweep jobs and report each one's outcome as it ends.

* ``local``: a pool of long-lived worker processes (``python -m
  research.sweep.worker``), each running one job at a time in its own
  JAX process: a run that raises is recorded, a worker that crashes or is
  killed fails its one job and is replaced, never the sweep. Default one
  worker per device; on CPU one.
* ``ray``: each job a Ray task with its CPU/GPU resources, on a local Ray
  (``ray.init()``) or an existing cluster (``--ray-address``). Optional extra.

A launcher calls ``on_start(job)`` and ``on_end(job, outcome)`` with outcome
``{"ok": bool, "error": str | None}``; the sweep reads statuses from the run
directories' ``summary.json``.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from research.errors import UserError

LAUNCHERS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    run_id: str
    spec: str
    overrides: dict
    workdir: Path
    log: Path
    cache_dir: Path


def _last_line(path: Path) -> str | None:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


def default_workers() -> int:
    try:
        import jax

        return 1 if jax.default_backend() == "cpu" else jax.device_count()
    except Exception:
        return 1


class _Worker:
    """One long-lived ``research.sweep.worker`` process and its current job."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "research.sweep.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
            text=True,
            bufsize=1,
        )
        self.job: Job | None = None

    def submit(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self.job = job
        request = {
            "config": job.spec,
            "workdir": str(job.workdir),
            "overrides": job.overrides,
            "cache_dir": str(job.cache_dir),
            "log": str(job.log),
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()


def run_local(jobs: list[Job], workers: int, on_start: Callable, on_end: Callable) -> None:
    """Run jobs on ``workers`` long-lived worker processes; a worker that dies
    fails its job only, and a new one takes its place."""
    queue = list(jobs)
    pool: list[_Worker] = []
    try:
        while queue or any(w.job for w in pool):
            for worker in pool:
                if worker.job is None and queue:
                    job = queue.pop(0)
                    worker.submit(job)
                    on_start(job)
            while queue and len(pool) < workers:
                worker = _Worker()
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


def run_ray(jobs: list[Job], workers: int, on_start: Callable, on_end: Callable, address: str | None = None) -> None:
    try:
        import ray
    except ImportError:
        raise UserError("the ray launcher needs Ray: pip install 'conv-vs-dense[ray]'") from None
    from research.sweep.jobs import execute_job

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    gpus = ray.cluster_resources().get("GPU", 0)

    @ray.remote
    def task(spec, overrides, workdir, cache_dir):
        summary = execute_job(spec, overrides, workdir, cache_dir)
        return summary.get("status")

    resources = {"num_cpus": 1, "num_gpus": 1 if gpus else 0}
    pending = {}
    queue = list(jobs)
    while queue or pending:
        while queue and len(pending) < workers:
            job = queue.pop(0)
            ref = task.options(**resources).remote(job.spec, job.overrides, str(job.workdir), str(job.cache_dir))
            pending[ref] = job
            on_start(job)
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            job = pending.pop(ref)
            try:
                status = ray.get(ref)
                on_end(
                    job,
                    {
                        "ok": status in ("done", "diverged"),
                        "error": None if status in ("done", "diverged") else f"status {status}",
                    },
                )
            except Exception as e:  # the task raised: one line of it, the run is marked failed
                cause = getattr(e, "cause", None) or e
                on_end(
                    job,
                    {
                        "ok": False,
                        "error": f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1][:300] if str(cause).strip() else ''}",
                    },
                )
