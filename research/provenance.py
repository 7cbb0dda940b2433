"""What produced a result: the code's git commit (and whether the tree had
uncommitted changes), the versions of the packages that compute, and the
machine. Every run's ``config.json`` carries it under ``"provenance"`` (left
out when a resumed run's config is compared), ``cvd reproduce`` writes it into
``timing.json``, and the report opens with it.
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import jax

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGES = ("conv-vs-dense", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")


@functools.cache
def git_state() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the code's checkout (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": bool(status.strip()) if status is not None else None}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def machine() -> dict:
    """Backend, devices and cores. Starts JAX's backend (call it where JAX runs anyway)."""
    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "devices": f"{len(devices)} x {devices[0].device_kind}",
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # research.xla_flags sets some: they pick kernels
    }


def provenance(*, with_machine: bool = True) -> dict:
    """Commit, dirty flag, package versions, (machine), and the time, UTC."""
    record = {
        **git_state(),
        "versions": package_versions(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if with_machine:
        record["machine"] = machine()
    return record


__all__ = ["git_state", "machine", "package_versions", "provenance"]
