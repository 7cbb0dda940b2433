"""Shared test set-up: tiny shapes, strict numerics, isolated caches."""

from __future__ import annotations

import os

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")  # no silent broadcasting


@pytest.fixture(autouse=True, scope="session")
def _data_cache(tmp_path_factory):
    """Generated data sets go to a per-session cache unless CVD_CACHE is set."""
    if "CVD_CACHE" not in os.environ:
        os.environ["CVD_CACHE"] = str(tmp_path_factory.mktemp("cvd_cache"))
    yield
