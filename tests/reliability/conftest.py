"""Shared by the reliability suite: a finished small run (:func:`finished_run`), and counts:
every fault injected and bad input tried is tallied, and the terminal summary reports the
totals and whether anything was lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.cli import main
from tests.helpers import SMALL_TRAIN

COUNTS = {"faults": 0, "bad_inputs": 0, "lost": 0}


@pytest.fixture()
def tally():
    """``tally("faults")`` after injecting a fault; ``tally("bad_inputs")`` after a refused input."""

    def add(kind: str, n: int = 1) -> None:
        COUNTS[kind] += n

    return add


def pytest_terminal_summary(terminalreporter):
    if COUNTS["faults"] or COUNTS["bad_inputs"]:
        failed = sum("tests/reliability/" in report.nodeid for report in terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"reliability: {COUNTS['faults']} faults injected, {COUNTS['bad_inputs']} bad inputs tried; "
            + ("nothing lost, nothing half-written" if not failed else f"{failed} reliability tests FAILED")
        )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished ``cvd train`` run of :data:`tests.helpers.SMALL_TRAIN`, shared by the suite:
    read it, or copy it to change it."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    assert main([*SMALL_TRAIN, "--workdir", str(workdir)]) == 0
    return workdir
