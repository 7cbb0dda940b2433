"""``run_sweep``: expand a study's sweep and run every job, resumably and in isolation.

``DIR/sweep.json`` indexes every run (id, overrides, status, attempts, last
error); ``DIR/runs/<id>/`` is each run's workdir; ``DIR/logs/<id>.log`` its
output; ``DIR/.jax_cache`` the persistent compilation cache. The same command
again skips finished runs, resumes interrupted ones from their checkpoints and
retries failed ones (``retries`` times). A run that raises, or whose replicas
all diverge, is recorded and never stops the others. A lock file keeps two
sweeps from running on one directory at once (:func:`research.locks.workdir_lock`); an
unreadable ``sweep.json`` is rebuilt from the run directories.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from research.config import load_config, load_study_module, parse_override, split_spec
from research.data import load_dataset
from research.errors import UserError
from research.locks import check_path, workdir_lock
from research.pipeline import run_complete
from research.progress import progress_bar
from research.rundir import FINISHED, RunDir, atomic_write_json, read_json, run_config_json, training_key
from research.sweep.extend import next_piece, piece_id
from research.sweep.grid import Overrides, axis, product, run_id, varying_keys, zip_axes
from research.sweep.launchers import Job, LaunchOptions, check_launcher, launch
from research.sweep.scheduler import workers_for
from research.train.rate_choice import rate_scores
from research.train.spec import RunSpec, replica_grid

# Runs with a FINISHED status are not run again. ``invalid`` runs (the data set or
# model cannot be built) are recorded with their error and never launched.


def study_runs(spec: str) -> list[tuple[str, Overrides]]:
    """``(run id, overrides)`` of every run of ``file.py:variant``, each validated."""
    path, variant = split_spec(spec)
    module = load_study_module(path)
    sweep = module.get_sweep(variant) if hasattr(module, "get_sweep") else [{}]
    shown = varying_keys(sweep)
    runs = [(run_id(o, shown), o) for o in sweep]
    if len({r for r, _ in runs}) != len(runs):
        raise UserError(f"{path}: get_sweep({variant!r}) lists the same overrides twice")
    for _, overrides in runs:
        load_config(spec, overrides)  # bad keys or types fail now, before anything runs
    return runs


def invalid_runs(configs: dict[str, object]) -> dict[str, str]:
    """``{run id: error}`` of the runs (``{run id: config}``) whose data set or model cannot be built.

    Every model is built abstractly (no compute) on its data set's shapes, so
    a field that fits one data set but not another is found before anything
    trains; such a run is recorded as invalid and never launched."""
    datasets: dict[str, object] = {}  # data config -> Dataset, or the UserError loading it raised
    errors: dict[str, str] = {}
    for rid, config in configs.items():
        key = json.dumps(config.data.to_dict(), sort_keys=True, default=str)
        if key not in datasets:
            try:
                datasets[key] = load_dataset(config.data)
            except UserError as e:
                datasets[key] = e
        dataset = datasets[key]
        if isinstance(dataset, UserError):
            errors[rid] = str(dataset)
            continue
        try:
            RunSpec.build(config, dataset)
        except UserError as e:
            errors[rid] = str(e)
    return errors


def sweep_lock(directory: Path):
    """The sweep directory's lock (:func:`research.locks.workdir_lock`): one sweep at a time."""
    return workdir_lock(directory, "sweep")


def previous_attempts(previous, path: Path) -> dict[str, int]:
    """Attempts per run id from an earlier ``sweep.json`` (``previous``, as read from ``path``);
    an unreadable one is rebuilt from the run directories (what they hold decides each run's
    status) with a warning, its counts lost."""
    runs = previous.get("runs") if isinstance(previous, dict) else None
    if not isinstance(runs, dict):
        if path.exists():
            warnings.warn(f"{path} is unreadable; rebuilding it from the run directories (attempt counts restart)", stacklevel=2)
        return {}
    return {rid: e["attempts"] for rid, e in runs.items() if isinstance(e, dict) and isinstance(e.get("attempts"), int)}


def _recorded_pieces(previous, roots: dict[str, Overrides]) -> list[tuple[str, Overrides, str]]:
    """``(run id, overrides, root)`` of the grid pieces an earlier session of the sweep added
    (``sweep.json``), for the roots still in the sweep; their overrides are the root's now,
    with the piece's rate."""
    runs = previous.get("runs") if isinstance(previous, dict) else None
    pieces = []
    for rid, entry in (runs if isinstance(runs, dict) else {}).items():
        root = entry.get("extends") if isinstance(entry, dict) else None
        rates = (entry.get("overrides") or {}).get("optimizer.learning_rates") if root in roots else None
        if isinstance(rates, list) and rates:
            pieces.append((rid, {**roots[root], "optimizer.learning_rates": rates}, root))
    return pieces


def share_run(link: Path, home: Path) -> None:
    """Make ``link`` (a sweep's ``runs/<id>``) a relative symbolic link to the shared ``home``.
    A real directory already at ``link`` (a run trained before sharing) moves to ``home``
    when that is free and is left where it is otherwise; nothing is deleted."""
    if link.is_symlink():
        if link.resolve() == home.resolve():
            return
        link.unlink()
    elif link.is_dir():
        if home.exists():
            return
        home.parent.mkdir(parents=True, exist_ok=True)
        os.replace(link, home)
    home.mkdir(parents=True, exist_ok=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(Path(os.path.relpath(home, link.parent)), target_is_directory=True)


def run_status(run_dir: Path, config=None) -> tuple[str, str | None]:
    """``(status, error)`` from a run directory's files; with ``config``, a done
    run that still lacks one of its final probes is ``unprobed``."""
    status, error = RunDir(run_dir).status()
    if status == "done" and config is not None and not run_complete(run_dir, config):
        return "unprobed", None
    return status, error


class SweepIndex:
    """``DIR/sweep.json`` as the sweep goes: every run's overrides, data set, status, attempts,
    error (and node, where a launcher says; for a grid piece the run it ``extends``), saved
    atomically on every change, and the sweep's progress bar (runs finished, running, failed)."""

    def __init__(
        self,
        directory: Path,
        header: dict,
        runs: list[tuple[str, Overrides]],
        configs: dict,
        progress: bool,
        cache_dir: Path,
        extends: dict[str, str] | None = None,
        store: Path | None = None,
        previous=None,
    ):
        self.directory, self.configs, self.cache_dir, self.store = directory, configs, cache_dir, store
        self.tries: dict[str, int] = {}  # jobs run per run id in this session
        self.path = directory / "sweep.json"
        self.previous_attempts = previous_attempts(previous, self.path)  # previous: sweep.json as read
        invalid = invalid_runs(configs)
        self.data = {**header, "runs": {}}
        for rid, overrides in runs:
            self._enter(rid, overrides, configs[rid], invalid.get(rid), (extends or {}).get(rid))
        self.save()
        self.bar = progress_bar(total=len(runs), disable=not progress, unit="run", desc=directory.name)
        self.bar.update(sum(e["status"] in FINISHED for e in self.runs.values()))

    def _enter(self, rid: str, overrides: Overrides, config, invalid: str | None = None, extends: str | None = None) -> None:
        self.configs[rid] = config
        if self.store is not None and not invalid:
            share_run(self.directory / "runs" / rid, self.store / training_key(run_config_json(config)))
        status, error = ("invalid", invalid) if invalid else run_status(self.directory / "runs" / rid, config)
        self.runs[rid] = {
            "overrides": overrides,
            "data": config.data.name,  # resolved (a study may set it in get_config)
            "workdir": f"runs/{rid}",
            "status": status,
            "error": error,
            "attempts": self.previous_attempts.get(rid, 0),
            **({"extends": extends} if extends else {}),
        }

    def add_piece(self, rid: str, overrides: Overrides, config, root: str) -> None:
        """A grid piece of run ``root`` (see :mod:`research.sweep.extend`), to run next."""
        self._enter(rid, overrides, config, extends=root)
        self.save()
        self.bar.total += 1
        self.bar.update(int(self.runs[rid]["status"] in FINISHED))

    def grid_pieces(self) -> list[tuple[str, Overrides, str]]:
        """``(run id, overrides, root)`` of the next piece of every finished grid whose best rate
        is at an edge short of the optimizer's limit (:func:`research.sweep.extend.next_piece`)."""
        grids: dict[str, list[str]] = {}
        for rid, entry in self.runs.items():
            grids.setdefault(entry.get("extends") or rid, []).append(rid)
        pieces = []
        for root, members in grids.items():
            if any(self.runs[m]["status"] not in FINISHED for m in members):
                continue
            rates = [rate for m in members for rate in replica_grid(self.configs[m])[1]]
            summaries = [RunDir(self.directory / "runs" / m).summary() or {} for m in members]
            scores = rate_scores(replica for s in summaries for replica in s.get("replicas") or [])
            rate = next_piece(rates, scores, self.configs[root].optimizer.name)
            if rate is not None and piece_id(root, rate) not in self.runs:
                pieces.append((piece_id(root, rate), {**self.runs[root]["overrides"], "optimizer.learning_rates": [rate]}, root))
        return pieces

    @property
    def runs(self) -> dict[str, dict]:
        return self.data["runs"]

    def save(self) -> None:
        counts: dict[str, int] = {}
        for entry in self.runs.values():
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
        self.data["counts"] = counts
        atomic_write_json(self.path, self.data)

    def _refresh(self) -> None:
        states = [e["status"] for e in self.runs.values()]
        self.bar.set_postfix(
            done=sum(s in FINISHED for s in states), running=states.count("running"), failed=states.count("failed")
        )

    def on_start(self, job: Job) -> None:
        self.runs[job.run_id]["status"] = "running"
        self.save()
        self._refresh()

    def home(self, rid: str) -> Path:
        """Where run ``rid`` trains: its directory, or the shared one it links to."""
        return (self.directory / "runs" / rid).resolve()

    def on_end(self, job: Job, outcome: dict) -> None:
        """Read the run's status from its files (a run that trained but lacks a final probe
        failed); runs that share its directory are read again too."""
        entry = self.runs[job.run_id]
        self.tries[job.run_id] = self.tries.get(job.run_id, 0) + 1
        if outcome.get("node"):
            entry["node"] = outcome["node"]
        status, error = run_status(job.workdir, self.configs[job.run_id])
        if status == "unprobed":
            error = "trained, but its final probes are missing (see the run's log)"
        if not outcome["ok"] or status not in FINISHED:
            status, error = "failed", error or outcome["error"]
        entry.update(status=status, error=error, attempts=entry["attempts"] + 1)
        home = self.home(job.run_id)
        for rid, other in self.runs.items():
            if rid != job.run_id and other["status"] not in (*FINISHED, "invalid") and self.home(rid) == home:
                other["status"], other["error"] = run_status(home, self.configs[rid])
                other["status"] = "pending" if other["status"] == "unprobed" else other["status"]
                self.bar.update(int(other["status"] in FINISHED))
        self.save()
        if status in FINISHED:
            self.bar.update(1)
        self._refresh()

    def todo(self, spec: str, retries: int) -> list[Job]:
        """The runs to launch next: unfinished, valid, tried at most ``retries`` times in this
        session, one per directory (runs that share one wait for it: then they are done, or
        need only their own final probes)."""
        jobs, homes = [], set()
        for rid, entry in self.runs.items():
            if entry["status"] in (*FINISHED, "invalid") or self.tries.get(rid, 0) > retries or self.home(rid) in homes:
                continue
            homes.add(self.home(rid))
            log = self.directory / "logs" / f"{rid}.log"
            jobs.append(Job(rid, spec, entry["overrides"], self.directory / "runs" / rid, log, self.cache_dir))
        return jobs

    def close(self) -> None:
        """Runs still marked running were interrupted (their checkpoints stay)."""
        for entry in self.runs.values():
            if entry["status"] == "running":
                entry["status"] = "interrupted"
        self.save()
        self.bar.close()


def run_sweep(
    spec: str,
    directory: Path,
    *,
    launcher: str = "local",
    workers: int | None = None,
    options: LaunchOptions | None = None,
    retries: int = 1,
    dry_run: bool = False,
    progress: bool = True,
    overrides: Sequence[str] = (),
    cache_dir: Path | None = None,
    extend_grids: bool = True,
    store: Path | None = None,
) -> dict:
    """Run (or, with ``dry_run``, list) every run of a study; returns the sweep index.

    ``cache_dir``: the persistent compilation cache its runs share (default
    ``directory/.jax_cache``; ``cvd reproduce`` gives every study one, so that a
    program one study compiled, another loads).

    ``overrides`` (``["train.epochs=1", ...]``, from the command line) apply to every run,
    after the run's own; run ids stay those of the study. ``launcher``: local, ray or
    slurm, with ``options`` (:class:`~research.sweep.launchers.LaunchOptions`).

    ``extend_grids``: once a run with a learning-rate grid has finished with its best rate at
    an edge of the grid, train the next rate past that edge (:mod:`research.sweep.extend`),
    until the best rate is interior or at the optimizer's limit.

    ``store``: a directory of runs shared by several sweeps (``cvd reproduce`` gives every
    study the same one). Each run then trains in ``store/<training key>`` and
    ``directory/runs/<id>`` links to it, so runs of different studies that train the same
    (:func:`research.rundir.training_identity`) train once."""
    check_launcher(launcher, options)  # before anything is written
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if retries < 0:
        raise UserError(f"--retries must be >= 0, got {retries}")
    common = dict(parse_override(arg) for arg in overrides)
    runs = [(rid, {**own, **common}) for rid, own in study_runs(spec)]
    directory = check_path(Path(directory), "--workdir").resolve()  # absolute: workers on other nodes (Ray, SLURM) find it
    if dry_run:
        return {
            "study": spec,
            "runs": {rid: {"overrides": o, "status": run_status(directory / "runs" / rid)[0]} for rid, o in runs},
        }
    configs = {rid: load_config(spec, overrides) for rid, overrides in runs}  # built once, read below
    workers = workers_for(workers, launcher, configs.values())
    path, variant = split_spec(spec)
    spec = str(path.resolve()) + (f":{variant}" if variant else "")
    with sweep_lock(directory):
        header = {"study": spec, "launcher": launcher, "overrides": common}
        cache = Path(cache_dir).resolve() if cache_dir else directory / ".jax_cache"
        previous = read_json(directory / "sweep.json")  # read once: its grid pieces and attempt counts
        pieces = _recorded_pieces(previous, dict(runs))
        configs.update({rid: load_config(spec, overrides) for rid, overrides, _ in pieces})
        runs += [(rid, overrides) for rid, overrides, _ in pieces]
        extends = {rid: root for rid, _, root in pieces}
        store = store and Path(store).resolve()
        index = SweepIndex(directory, header, runs, configs, progress, cache, extends, store, previous)
        try:
            while True:
                while todo := index.todo(spec, retries):
                    launch(launcher, todo, workers, index.on_start, index.on_end, options or LaunchOptions())
                pieces = index.grid_pieces() if extend_grids else []
                if not pieces:
                    break
                for rid, overrides, root in pieces:
                    index.add_piece(rid, overrides, load_config(spec, overrides), root)
        finally:
            index.close()
        return index.data


__all__ = ["LaunchOptions", "axis", "invalid_runs", "product", "run_id", "run_sweep", "study_runs", "workers_for", "zip_axes"]
