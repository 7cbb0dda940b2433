"""Shared by the reliability suite: a finished small run (:func:`finished_run`), and counts:
every fault injected and bad input tried is tallied as the test's ``user_properties``;
``tests/conftest.py`` sums them in the terminal summary (the same totals whether the
tests run in one process or in pytest-xdist workers) and says whether anything was lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.cli import main
from tests.helpers import SMALL_TRAIN

KINDS = ("faults", "bad_inputs")


@pytest.fixture()
def tally(request):
    """``tally("faults")`` after injecting a fault; ``tally("bad_inputs")`` after a refused input."""

    def add(kind: str, n: int = 1) -> None:
        assert kind in KINDS, kind
        request.node.user_properties.append((f"tally:{kind}", n))

    return add


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished ``cvd train`` run of :data:`tests.helpers.SMALL_TRAIN`, shared by the suite:
    read it, or copy it to change it."""
    workdir = tmp_path_factory.mktemp("finished") / "run"
    assert main([*SMALL_TRAIN, "--workdir", str(workdir)]) == 0
    return workdir
