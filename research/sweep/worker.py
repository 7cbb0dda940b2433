"""The local launcher's worker process: ``python -m research.sweep.worker``.

A long-lived JAX process that runs jobs (:func:`research.sweep.jobs.run_logged`)
one at a time: it reads one JSON job per line on stdin, sends the job's
output to the job's log file, and answers one JSON line ``{"ok", "error"}``
on stdout. Reusing the process saves the interpreter and JAX start-up per run
(measured: benchmarks/README.md, "Measurements behind rules in the code").
Compiled programs do not outlive their job: the worker clears JAX's in-memory
caches after each one (a sweep's runs rarely share a program, and a long sweep
would otherwise grow without bound); the persistent cache in
the sweep directory still serves a repeated program. A job that raises is
recorded and the worker goes on, and a worker that dies (a crash, a kill) is
replaced by the launcher. It asks Linux to kill it when the launcher dies, so
no orphan keeps writing.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

import jax

from research.sweep.jobs import run_logged


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its launcher dies, so no orphan keeps writing."""
    parent = os.getppid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the launcher died before we asked
        os._exit(1)


def serve() -> int:
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        if not line.strip():
            continue
        result = run_logged(json.loads(line))
        jax.clear_caches()  # compiled programs of finished runs are not needed again
        answers.write(json.dumps(result) + "\n")
    return 0


def main() -> int:
    die_with_parent()
    return serve()


if __name__ == "__main__":
    sys.exit(main())
