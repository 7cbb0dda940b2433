"""One sweep job: a study config plus overrides, trained (and probed) into its run directory.

``execute_job`` is what every launcher runs, in-process (Ray tasks) or in a
long-lived worker process (``python -m research.sweep.worker``, the local launcher),
so both produce the same files. It turns on JAX's persistent compilation
cache in the sweep directory, so a repeated sweep reuses compiled programs.
"""

from __future__ import annotations

from pathlib import Path


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
