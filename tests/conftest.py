"""Shared test set-up: tiny shapes, strict numerics, isolated caches."""

from __future__ import annotations

import os
import tempfile

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting

# Every run builds a new Engine whose jitted programs compile afresh, and many tests train
# the same tiny configs: a per-session persistent compilation cache turns those repeats into
# loads of the same executables (same numbers; an executable still counts in a run's
# ``compiles``). In this process only: subprocesses (sweep workers, `cvd train`) keep their
# own settings. Not jax_disable_most_optimizations: it changes float rounding (lecun_kernel
# stops matching lecun_normal bit for bit).
_COMPILE_CACHE = tempfile.TemporaryDirectory(prefix="cvd-tests-jax-cache-")
jax.config.update("jax_compilation_cache_dir", _COMPILE_CACHE.name)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)  # not the many tiny eager-op programs
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


@pytest.fixture(autouse=True, scope="session")
def _data_cache(tmp_path_factory):
    """Generated data sets go to a per-session cache unless CVD_CACHE is set."""
    if "CVD_CACHE" not in os.environ:
        os.environ["CVD_CACHE"] = str(tmp_path_factory.mktemp("cvd_cache"))
    yield


def pytest_terminal_summary(terminalreporter):
    """The reliability suite's totals: faults injected and bad inputs tried (its ``tally``
    fixture records them as user properties, which reach here from xdist workers too)."""
    counts = {"faults": 0, "bad_inputs": 0}
    for report in (r for reports in terminalreporter.stats.values() for r in reports):
        for name, n in getattr(report, "user_properties", ()) if getattr(report, "when", None) == "call" else ():
            if name.startswith("tally:"):
                counts[name.removeprefix("tally:")] += n
    if counts["faults"] or counts["bad_inputs"]:
        failed = sum("tests/reliability/" in report.nodeid for report in terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"reliability: {counts['faults']} faults injected, {counts['bad_inputs']} bad inputs tried; "
            + ("nothing lost, nothing half-written" if not failed else f"{failed} reliability tests FAILED")
        )
