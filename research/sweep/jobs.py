"""One sweep job: a study config plus overrides, trained (and probed) into its run directory.

``execute_job`` is what every launcher runs, in-process (Ray tasks) or in a
fresh worker process (``python -m research.sweep.jobs``, the local launcher),
so both produce the same files. It turns on JAX's persistent compilation
cache in the sweep directory, so a repeated sweep reuses compiled programs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from research.errors import UserError


def enable_compilation_cache(cache_dir: Path) -> None:
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def build_config(spec: str, overrides: dict):
    from research.config import load_config_file, set_value

    config = load_config_file(spec)
    for key, value in overrides.items():
        set_value(config, key, value)
    return config


def execute_job(spec: str, overrides: dict, workdir: str, cache_dir: str | None = None) -> dict:
    """Train one run and run its final probes; returns its summary."""
    from research.pipeline import train_and_probe

    if cache_dir:
        enable_compilation_cache(Path(cache_dir))
    config = build_config(spec, overrides)
    return train_and_probe(config, workdir, progress=False)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its launcher dies, so no orphan keeps writing."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before we asked
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    die_with_parent()
    parser = argparse.ArgumentParser(description="Run one sweep job (used by the local launcher).")
    parser.add_argument("--config", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--overrides", required=True, help="JSON object of config overrides")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)
    try:
        summary = execute_job(args.config, json.loads(args.overrides), args.workdir, args.cache_dir)
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0 if summary.get("status") in ("done", "diverged") else 1


if __name__ == "__main__":
    sys.exit(main())
