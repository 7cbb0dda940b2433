"""The local launcher's worker process: ``python -m research.sweep.worker``.

A long-lived JAX process that runs jobs (:func:`research.sweep.jobs.execute_job`)
one at a time: it reads one JSON job per line on stdin, sends the job's
output to the job's log file, and answers one JSON line ``{"ok", "error"}``
on stdout. Reusing the process saves the interpreter and JAX start-up (about
2 s a run here) and keeps compiled helpers warm; a job that raises is
recorded and the worker goes on, and a worker that dies (a crash, a kill) is
replaced by the launcher. It asks Linux to kill it when the launcher dies, so
no orphan keeps writing.
"""

from __future__ import annotations

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


def _run_logged(job: dict) -> dict:
    """Run one job with this process's stdout and stderr sent to its log file."""
    import traceback

    log = open(job["log"], "a")
    saved = os.dup(1), os.dup(2)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        summary = execute_job(job["config"], job["overrides"], job["workdir"], job.get("cache_dir"))
        status = summary.get("status")
        result = {"ok": status in ("done", "diverged"), "error": None if status in ("done", "diverged") else summary.get("error")}
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        result = {"ok": False, "error": f"error: {' '.join(str(e).split())}"}
    except Exception as e:  # a run that raises is recorded; the worker serves the next job
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


def serve() -> int:
    import jax

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        if not line.strip():
            continue
        result = _run_logged(json.loads(line))
        jax.clear_caches()  # compiled programs of finished runs are not needed again
        answers.write(json.dumps(result) + "\n")
    return 0


def main() -> int:
    die_with_parent()
    return serve()


if __name__ == "__main__":
    sys.exit(main())
