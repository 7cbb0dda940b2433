"""The Ray and SLURM backends of :func:`research.sweep.scheduler.schedule`.

* :class:`RayBackend`: each job a Ray task on a local Ray (``ray.init()``) or an
  existing cluster (``--ray-address``); a task asks for one CPU, and one GPU where
  the cluster has GPUs. Its :attr:`~RayBackend.capacity` (the cluster's GPUs,
  CPUs and live nodes) is what the worker-count rule reads.
* :class:`SlurmBackend`: each job a SLURM job through submitit, its files under
  the sweep's ``slurm/`` folder (``--slurm-cluster local``: submitit's local
  executor, no SLURM needed).

Both run :func:`research.sweep.jobs.run_logged`; a job whose process fails outside
it (a dead Ray worker, a SLURM time limit or node failure) ends with a one-line
error (:func:`crashed`). ray and submitit are optional, imported only here when
used (:func:`research.sweep.launchers.check_launcher` checks them first).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.sweep.jobs import run_logged
from research.sweep.scheduler import Capacity, Outcome

if TYPE_CHECKING:
    from research.sweep.launchers import Job, LaunchOptions


def crashed(e: BaseException) -> Outcome:
    """The outcome of a job whose process failed outside ``run_logged``: one line of why."""
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip()
    return {"ok": False, "error": f"{type(cause).__name__}: {text.splitlines()[-1][:300] if text else ''}"}


def ray_task(request: dict) -> Outcome:
    """One job in a Ray task: its outcome and the node it ran on."""
    import ray

    return {**run_logged(request), "node": ray.get_runtime_context().get_node_id()}


class RayBackend:
    """Jobs as Ray tasks; starts a local Ray, or joins ``options.ray_address``, unless one is up."""

    def __init__(self, options: LaunchOptions):
        import ray

        if not ray.is_initialized():
            ray.init(address=options.ray_address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        self.capacity = Capacity(gpus=gpus, cpus=cpus, nodes=nodes)
        self.ray = ray
        self.task = ray.remote(ray_task).options(num_cpus=1, num_gpus=1 if gpus else 0)

    def submit(self, job: Job) -> Any:
        return self.task.remote(job.request())

    def wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        done, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        return [(ref, self._outcome(ref)) for ref in done]

    def _outcome(self, ref: Any) -> Outcome:
        try:
            return self.ray.get(ref)
        except Exception as e:  # the task's process died (not a run that raised: run_logged records those)
            return crashed(e)

    def cancel(self, handles: Sequence[Any]) -> None:
        for ref in handles:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # already ended, or Ray is going down: nothing left to stop
                pass

    def close(self) -> None:
        """Ray stays up: the next attempt of the sweep reuses it."""


class SlurmBackend:
    """Jobs as SLURM jobs through submitit, their files under ``folder/<job id>``."""

    def __init__(self, folder: Path, options: LaunchOptions):
        import submitit

        self.executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=options.slurm_cluster)
        parameters = {
            "timeout_min": options.slurm_time_min,
            "cpus_per_task": options.slurm_cpus,
            "gpus_per_node": options.slurm_gpus,
        }
        if options.slurm_partition:
            parameters["slurm_partition"] = options.slurm_partition
        self.executor.update_parameters(name="cvd", **parameters)

    def submit(self, job: Job) -> Any:
        return self.executor.submit(run_logged, job.request())

    def wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[Any, Outcome]]:
        done = [handle for handle in handles if handle.done()]
        if not done:  # SLURM has no call that blocks until a job ends: look again after the timeout
            time.sleep(timeout)
            done = [handle for handle in handles if handle.done()]
        return [(handle, self._outcome(handle)) for handle in done]

    @staticmethod
    def _outcome(handle: Any) -> Outcome:
        try:
            return handle.result()
        except Exception as e:  # the SLURM job failed outside run_logged (time limit, node failure)
            return crashed(e)

    def cancel(self, handles: Sequence[Any]) -> None:
        """Cancel what is queued or running, so a rerun does not race it."""
        for handle in handles:
            handle.cancel(check=False)

    def close(self) -> None:
        """Nothing held between jobs."""
