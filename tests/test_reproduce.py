"""``cvd reproduce``'s bookkeeping: a reproduction stopped and resumed reports the time it
took in all, not only its last invocation's (the paper run of 2026-12-02 was resumed)."""

import itertools
import json
from types import SimpleNamespace

import pytest

from research import reproduce


@pytest.fixture
def stages(monkeypatch):
    """Every stage of ``cvd reproduce`` stubbed to do nothing: one study that finishes at once."""
    monkeypatch.setattr(reproduce, "STUDIES", ("weight_sharing",))
    monkeypatch.setattr(reproduce, "run_sweeps", lambda sweeps, **kwargs: [{"counts": {"done": 1}} for _ in sweeps])
    monkeypatch.setattr(reproduce, "run_reference", lambda *args: [])
    monkeypatch.setattr(reproduce, "missing_data", lambda dirs: {})
    monkeypatch.setattr(reproduce, "analyze", lambda *args, **kwargs: SimpleNamespace(figures=[], claims=[]))


def test_a_resumed_reproduction_sums_each_stage_over_its_invocations(tmp_path, monkeypatch, stages):
    ticks = itertools.count(0.0, 10.0)  # every clock reading is 10 s after the last
    monkeypatch.setattr(reproduce.time, "perf_counter", lambda: next(ticks))

    first = reproduce.reproduce("quick", tmp_path, progress=False)["timing"]
    second = reproduce.reproduce("quick", tmp_path, progress=False)["timing"]

    written = json.loads((tmp_path / "timing.json").read_text())
    assert written["invocations"] == 2
    assert written["seconds"] == {stage: first[stage] + second[stage] for stage in first}
    assert written["seconds"]["sweeps"] == 20.0


def test_a_stopped_reproduction_keeps_the_time_its_sweeps_spent_and_their_worker_seconds(tmp_path, monkeypatch, stages):
    ticks = itertools.count(0.0, 10.0)
    monkeypatch.setattr(reproduce.time, "perf_counter", lambda: next(ticks))
    monkeypatch.setattr(reproduce, "STUDIES", ("weight_sharing", "locality"))

    def stopped_in_locality(sweeps, **kwargs):
        runs = {"conv": {"status": "done", "seconds": 12.5}, "dense": {"status": "done", "seconds": 7.5}}
        (tmp_path / "weight_sharing").mkdir()
        (tmp_path / "weight_sharing" / "sweep.json").write_text(json.dumps({"runs": runs}))
        raise KeyboardInterrupt  # the session ends mid-stage

    monkeypatch.setattr(reproduce, "run_sweeps", stopped_in_locality)
    with pytest.raises(KeyboardInterrupt):
        reproduce.reproduce("quick", tmp_path, progress=False)
    written = json.loads((tmp_path / "timing.json").read_text())
    assert written["seconds"]["sweeps"] == 10.0 and "reference" not in written["seconds"]
    assert written["worker_seconds"] == {"weight_sharing": 20.0} and written["invocations"] == 1


def test_summed_timing_keeps_stages_only_an_earlier_invocation_ran():
    earlier = {"seconds": {"weight_sharing": 3000.0, "total": 3000.0}}  # written before invocations were counted
    summed = reproduce.summed_timing(earlier, {"sweeps": 60.0, "total": 70.0})
    assert summed == {"seconds": {"sweeps": 60.0, "total": 3070.0, "weight_sharing": 3000.0}, "invocations": 2}


def test_an_unreadable_timing_file_is_started_afresh(tmp_path, stages):
    (tmp_path / "timing.json").write_text('{"seconds": {"weight_sh')  # a write cut short
    reproduce.reproduce("quick", tmp_path, progress=False)
    assert json.loads((tmp_path / "timing.json").read_text())["invocations"] == 1
