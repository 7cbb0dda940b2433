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
