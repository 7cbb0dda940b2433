"""One run end to end: train (recording tracked probes), then the final probes.

``train_and_probe(config, workdir)`` is what ``cvd train`` and every sweep job
call. Training lives in ``research.train`` and knows nothing of probes; the
probes read the run's files. This module is the one place that joins them,
keeping the flow one way: data/models -> train -> workdir -> probes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from research.errors import UserError, unknown
from research.kernels.regression import kernel_regression
from research.probes import expand, missing_probes, run_probes, tracking_functions
from research.rundir import FINISHED, RunDir
from research.train import train_and_evaluate
from research.train.rate_choice import chosen_replicas

TASKS = ("train", "kernel_regression")


def probe_config(config) -> tuple[list[str], dict]:
    """``(final probe names, {tracked probe name: tracker})``, checked."""
    final, tracked = config.probes.final, config.probes.track
    if isinstance(final, str) or isinstance(tracked, str):
        raise UserError("probes.final and probes.track are lists of probe names, e.g. ('translation',)")
    return expand(list(final)), tracking_functions(list(tracked))


def train_and_probe(config, workdir: str | Path, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Train (or reuse a finished run), then run the final probes it still lacks on the replicas
    of its chosen learning rate (:func:`research.train.rate_choice.chosen_replicas`), holding the
    run directory's lock throughout. A config with ``task = "kernel_regression"`` fits its
    infinite-width kernel instead (no probes)."""
    task = config.task
    if task == "kernel_regression":
        return kernel_regression(config, workdir)
    if task != "train":
        raise unknown("task", task, TASKS)

    final, trackers = probe_config(config)
    run_dir = RunDir(workdir)
    with run_dir.lock("train"):
        summary = train_and_evaluate(config, workdir, overwrite=overwrite, progress=progress, track=trackers)
        if summary.get("status") == "done" and final:
            todo = missing_probes(Path(workdir), final)
            if todo:  # the analysis reads probes at the chosen rate only: the other rates' replicas are not probed
                run_probes(workdir, todo, replicas=chosen_replicas(summary.get("replicas") or []))
        if not config.train.keep_final_checkpoint and summary.get("status") in FINISHED and run_dir.checkpoints.is_dir():
            shutil.rmtree(run_dir.checkpoints)  # finished and probed: its numbers are in its summary and probe files
    return summary


def run_complete(run_dir: Path, config) -> bool:
    """Whether a finished run also has every final probe its config asks for."""
    final, _ = probe_config(config)
    return not final or not missing_probes(run_dir, final)
