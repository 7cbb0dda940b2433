"""``run_sweep``: expand a study's sweep and run every job, resumably and in isolation.

``DIR/sweep.json`` indexes every run (id, overrides, status, attempts, worker
seconds, last error); ``DIR/runs/<id>/`` is each run's workdir; ``DIR/logs/<id>.log`` its
output; ``DIR/.jax_cache`` the persistent compilation cache. The same command
again skips finished runs, resumes interrupted ones from their checkpoints and
retries failed ones (``retries`` times). A run that raises, or whose replicas
all diverge, is recorded and never stops the others. A lock file keeps two
sweeps from running on one directory at once (:func:`research.locks.workdir_lock`); an
unreadable ``sweep.json`` is rebuilt from the run directories.

``run_sweeps`` runs several studies' sweeps as one queue (``cvd reproduce``): a
worker that finishes one study's last run takes the next study's first, so no
worker idles at a study's end; runs that time themselves
(:data:`~research.sweep.scheduler.TIMED_PROBES`) run after the others, alone.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from research.atomic import atomic_write_json, read_json
from research.config import load_config, load_study_module, parse_override, split_spec
from research.data import load_dataset
from research.errors import UserError
from research.locks import check_path, workdir_lock
from research.pipeline import run_complete
from research.progress import progress_bar
from research.rundir import FINISHED, RunDir, run_config_json, training_key
from research.sweep.extend import next_piece, piece_id
from research.sweep.grid import Overrides, axis, product, run_id, varying_keys, zip_axes
from research.sweep.launchers import Job, LaunchOptions, check_launcher, launch
from research.sweep.scheduler import times_itself, workers_for
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


def previous_counts(previous, path: Path) -> dict[str, dict[str, float]]:
    """Attempts and worker seconds per run id from an earlier ``sweep.json`` (``previous``, as
    read from ``path``); an unreadable one is rebuilt from the run directories (what they hold
    decides each run's status) with a warning, its counts lost."""
    runs = previous.get("runs") if isinstance(previous, dict) else None
    if not isinstance(runs, dict):
        if path.exists():
            warnings.warn(f"{path} is unreadable; rebuilding it from the run directories (attempt counts restart)", stacklevel=2)
        return {}
    counts = {}
    for rid, entry in runs.items():
        if isinstance(entry, dict):
            attempts, seconds = entry.get("attempts"), entry.get("seconds")
            counts[rid] = {
                "attempts": attempts if isinstance(attempts, int) else 0,
                "seconds": float(seconds) if isinstance(seconds, (int, float)) else 0.0,
            }
    return counts


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
    worker seconds (summed over its jobs, every session), error (and node, where a launcher
    says; for a grid piece the run it ``extends``), saved atomically on every change, and the
    sweep's progress bar (runs finished, running, failed)."""

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
        self.spec = header["study"]
        self.tries: dict[str, int] = {}  # jobs run per run id in this session
        self.started: dict[str, float] = {}  # run id -> when its job in flight started
        self.path = directory / "sweep.json"
        self.previous = previous_counts(previous, self.path)  # previous: sweep.json as read
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
            "attempts": int(self.previous.get(rid, {}).get("attempts", 0)),
            "seconds": round(self.previous.get(rid, {}).get("seconds", 0.0), 2),
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

    @property
    def timed(self) -> bool:
        """Whether a run times itself (:data:`~research.sweep.scheduler.TIMED_PROBES`): the
        sweep then runs apart from others, one run at a time on a local launcher."""
        return any(times_itself(c) for c in self.configs.values())

    def finished(self) -> int:
        return sum(e["status"] in FINISHED for e in self.runs.values())

    def refresh(self) -> None:
        """Read again the status of every run not yet finished whose directory another sweep
        may have trained meanwhile (:func:`run_sweeps`)."""
        changed = False
        for rid, entry in self.runs.items():
            if entry["status"] in (*FINISHED, "invalid", "running"):
                continue
            status, error = run_status(self.directory / "runs" / rid, self.configs[rid])
            if status in FINISHED:
                entry.update(status=status, error=error)
                self.bar.update(1)
                changed = True
        if changed:
            self.save()

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
        self.started[job.run_id] = time.monotonic()
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
        seconds = entry["seconds"] + time.monotonic() - self.started.pop(job.run_id, time.monotonic())
        entry["seconds"] = round(seconds, 2)
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

    def todo(self, retries: int) -> list[Job]:
        """The runs to launch next: unfinished, valid, tried at most ``retries`` times in this
        session, one per directory (runs that share one wait for it: then they are done, or
        need only their own final probes)."""
        jobs, homes = [], set()
        for rid, entry in self.runs.items():
            if entry["status"] in (*FINISHED, "invalid") or self.tries.get(rid, 0) > retries or self.home(rid) in homes:
                continue
            homes.add(self.home(rid))
            log = self.directory / "logs" / f"{rid}.log"
            jobs.append(Job(rid, self.spec, entry["overrides"], self.directory / "runs" / rid, log, self.cache_dir))
        return jobs

    def close(self) -> None:
        """Runs still marked running were interrupted (their checkpoints stay)."""
        for entry in self.runs.values():
            if entry["status"] == "running":
                entry["status"] = "interrupted"
        self.save()
        self.bar.close()


class _Queue:
    """The callbacks of one launch over several sweeps: each job's events go to the sweep
    (:class:`SweepIndex`) whose ``runs/`` it trains in, and one progress bar counts them all."""

    def __init__(self, indexes: list[SweepIndex], progress: bool):
        self.owner = {index.directory: index for index in indexes}
        self.indexes = indexes
        self.bar = progress_bar(total=self.total(), disable=not progress, unit="run", desc="runs")
        self.bar.update(self.done())

    def total(self) -> int:
        return sum(len(index.runs) for index in self.indexes)

    def done(self) -> int:
        return sum(index.finished() for index in self.indexes)

    def refresh(self) -> None:
        self.bar.total = self.total()
        self.bar.update(self.done() - self.bar.n)

    def on_start(self, job: Job) -> None:
        self.owner[job.workdir.parent.parent].on_start(job)

    def on_end(self, job: Job, outcome: dict) -> None:
        self.owner[job.workdir.parent.parent].on_end(job, outcome)
        self.refresh()

    def close(self) -> None:
        self.bar.close()


def drive(
    indexes: list[SweepIndex], launcher: str, workers: int | None, options, retries: int, extend_grids: bool, progress: bool
):
    """Run every unfinished run of ``indexes`` as one queue, in their order, until each is
    finished or out of ``retries``; then each grid piece they ask for (``extend_grids``), and
    so on until none is left. A directory several sweeps share trains once: the first sweep
    that lists it launches it, and the others read it again before the next round."""
    queue = _Queue(indexes, progress and len(indexes) > 1)
    try:
        while True:
            jobs, homes = [], set()
            for index in indexes:
                index.refresh()
                for job in index.todo(retries):
                    if (home := index.home(job.run_id)) not in homes:
                        homes.add(home)
                        jobs.append(job)
            if jobs:
                launch(launcher, jobs, workers, queue.on_start, queue.on_end, options or LaunchOptions())
                continue
            pieces = [(index, piece) for index in indexes for piece in index.grid_pieces()] if extend_grids else []
            if not pieces:
                return
            for index, (rid, overrides, root) in pieces:
                index.add_piece(rid, overrides, load_config(index.spec, overrides), root)
            queue.refresh()
    finally:
        queue.close()


def _open_index(spec: str, directory: Path, launcher: str, common: dict, cache_dir, store, progress: bool) -> SweepIndex:
    """The :class:`SweepIndex` of ``spec``'s sweep in ``directory`` (whose lock the caller
    holds): every run of the study with the ``common`` overrides, and the grid pieces an
    earlier session added."""
    runs = [(rid, {**own, **common}) for rid, own in study_runs(spec)]
    configs = {rid: load_config(spec, overrides) for rid, overrides in runs}  # built once, read below
    path, variant = split_spec(spec)
    spec = str(path.resolve()) + (f":{variant}" if variant else "")
    header = {"study": spec, "launcher": launcher, "overrides": common}
    cache = Path(cache_dir).resolve() if cache_dir else directory / ".jax_cache"
    previous = read_json(directory / "sweep.json")  # read once: its grid pieces and attempt counts
    pieces = _recorded_pieces(previous, dict(runs))
    configs.update({rid: load_config(spec, overrides) for rid, overrides, _ in pieces})
    runs += [(rid, overrides) for rid, overrides, _ in pieces]
    extends = {rid: root for rid, _, root in pieces}
    return SweepIndex(directory, header, runs, configs, progress, cache, extends, store and Path(store).resolve(), previous)


def check_arguments(launcher: str, options: LaunchOptions | None, workers: int | None, retries: int) -> None:
    """Refuse, in one line, a launcher that cannot run here or a count out of range."""
    check_launcher(launcher, options)
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if retries < 0:
        raise UserError(f"--retries must be >= 0, got {retries}")


def run_sweeps(
    sweeps: Sequence[tuple[str, Path]],
    *,
    launcher: str = "local",
    workers: int | None = None,
    options: LaunchOptions | None = None,
    retries: int = 1,
    progress: bool = True,
    overrides: Sequence[str] = (),
    cache_dir: Path | None = None,
    extend_grids: bool = True,
    store: Path | None = None,
) -> list[dict]:
    """Run every ``(spec, directory)`` sweep (see :func:`run_sweep` for the keywords) as one
    queue; returns their indexes, in order.

    A worker that finishes one sweep's runs goes on with the next sweep's, so no worker
    waits for the slowest run of a study. Sweeps with a run that times itself
    (:data:`~research.sweep.scheduler.TIMED_PROBES`) run after the others, as their own
    queue, at their own :func:`~research.sweep.scheduler.workers_for` (one, locally)."""
    check_arguments(launcher, options, workers, retries)  # before anything is written
    common = dict(parse_override(arg) for arg in overrides)
    directories = [check_path(Path(d), "--workdir").resolve() for _, d in sweeps]  # absolute: nodes (Ray, SLURM) find it
    with ExitStack() as stack:
        indexes: list[SweepIndex] = []
        for (spec, _), directory in zip(sweeps, directories):
            stack.enter_context(sweep_lock(directory))
            index = _open_index(spec, directory, launcher, common, cache_dir, store, progress and len(sweeps) == 1)
            indexes.append(index)
            stack.callback(index.close)
        for group in ([i for i in indexes if not i.timed], [i for i in indexes if i.timed]):
            if group:
                slots = workers_for(workers, launcher, [c for index in group for c in index.configs.values()])
                drive(group, launcher, slots, options, retries, extend_grids, progress)
    return [index.data for index in indexes]


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
    if dry_run:
        check_arguments(launcher, options, workers, retries)
        common = dict(parse_override(arg) for arg in overrides)
        directory = check_path(Path(directory), "--workdir").resolve()
        runs = [(rid, {**own, **common}) for rid, own in study_runs(spec)]
        return {
            "study": spec,
            "runs": {rid: {"overrides": o, "status": run_status(directory / "runs" / rid)[0]} for rid, o in runs},
        }
    keywords = dict(options=options, retries=retries, progress=progress, overrides=overrides, cache_dir=cache_dir)
    return run_sweeps(
        [(spec, directory)], launcher=launcher, workers=workers, extend_grids=extend_grids, store=store, **keywords
    )[0]


__all__ = [
    "LaunchOptions",
    "axis",
    "invalid_runs",
    "product",
    "run_id",
    "run_sweep",
    "run_sweeps",
    "study_runs",
    "workers_for",
    "zip_axes",
]
