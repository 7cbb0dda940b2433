"""Run directories: where a run's files go, how they are written, what they mean.

:class:`RunDir` is the one place that knows a run directory (``cvd train
--workdir``, or ``DIR/runs/<id>`` of a sweep). It holds

* ``config.json``: the config it ran, every model field resolved (defaults
  included), plus ``"provenance"`` (commit, versions, machine: :mod:`research.provenance`);
* ``metrics.jsonl`` (one JSON record per line, written by
  :mod:`research.train.metrics`) and a TensorBoard event file;
* ``checkpoints/`` (:mod:`research.train.checkpoint`);
* ``summary.json``: ``status`` and the final numbers; ``probes.json`` /
  ``probes.npz``; ``kernel.json`` for kernel regression.

A run's status has one rule (:meth:`RunDir.status`): the ``status`` its
``summary.json`` records (``done``, ``diverged`` or ``failed``), else
``interrupted`` when it has checkpoints, else ``pending``. A ``summary.json``
that is unreadable or of the wrong shape is damage, not a result (every file is
written atomically: write, fsync, rename, the temporary file removed if any step
fails, so no write leaves half a file): the run counts as unfinished and its
next start rebuilds the summary from its checkpoints. A directory is reused
only for the same training (:func:`training_identity`: the config less what
only labels the run or chooses its final probes): :meth:`RunDir.prepare`
returns a finished run's summary, lets an unfinished one resume, and refuses a
different config unless told to overwrite it; overwriting removes only the
files a run writes, and never follows a symbolic link. :func:`training_key`
names a training, so that studies whose runs train the same can share one
directory.

Every command that writes into a directory (train and probe into a run, sweep
into its directory, analyze into its report) holds that directory's lock
(:func:`research.locks.workdir_lock`, the file ``.cvd.lock``) while it writes: a second
command that wants it is refused with one line naming the holder.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from research.atomic import atomic_write_json, read_json
from research.config import config_from_json, config_to_json
from research.errors import UserError
from research.locks import LOCK_NAME, workdir_lock
from research.models import model_defaults
from research.provenance import provenance

FINISHED = ("done", "diverged")
"""Statuses of runs that are complete: never run again by a sweep or by ``cvd train``."""

STATUSES = (*FINISHED, "failed", "interrupted", "pending")
"""Every status :meth:`RunDir.status` gives."""

UNREADABLE_SUMMARY = "unreadable summary.json (rebuilt from its checkpoints when the run is started again)"


NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
"""How ``metrics.jsonl`` spells the numbers JSON has no literal for (a diverged replica's loss)."""


def read_metrics(path: Path) -> list[dict]:
    """All records of a ``metrics.jsonl``, with :data:`NON_FINITE` strings read back as floats;
    an unreadable line (a write cut short, bytes that are not UTF-8, JSON that is not a
    record) is skipped with a warning."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(
                    {key: NON_FINITE.get(value, value) if isinstance(value, str) else value for key, value in record.items()}
                )
            else:
                warnings.warn(f"{path}:{number}: skipping a truncated or corrupt metrics line", stacklevel=2)
    return records


def resolved_model(model: dict) -> dict:
    """A config's model section with every field the model takes, defaults filled in (JSON types)."""
    defaults = json.loads(json.dumps(model_defaults(model["name"])))
    return {**defaults, **model}


def run_config_json(config) -> dict:
    """``config`` as JSON with the model section resolved, so every run says what it trained."""
    config_json = config_to_json(config)
    config_json["model"] = resolved_model(config_json["model"])
    return config_json


NOT_TRAINING = (("tag",), ("probes", "final"), ("provenance",))
"""Config keys that do not change what a run trains: a free label, the probes run on the
finished run (a run shared by studies runs the union of theirs), what produced it."""


def training_identity(config_json: dict) -> dict:
    """``config_json`` less :data:`NOT_TRAINING`: two runs with equal identities train the same."""
    identity = json.loads(json.dumps(config_json))
    for *sections, key in NOT_TRAINING:
        section = identity
        for name in sections:
            section = section.get(name, {}) if isinstance(section, dict) else {}
        if isinstance(section, dict):
            section.pop(key, None)
    return identity


def training_key(config_json: dict) -> str:
    """A short name of a run's training (a hash of :func:`training_identity`)."""
    text = json.dumps(training_identity(config_json), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def summary_shape_ok(summary: Any) -> bool:
    """Whether ``summary`` has the shape every reader assumes: an object with a string
    ``status``, ``replicas`` a list of objects, ``dataset`` an object (when present)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
        return False
    replicas, dataset = summary.get("replicas", []), summary.get("dataset", {})
    if not isinstance(replicas, list) or not all(isinstance(r, dict) for r in replicas) or not isinstance(dataset, dict):
        return False
    return isinstance(dataset.get("splits", {}), dict)


def _member(name: str) -> property:
    """A run directory's path to its file (or directory) ``name``."""
    return property(lambda run: run.path / name, doc=f"``{name}`` of the run directory")


@dataclass(frozen=True)
class RunDir:
    """One run directory: its paths, its status and its JSON I/O."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    # -- paths ------------------------------------------------------------------
    config_file = _member("config.json")
    metrics_file = _member("metrics.jsonl")
    summary_file = _member("summary.json")
    probes_file = _member("probes.json")
    probe_arrays_file = _member("probes.npz")
    kernel_file = _member("kernel.json")
    checkpoints = _member("checkpoints")

    @property
    def name(self) -> str:
        return self.path.name

    def run_files(self) -> list[Path]:
        """Every file and directory a run writes (what ``--overwrite`` removes)."""
        files = [self.config_file, self.metrics_file, self.summary_file, self.checkpoints]
        return [*files, self.probes_file, self.probe_arrays_file, self.kernel_file, *self.path.glob("events.out.tfevents*")]

    # -- reading ------------------------------------------------------------------
    def started(self) -> bool:
        """Whether a run started here (its ``config.json`` exists)."""
        return self.config_file.exists()

    def config_json(self) -> dict | None:
        stored = read_json(self.config_file)
        return stored if isinstance(stored, dict) else None

    def summary(self) -> dict | None:
        """``summary.json`` as a dict, or None when missing, unreadable or of the wrong shape."""
        summary = read_json(self.summary_file)
        return summary if summary_shape_ok(summary) else None

    def status(self) -> tuple[str, str | None]:
        """``(status, error)``: the one rule for what state a run is in (see the module docstring)."""
        summary = self.summary()
        if summary is not None:
            status = summary["status"]
            return (status if status in STATUSES else "failed"), summary.get("error")
        damaged = UNREADABLE_SUMMARY if self.summary_file.exists() or self.summary_file.is_symlink() else None
        if self.checkpoints.exists():
            return "interrupted", damaged
        return "pending", damaged

    def finished_summary(self) -> dict | None:
        """The summary of a finished run (status in :data:`FINISHED`), else None."""
        summary = self.summary()
        return summary if summary is not None and summary.get("status") in FINISHED else None

    def metrics(self) -> list[dict]:
        return read_metrics(self.metrics_file)

    def probes(self) -> dict:
        """``probes.json`` (empty when missing or unreadable)."""
        probes = read_json(self.probes_file)
        return probes if isinstance(probes, dict) else {}

    # -- writing --------------------------------------------------------------------
    def write_summary(self, summary: dict) -> None:
        atomic_write_json(self.summary_file, summary)

    def write_config(self, config_json: dict) -> None:
        """``config.json``: the config plus what produced it, written when the run starts (a
        resumed run keeps the provenance of the session that started it)."""
        if not self.config_file.exists():
            atomic_write_json(self.config_file, {**config_json, "provenance": provenance()})

    def lock(self, command: str):
        """This run's :func:`workdir_lock`, re-entrant (a run's training, then its probes)."""
        return workdir_lock(self.path, command, reentrant=True)

    def make(self) -> None:
        """Create the directory and check that it is writable (a one-line UserError if not)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write_test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise UserError(f"cannot write to workdir {self.path}: {e.strerror or e}") from None

    def start(self, config_json: dict, overwrite: bool = False) -> dict | None:
        """Make the directory ready for a run of ``config_json``: returns a finished run's
        summary to reuse (nothing written), else writes ``config.json`` and returns None."""
        finished = self.prepare(config_json, overwrite)
        if finished is None:
            self.make()
            self.write_config(config_json)
        return finished

    def prepare(self, config_json: dict, overwrite: bool) -> dict | None:
        """Check the directory; returns a finished run's summary to reuse, else None."""
        workdir = self.path
        if workdir.exists() and not workdir.is_dir():
            raise UserError(f"workdir {workdir} exists and is not a directory")
        if not self.config_file.exists():
            if workdir.exists() and any(p.name != LOCK_NAME for p in workdir.iterdir()) and not overwrite:
                raise UserError(f"workdir {workdir} is not empty and holds no run; choose an empty or new directory")
            return None
        old = self._stored_config()
        if overwrite:
            self._remove_run_files()
            return None
        if old is None or training_identity(old) != training_identity(config_json):
            changed = _diff_keys(old, config_json) if isinstance(old, dict) else ["(unreadable config.json)"]
            raise UserError(
                f"workdir {workdir} holds a run with a different config (differs in: {', '.join(changed[:6])}); "
                "pass --overwrite to replace it or choose another --workdir"
            )
        return self.finished_summary()

    def _remove_run_files(self) -> None:
        """``--overwrite``: remove the files a run writes, once none is a symbolic link (whose
        target this run may not own) and the directory is writable, so that nothing is
        removed unless everything can be."""
        present = [path for path in self.run_files() if path.exists() or path.is_symlink()]
        linked = [path.name for path in present if path.is_symlink()]
        if linked:
            raise UserError(
                f"workdir {self.path}: {', '.join(linked)} is a symbolic link, which --overwrite does not follow; "
                "remove it yourself or choose another --workdir"
            )
        self.make()
        for path in present:
            try:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            except OSError as e:
                raise UserError(f"cannot remove {path}: {e.strerror or e}") from None

    def _stored_config(self) -> dict | None:
        """``config.json`` as this code would write it: keys added since filled with their
        defaults, the model resolved (a run written before defaults were stored), provenance
        left out. None when unreadable."""
        stored = self.config_json()
        try:
            return json.loads(json.dumps(run_config_json(config_from_json(stored))))
        except (KeyError, TypeError, AttributeError, UserError):
            return None
