"""Counts for the reliability suite: every fault injected and bad input tried is
tallied as the test's ``user_properties``; ``tests/conftest.py`` sums them in the
terminal summary (the same totals whether the tests run in one process or in
pytest-xdist workers) and says whether anything was lost."""

from __future__ import annotations

import pytest

KINDS = ("faults", "bad_inputs")


@pytest.fixture()
def tally(request):
    """``tally("faults")`` after injecting a fault; ``tally("bad_inputs")`` after a refused input."""

    def add(kind: str, n: int = 1) -> None:
        assert kind in KINDS, kind
        request.node.user_properties.append((f"tally:{kind}", n))

    return add
