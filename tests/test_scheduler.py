"""The scheduler behind every launcher, on an in-memory backend; the one worker-count rule."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence

import pytest

from research.sweep.scheduler import Capacity, Outcome, schedule, workers_for


class FakeBackend:
    """Jobs that end in a random order, one or two a wait; job ``"bad"`` fails; after
    ``interrupt_after`` waits, Ctrl-C."""

    def __init__(self, seed: int = 0, interrupt_after: int | None = None):
        self.rng, self.interrupt_after = random.Random(seed), interrupt_after
        self.ids, self.running = itertools.count(), {}
        self.most = self.waits = 0
        self.cancelled: list[int] = []

    def submit(self, job: str) -> Hashable:
        handle = next(self.ids)
        self.running[handle] = job
        self.most = max(self.most, len(self.running))
        return handle

    def wait(self, handles: Sequence[Hashable], timeout: float) -> list[tuple[Hashable, Outcome]]:
        assert sorted(handles) == sorted(self.running)
        self.waits += 1
        if self.waits == self.interrupt_after:
            raise KeyboardInterrupt
        ended = self.rng.sample(sorted(self.running), k=min(len(self.running), self.rng.choice([0, 1, 2])))
        outcomes = []
        for handle in ended:
            job = self.running.pop(handle)
            outcomes.append((handle, {"ok": job != "bad", "error": "boom" if job == "bad" else None}))
        return outcomes

    def cancel(self, handles: Sequence[Hashable]) -> None:
        self.cancelled.extend(handles)

    def close(self) -> None:
        pass


def _events(jobs, backend, slots) -> list[tuple]:
    events: list[tuple] = []
    schedule(jobs, backend, slots, lambda job: events.append(("start", job)), lambda job, o: events.append(("end", job, o)))
    return events


@pytest.mark.parametrize("slots", [1, 3, 20])
def test_at_most_slots_jobs_run_at_once_and_each_starts_before_it_ends(slots):
    jobs = [f"job{i}" for i in range(12)]
    backend = FakeBackend(seed=slots)
    events = _events(jobs, backend, slots)
    assert backend.most == min(slots, len(jobs)) and not backend.running and not backend.cancelled
    assert [e[1] for e in events if e[0] == "start"] == jobs  # in order
    assert sorted(e[1] for e in events if e[0] == "end") == sorted(jobs)  # each ends once
    for job in jobs:
        assert events.index(("start", job)) < next(i for i, e in enumerate(events) if e[:2] == ("end", job))
    in_flight = 0
    for event in events:
        in_flight += 1 if event[0] == "start" else -1
        assert 0 <= in_flight <= slots


def test_a_failing_job_is_an_outcome_and_the_others_still_run():
    jobs = ["a", "bad", "b", "c"]
    events = _events(jobs, FakeBackend(seed=1), slots=2)
    outcomes = {e[1]: e[2] for e in events if e[0] == "end"}
    assert outcomes["bad"] == {"ok": False, "error": "boom"}
    assert all(outcomes[job]["ok"] for job in ("a", "b", "c"))


def test_ctrl_c_cancels_the_jobs_in_flight_and_is_raised_again():
    backend = FakeBackend(seed=2, interrupt_after=3)
    started, ended = [], []
    with pytest.raises(KeyboardInterrupt):
        schedule([f"job{i}" for i in range(10)], backend, 3, started.append, lambda job, o: ended.append(job))
    assert backend.cancelled and sorted(backend.cancelled) == sorted(backend.running)
    assert sorted(backend.running.values()) == sorted(set(started) - set(ended))  # those, and only those
    assert len(started) < 10, "nothing is submitted after Ctrl-C"


def test_slots_below_one_are_refused():
    with pytest.raises(ValueError, match="slots"):
        schedule(["a"], FakeBackend(), 0, print, print)


def test_one_rule_gives_every_launcher_its_workers():
    cpu, gpus, tpu = Capacity(cpus=8), Capacity(gpus=4, cpus=64), Capacity(cpus=96, tpu=True)
    assert [workers_for(None, "local", capacity=c) for c in (cpu, gpus, tpu, Capacity(cpus=1))] == [2, 4, 1, 1]
    assert workers_for(None, "ray", capacity=Capacity(gpus=0, cpus=2, nodes=2)) == 2  # one per node
    assert workers_for(None, "ray", capacity=Capacity(gpus=0, cpus=1, nodes=3)) == 1  # at most its CPUs
    assert workers_for(None, "ray", capacity=Capacity(gpus=8, cpus=64, nodes=2)) == 8  # one per GPU
    assert workers_for(None, "slurm", capacity=Capacity(jobs=7)) == 7  # every job queued
    assert workers_for(5, "ray", capacity=Capacity(gpus=8)) == 5 and workers_for(None, "ray") is None  # not known yet
