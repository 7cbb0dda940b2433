"""The local launcher's worker process: ``python -m research.sweep.worker``.

Runs one job (:func:`research.sweep.jobs.execute_job`) in its own JAX
process and exits 0 (done or diverged), 1 (failed) or 2 (bad input). It asks
Linux to kill it when the launcher dies, so no orphan keeps writing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from research.errors import UserError
from research.sweep.jobs import execute_job


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
