"""One sweep job: a study config plus overrides, trained (and probed) into its run directory.

``run_logged(request)`` is what every launcher runs: in a long-lived worker
process (the local launcher, ``python -m research.sweep.worker``), in a Ray
task, or in a SLURM job (submitit). So every launcher produces the same files,
the same log (``DIR/logs/<run>.log``: the run's output, its progress lines and,
on failure, the traceback) and the same outcome ``{"ok", "error"}``. It turns
on JAX's persistent compilation cache in the sweep directory, so a repeated
sweep reuses compiled programs.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import jax

from research.config import load_config
from research.errors import UserError
from research.pipeline import train_and_probe
from research.rundir import FINISHED


def enable_compilation_cache(cache_dir: Path) -> None:
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def execute_job(spec: str, overrides: dict, workdir: str, cache_dir: str | None = None) -> dict:
    """Train one run and run its final probes; returns its summary. Its progress lines go to
    stderr: the run's log under the local launcher."""
    if cache_dir:
        enable_compilation_cache(Path(cache_dir))
    config = load_config(spec, overrides)
    return train_and_probe(config, workdir, progress=True)


def run_logged(request: dict) -> dict:
    """Run one job (``{"config", "overrides", "workdir", "cache_dir", "log"}``) with this
    process's stdout and stderr sent to its log file; returns ``{"ok", "error"}``."""
    Path(request["log"]).parent.mkdir(parents=True, exist_ok=True)
    log = open(request["log"], "a")
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        summary = execute_job(request["config"], request["overrides"], request["workdir"], request.get("cache_dir"))
        status = summary.get("status")
        finished = status in FINISHED
        result = {"ok": finished, "error": None if finished else summary.get("error") or f"status {status}"}
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        result = {"ok": False, "error": f"error: {' '.join(str(e).split())}"}
    except Exception as e:  # a run that raises is recorded; the process serves the next job
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        log.close()
    return result
