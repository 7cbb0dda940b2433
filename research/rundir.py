"""Run directories: where a run's files go, how they are written, what they mean.

A run directory (``cvd train --workdir``, or ``DIR/runs/<id>`` of a sweep) holds

* ``config.json``: the config it ran, every model field resolved (defaults
  included), plus ``"provenance"`` (commit, versions, machine: :mod:`research.provenance`);
* ``metrics.jsonl`` and a TensorBoard event file (:mod:`research.train.metrics`);
* ``checkpoints/`` (:mod:`research.train.checkpoint`);
* ``summary.json``: ``status`` (one of :data:`FINISHED`, or ``failed``) and the
  final numbers; ``probes.json`` / ``probes.npz``; ``kernel.json`` for kernel regression.

Every JSON and text file is written atomically (write, fsync, rename), so a
reader never sees half a file. A directory is reused only for the same config:
:func:`prepare_workdir` returns a finished run's summary, lets an unfinished one
resume, and refuses a different config unless told to overwrite it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from research.errors import UserError

FINISHED = ("done", "diverged")
"""Statuses of runs that are complete: never run again by a sweep or by ``cvd train``."""

RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "probes.json", "probes.npz", "kernel.json")


def atomic_write_text(path: Path, text: str) -> None:
    """Write then rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def run_config_json(config) -> dict:
    """``config`` as JSON with the model section resolved, so every run says what it trained."""
    from research.config import config_to_json

    config_json = config_to_json(config)
    config_json["model"] = resolved_model(config_json["model"])
    return config_json


def write_config(workdir: Path, config_json: dict) -> None:
    """``config.json``: the config plus what produced it, written when the run starts (a
    resumed run keeps the provenance of the session that started it)."""
    from research.provenance import provenance

    path = Path(workdir) / "config.json"
    if not path.exists():
        atomic_write_json(path, {**config_json, "provenance": provenance()})


def resolved_model(model: dict) -> dict:
    """A config's model section with every field the model takes, defaults filled in (JSON types)."""
    from research.models import model_defaults

    defaults = json.loads(json.dumps(model_defaults(model["name"])))
    return {**defaults, **model}


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def prepare_workdir(workdir: Path, config_json: dict, overwrite: bool) -> dict | None:
    """Check the workdir; returns a finished run's summary to reuse, else None."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"workdir {workdir} exists and is not a directory")
    existing = workdir / "config.json"
    if not existing.exists():
        if workdir.exists() and any(workdir.iterdir()) and not overwrite:
            raise UserError(f"workdir {workdir} is not empty and holds no run; choose an empty or new directory")
        return None
    try:
        old = json.loads(existing.read_text())
        # As this code would write it: keys added since filled with their defaults, the model
        # resolved (a run written before defaults were stored), provenance left out.
        from research.config import config_from_json

        old = json.loads(json.dumps(run_config_json(config_from_json(old))))
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        old = None
    if overwrite:
        for path in [*(workdir / name for name in RUN_FILES), *workdir.glob("events.out.tfevents*")]:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return None
    if old != config_json:
        changed = _diff_keys(old, config_json) if isinstance(old, dict) else ["(unreadable config.json)"]
        raise UserError(
            f"workdir {workdir} holds a run with a different config (differs in: {', '.join(changed[:6])}); "
            "pass --overwrite to replace it or choose another --workdir"
        )
    summary_path = workdir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("status") in FINISHED:
            return summary
    return None


def make_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to workdir {workdir}: {e.strerror or e}") from None
