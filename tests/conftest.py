"""Shared test set-up: tiny shapes, strict numerics, caches shared by the whole test session."""

from __future__ import annotations

import os
import tempfile

import jax

jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting

# Every run builds a new Engine whose jitted programs compile afresh, and many tests (and the
# sweeps, `cvd train` processes and Ray workers they start) train the same tiny configs and
# load the same generated data sets. So the whole test session shares one directory: the
# pytest process that starts first makes it and exports it, so xdist workers and every
# subprocess inherit it.
# - jax/: a persistent compilation cache, turning repeats into loads of the same executables
#   (same numbers; an executable still counts in a run's ``compiles``). A size bound turns on
#   JAX's file lock, which makes concurrent readers and writers safe. Not
#   jax_disable_most_optimizations: it changes float rounding (lecun_kernel stops matching
#   lecun_normal bit for bit).
# - data/: generated data sets (``CVD_CACHE``, unless set; written atomically).
if "CVD_TEST_SESSION" not in os.environ:
    _SESSION = tempfile.TemporaryDirectory(prefix="cvd-tests-")  # removed when this process ends
    os.environ["CVD_TEST_SESSION"] = _SESSION.name
    os.environ.setdefault("CVD_CACHE", os.path.join(_SESSION.name, "data"))
JAX_CACHE = {
    "jax_compilation_cache_dir": os.path.join(os.environ["CVD_TEST_SESSION"], "jax"),
    "jax_persistent_cache_min_compile_time_secs": 0.2,  # not the many tiny eager-op programs
    "jax_persistent_cache_min_entry_size_bytes": -1,
    "jax_compilation_cache_max_size": 8 << 30,
}
for _name, _value in JAX_CACHE.items():
    jax.config.update(_name, _value)  # this process imported jax before: set it here
    os.environ[_name.upper()] = str(_value)  # and subprocesses read it from their environment


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
