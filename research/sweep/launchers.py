"""Launchers: run sweep jobs and report each one's outcome as it ends.

* ``local``: a pool of worker processes, each job a fresh ``python -m
  research.sweep.worker`` (its own JAX process: a crash or a kill takes down one
  job, never the sweep). Default one worker per device; on CPU one.
* ``ray``: each job a Ray task with its CPU/GPU resources, on a local Ray
  (``ray.init()``) or an existing cluster (``--ray-address``). Optional extra.

A launcher calls ``on_start(job)`` and ``on_end(job, outcome)`` with outcome
``{"ok": bool, "error": str | None}``; the sweep reads statuses from the run
directories' ``summary.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


def run_local(jobs: list[Job], workers: int, on_start: Callable, on_end: Callable) -> None:
    queue = list(jobs)
    running: dict[str, tuple[Job, subprocess.Popen, object]] = {}
    try:
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop(0)
                job.log.parent.mkdir(parents=True, exist_ok=True)
                log = open(job.log, "a")
                cmd = [
                    sys.executable,
                    "-m",
                    "research.sweep.worker",
                    "--config",
                    job.spec,
                    "--workdir",
                    str(job.workdir),
                    "--overrides",
                    json.dumps(job.overrides),
                    "--cache-dir",
                    str(job.cache_dir),
                ]
                running[job.run_id] = (
                    job,
                    subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()),
                    log,
                )
                on_start(job)
            for run_id, (job, proc, log) in list(running.items()):
                if proc.poll() is None:
                    continue
                log.close()
                del running[run_id]
                ok = proc.returncode == 0
                on_end(job, {"ok": ok, "error": None if ok else (_last_line(job.log) or f"exit status {proc.returncode}")})
            time.sleep(0.1)
    finally:
        for _job, proc, log in running.values():  # interrupted: stop the workers, keep their checkpoints
            proc.terminate()
            proc.wait()
            log.close()


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
