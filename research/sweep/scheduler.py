"""The one scheduler behind every launcher: at most ``slots`` jobs in flight on a backend.

A backend (:class:`Backend`) is where jobs run: long-lived local worker
processes, Ray tasks or SLURM jobs (:mod:`research.sweep.launchers`,
:mod:`research.sweep.cluster`). It only submits a job, waits for some to end and
cancels; :func:`schedule` owns the queue, how many run at once and the
callbacks. A job that fails is an outcome (``{"ok": False, "error": ...}``) from
the backend, never an exception, so it does not stop the others. An exception
or Ctrl-C in the loop cancels what is in flight (a run keeps its checkpoints)
and is raised again.

:func:`workers_for` is the one rule for how many jobs a sweep keeps in flight
(``--workers``, and each launcher's default).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Outcome = dict[str, Any]  # {"ok": bool, "error": str | None}, plus "node" where the backend knows it
POLL_S = 0.5  # how long one wait may block: the longest a finished job waits for its on_end


class Backend(Protocol):
    """Where jobs run. A handle is hashable and stands for one job until it ends."""

    def submit(self, job: Any) -> Hashable:
        """Start ``job``; returns its handle."""
        ...

    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[tuple[Hashable, Outcome]]:
        """The handles among ``handles`` that ended, each with its outcome; waits up to
        ``timeout`` seconds for one (an empty list when none ended by then)."""
        ...

    def cancel(self, handles: Sequence[Hashable]) -> None:
        """Stop the jobs of ``handles`` (interrupted: they end without an outcome)."""
        ...

    def close(self) -> None:
        """Let go of what the backend holds between jobs (the local worker processes)."""
        ...


# -- how many in flight -----------------------------------------------------------------
CPU_WORKERS = 2  # two local workers on CPU: measured in benchmarks/README.md, "Measurements behind rules in the code"
# Final probes that time the run (compute cost: step time, fraction of peak); a second local
# worker training beside one would change what it measures.
TIMED_PROBES = {"cost"}


def times_itself(config) -> bool:
    """Whether a run's final probes time it (:data:`TIMED_PROBES`): it must not share the host."""
    return bool(TIMED_PROBES & set(config.probes.final))


@dataclass(frozen=True)
class Capacity:
    """What a launcher runs on: GPUs and CPU cores (local: this host's; ray: the cluster's),
    live nodes (ray), a TPU host (local; one process owns every chip), jobs to run (slurm)."""

    gpus: int = 0
    cpus: int = 1
    nodes: int = 1
    tpu: bool = False
    jobs: int = 0


def workers_for(workers: int | None, launcher: str, configs: Iterable = (), capacity: Capacity | None = None) -> int | None:
    """Jobs in flight: ``workers`` as asked (``--workers``); unasked, one for a local sweep
    with a run that times itself (:data:`TIMED_PROBES`), else the launcher's default from its
    ``capacity``, or None while that is not known yet (the launcher asks again with it).

    Defaults: local, one per GPU, on a TPU host one, on CPU :data:`CPU_WORKERS` (at most one
    per core: while one compiles, mostly on one thread, the other trains); ray, one per GPU,
    else one per live node (a run's JAX already uses a node's cores), at most its CPUs;
    slurm, every job (SLURM's queue decides)."""
    if workers is not None:
        return workers
    if launcher == "local" and any(times_itself(c) for c in configs):
        return 1
    if capacity is None:
        return None
    if launcher == "ray":
        return max(1, capacity.gpus or min(capacity.nodes, capacity.cpus))
    if launcher == "slurm":
        return max(1, capacity.jobs)
    if capacity.gpus:
        return capacity.gpus
    return 1 if capacity.tpu else max(1, min(CPU_WORKERS, capacity.cpus))


def schedule(
    jobs: Iterable[Any],
    backend: Backend,
    slots: int,
    on_start: Callable[[Any], None],
    on_end: Callable[[Any, Outcome], None],
    poll_s: float = POLL_S,
) -> None:
    """Run ``jobs`` in order on ``backend``, at most ``slots`` at once: ``on_start(job)``
    once it is submitted, ``on_end(job, outcome)`` once it ended. Returns when every job
    has ended; on an exception (Ctrl-C included) cancels the jobs in flight and raises it."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    queue = deque(jobs)
    running: dict[Hashable, Any] = {}  # handle -> job
    try:
        while queue or running:
            while queue and len(running) < slots:
                job = queue.popleft()
                running[backend.submit(job)] = job
                on_start(job)
            for handle, outcome in backend.wait(list(running), poll_s):
                on_end(running.pop(handle), outcome)
    except BaseException:
        backend.cancel(list(running))
        raise
