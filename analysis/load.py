"""Sweep directories -> tidy pandas DataFrames. Reads only files the runs wrote.

* :func:`load_results`: one row per run x replica (``Results.runs``): the
  study, the run id and status, the config axes (family, dataset, widths, ...),
  the summary's numbers and every per-replica probe scalar
  (``probe.<name>.<key>``); failed and unfinished runs keep a row (status shown,
  numbers NaN); ``Results.curves``: ``metrics.jsonl`` records, one row per record.
* :func:`tidy`: the runs, long: one row per run x replica x metric.
* :func:`choose_learning_rates`: per grid (a run and the pieces the sweep added
  past its edges, :mod:`research.sweep.extend`), the learning rate with the best
  mean validation accuracy (never the test split).
* :class:`Results` bundles these with each run's full probe results;
  ``Results.runs`` holds only the replicas at each run's chosen rate (every
  claim and figure reads those), ``Results.grid`` every replica.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.atomic import read_json
from research.data.sources import source_available
from research.errors import UserError
from research.rundir import RunDir, resolved_model
from research.sweep.extend import edge, rate_beyond
from research.train.rate_choice import best_rate, rate_scores

AXES = {
    "family": ("model", "family"),
    "model": ("model", "name"),
    "widths": ("model", "widths"),
    "kernel_sizes": ("model", "kernel_sizes"),
    "strides": ("model", "strides"),
    "padding": ("model", "padding"),
    "pooling": ("model", "pooling"),
    "head": ("model", "head"),
    "dataset": ("data", "name"),
    "n_per_class": ("data", "n_per_class"),
    "permute_pixels": ("data", "permute_pixels"),
    "permute_init": ("data", "permute_init"),
    "canvas_size": ("data", "canvas_size"),
    "augment_shift": ("train", "augment_shift"),
    "embed_at_epoch": ("train", "embed_at_epoch"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("optimizer", "learning_rate"),
    "optimizer": ("optimizer", "name"),
    "l1": ("optimizer", "l1"),
}


# Per-replica numbers of summary.json (older runs lack the train / val ones: NaN).
REPLICA_NUMBERS = (
    "test_accuracy",
    "test_loss",
    "val_accuracy",
    "val_loss",
    "train_accuracy",
    "train_loss",
    "val_accuracy_gain_last_fifth",
    "best_val_epoch",
    "val_accuracy_at_best",
    "test_accuracy_at_best_val",
    "ntk_test_accuracy",  # kernel regression: the NTK's, beside the NNGP's test_accuracy
    "ntk_val_accuracy",
)

# Numbers read at each replica's best validation epoch where the run recorded one: what every
# claim and figure decides on. The end-of-training value stays beside it as ``<name>_end``.
AT_BEST_VALIDATION = {"test_accuracy": "test_accuracy_at_best_val", "val_accuracy": "val_accuracy_at_best"}


def _with_model_defaults(config: dict) -> dict:
    """A run's config with its model's default fields filled in: runs written before
    config.json stored them (e.g. ``family`` left at the variant's default) still load."""
    model = config.get("model")
    if not isinstance(model, dict) or "name" not in model:
        return config
    try:
        return {**config, "model": resolved_model(model)}
    except UserError:  # a model this checkout does not know: keep what the file says
        return config


def _read_json(path: Path) -> dict:
    """A JSON object from ``path``; empty when missing, unreadable or not an object."""
    value = read_json(path)
    return value if isinstance(value, dict) else {}


def _axis_value(config: dict, section: str, key: str):
    value = config.get(section, {}).get(key)
    if isinstance(value, list):
        return "x".join(map(str, value)) if len(value) != 1 else str(value[0])
    return value


def _sweeps(directory: Path) -> list[Path]:
    return sorted({p.parent for pattern in ("sweep.json", "*/sweep.json", "*/*/sweep.json") for p in directory.glob(pattern)})


def missing_data(directories) -> dict[str, dict]:
    """Data sets some sweep could not load here: ``{data set: {"error": why, "studies":
    {study: runs left out}}}``, from the ``invalid`` runs of every ``sweep.json``."""
    missing: dict[str, dict] = {}
    for sweep in (s for d in map(Path, directories) if d.is_dir() for s in _sweeps(d)):
        index = _read_json(sweep / "sweep.json")
        study = Path(str(index.get("study", sweep.name)).partition(":")[0]).stem
        runs = index.get("runs") if isinstance(index.get("runs"), dict) else {}  # unreadable: no invalid runs known
        for entry in (e for e in runs.values() if isinstance(e, dict)):
            overrides = entry.get("overrides") if isinstance(entry.get("overrides"), dict) else {}
            name = entry.get("data") or overrides.get("data.name")
            if entry.get("status") != "invalid" or not name or source_available(name, overrides.get("data.dir", "")):
                continue
            record = missing.setdefault(name, {"error": entry.get("error") or "", "studies": {}})
            record["studies"][study] = record["studies"].get(study, 0) + 1
    return missing


def _sweep_runs(sweep: Path) -> tuple[str, dict[str, dict]]:
    """``(study, {run id: sweep entry})`` of a sweep directory from its ``sweep.json``; when
    that is unreadable, rebuilt from the run directories (the study named after the
    directory, every entry ``{}``)."""
    index = _read_json(sweep / "sweep.json")
    runs = index.get("runs")
    if isinstance(runs, dict):
        study = Path(str(index.get("study", sweep.name)).partition(":")[0]).stem
        return study, {rid: entry if isinstance(entry, dict) else {} for rid, entry in runs.items()}
    warnings.warn(f"{sweep / 'sweep.json'} is unreadable; reading the runs in {sweep / 'runs'} instead", stacklevel=2)
    found = sorted(p.name for p in (sweep / "runs").iterdir() if RunDir(p).started()) if (sweep / "runs").is_dir() else []
    return sweep.name, {rid: {} for rid in found}


def find_runs(directories) -> list[tuple[str, Path, dict]]:
    """``(study, run dir, sweep entry)`` of every run under the directories: sweeps
    (``sweep.json``, up to two levels down; the entry as it records the run) and bare run
    directories (``config.json``; entry ``{}``)."""
    found: list[tuple[str, Path, dict]] = []
    for directory in map(Path, directories):
        if not directory.is_dir():
            raise UserError(f"{directory} is not a directory; give a sweep directory (with sweep.json) or one holding sweeps")
        sweeps = _sweeps(directory)
        for sweep in sweeps:
            study, entries = _sweep_runs(sweep)
            found += [(study, sweep / "runs" / rid, entry) for rid, entry in entries.items()]
        if not sweeps:
            found += [("runs", p, {}) for p in sorted(directory.iterdir()) if RunDir(p).started()]
            if RunDir(directory).started():
                found.append(("runs", directory, {}))
    if not found:
        raise UserError(
            f"no runs found under {', '.join(map(str, directories))} (no sweep.json or config.json); "
            "run `cvd sweep` or `cvd reproduce` first"
        )
    return found


def _per_replica(value, replica: int):
    if isinstance(value, list) and value and not isinstance(value[0], list):
        return value[replica] if replica < len(value) else np.nan
    if isinstance(value, str):
        return value
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def choose_learning_rates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``lr_chosen``: per grid (``grid_key``: a run and its pieces), True for
    the replicas of the rate with the best mean validation accuracy over its seeds, a
    diverged seed counting as 0 (a rate where most seeds diverge does not win on its one
    survivor; ties: the smaller rate; :func:`research.train.rate_choice.rate_scores`, the rule the
    sweep extends grids by).

    Also ``lr_grid`` (the grid's rates, as text), ``lr_at_edge`` (the chosen rate is the
    grid's smallest or largest of several: the best rate may lie past what was tried) and
    ``lr_at_limit`` (at an edge that is the optimizer's absolute limit, where the sweep
    stops extending). A grid of one rate keeps all its replicas; a grid of several rates
    without validation numbers keeps none (no rate can be chosen, and its rates are not
    seeds of one another).
    """
    frame = frame.copy()
    frame["lr_chosen"] = True
    frame["lr_grid"] = ""
    frame["lr_at_edge"] = False
    frame["lr_at_limit"] = False
    for _, grid in frame.groupby("grid_key", sort=False):
        rates = sorted(grid["learning_rate"].dropna().unique())
        frame.loc[grid.index, "lr_grid"] = ", ".join(f"{r:g}" for r in rates)
        diverged = grid["diverged"].astype(bool)
        if len(rates) < 2 or diverged.all():
            continue
        if grid.loc[~diverged, "val_accuracy"].dropna().empty:
            frame.loc[grid.index, "lr_chosen"] = False
            continue
        scores = rate_scores(grid[grid["learning_rate"].notna()].to_dict("records"))
        best, side = best_rate(scores), edge(rates, scores)
        frame.loc[grid.index, "lr_chosen"] = (grid["learning_rate"] == best).to_numpy()
        if side:
            frame.loc[grid.index, "lr_at_edge"] = True
            frame.loc[grid.index, "lr_at_limit"] = rate_beyond(best, side, str(grid["optimizer"].iloc[0])) is None
    return frame


@dataclass
class Results:
    runs: pd.DataFrame  # replicas at each run's chosen learning rate
    curves: pd.DataFrame  # their metrics.jsonl records
    probes: dict[str, dict] = field(default_factory=dict)  # run key -> probes.json contents
    grid: pd.DataFrame | None = None  # every replica of every rate
    provenance: dict = field(default_factory=dict)  # what produced the runs: see provenance_summary
    missing: dict = field(default_factory=dict)  # data sets not found here: see missing_data

    def study(self, name: str) -> pd.DataFrame:
        return self.runs[self.runs["study"] == name]

    def has(self, study: str) -> bool:
        return bool((self.runs["study"] == study).any())


def _replica_rows(base: dict, summary: dict, run_probes: dict) -> list[dict]:
    """One row per replica of a run: its numbers and its per-replica probe values."""
    rows = []
    for r, replica in enumerate(summary.get("replicas") or [{"seed": None}]):
        row = {
            **base,
            "replica": r,
            "seed": replica.get("seed"),
            "learning_rate": replica.get("learning_rate", base["learning_rate"]),
            **{key: _number(replica.get(key)) for key in REPLICA_NUMBERS},
            "diverged": replica.get("diverged", False),
        }
        for name, at_best in AT_BEST_VALIDATION.items():
            row[f"{name}_end"] = row[name]
            if np.isfinite(row[at_best]):
                row[name] = row[at_best]
        for probe, result in run_probes.items():
            for name, value in result.items():
                if name in result.get("run_level", ()):
                    continue  # e.g. the shift sizes: one list for the run, not a value per replica
                scalar = _per_replica(value, r)
                if scalar is not None and name not in ("seconds", "step", "run_level"):
                    row[f"probe.{probe}.{name}"] = scalar
        rows.append(row)
    return rows


def _number(value) -> float:
    """A summary's number as a float (missing, None or not a number: NaN)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan


def _axes(config: dict) -> dict:
    """The :data:`AXES` of a run; a model outside the lattice (no ``family``, e.g. the reference
    MLP) has its model's name as its family, so that every figure and claim can group by it."""
    axes = {name: _axis_value(config, *where) for name, where in AXES.items()}
    if axes["family"] is None:
        axes["family"] = axes["model"]
    return axes


def _run_base(study: str, run: RunDir, config: dict, summary: dict, entry: dict) -> dict:
    """The columns every replica row of a run shares. ``grid_key``: the run whose learning-rate
    grid it belongs to (itself, or the root of a grid piece); ``tag``: the study's, as its
    sweep lists the run."""
    return {
        "study": study,
        "run": run.name,
        "run_key": f"{study}/{run.name}",
        "grid_key": f"{study}/{entry.get('extends') or run.name}",
        "path": str(run.path),
        "home": str(run.path.resolve()),  # where it trained: one per distinct run, shared by studies
        "status": run.status()[0],
        "tag": (entry.get("overrides") or {}).get("tag", config.get("tag", "")),
        **_axes(config),
        "num_params": summary.get("num_params", np.nan),
        "head_inputs": summary.get("head_inputs", np.nan),
        "train_examples": (summary.get("dataset") or {}).get("splits", {}).get("train", np.nan),
        "val_examples": (summary.get("dataset") or {}).get("splits", {}).get("val", np.nan),
        "stopped_early": bool(summary.get("stopped_early", False)),
        "wall_time_s": summary.get("wall_time_s", np.nan),
        "tracked": bool(config.get("probes", {}).get("track")),
    }


def load_results(directories, *, curves: bool = True) -> Results:
    rows, curve_rows, probes, produced_by = [], [], {}, []
    for study, run_dir, entry in find_runs(directories):
        run = RunDir(run_dir)
        config = _with_model_defaults(run.config_json() or {})
        if run.started():  # a run that started (not one recorded invalid, never launched)
            produced_by.append(config.get("provenance"))
        summary = run.summary() or {}
        base = _run_base(study, run, config, summary, entry)
        probes[base["run_key"]] = run.probes()
        rows += _replica_rows(base, summary, probes[base["run_key"]])
        if curves:
            tags = {"study": study, "run_key": base["run_key"], "family": base["family"], "dataset": base["dataset"]}
            curve_rows += [{**tags, **record} for record in run.metrics()]
    grid = choose_learning_rates(pd.DataFrame(rows))
    grid["val_accuracy_gain_last_fifth"] = pd.to_numeric(grid["val_accuracy_gain_last_fifth"], errors="coerce")
    runs = grid[grid["lr_chosen"]].reset_index(drop=True)
    curve_frame = pd.DataFrame(curve_rows)
    if not curve_frame.empty and "replica" in curve_frame:
        chosen = set(zip(runs["run_key"], runs["replica"]))
        keep = [(k, r) in chosen for k, r in zip(curve_frame["run_key"], curve_frame["replica"])]
        curve_frame = curve_frame[np.asarray(keep, bool)].reset_index(drop=True)
    produced = provenance_summary(produced_by, directories)
    return Results(
        runs=runs, curves=curve_frame, probes=probes, grid=grid, provenance=produced, missing=missing_data(directories)
    )


def provenance_summary(records: list[dict | None], directories) -> dict:
    """What produced the runs, from their ``config.json`` provenance and any ``timing.json``
    (``cvd reproduce``) at the top of ``directories``: ``{"commits": {commit: runs},
    "versions", "machines", "dates": (first, last), "unrecorded": runs without provenance,
    "timing": timing.json contents or None}``."""
    recorded = [r for r in records if r]
    commits: dict[str, int] = {}
    for r in recorded:
        label = (r.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if r.get("dirty") else "")
        commits[label] = commits.get(label, 0) + 1
    versions = sorted({json.dumps(r.get("versions", {}), sort_keys=True) for r in recorded})
    machines = sorted({json.dumps(r.get("machine", {}), sort_keys=True) for r in recorded})
    dates = sorted(r["date"] for r in recorded if r.get("date"))
    timing = next((t for d in map(Path, directories) if (t := _read_json(d / "timing.json"))), None)
    return {
        "commits": commits,
        "versions": [json.loads(v) for v in versions],
        "machines": [json.loads(m) for m in machines],
        "dates": (dates[0], dates[-1]) if dates else None,
        "unrecorded": len(records) - len(recorded),
        "timing": timing,
    }


def tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per run x replica x metric (``metric``, ``value``)."""
    metrics = [c for c in runs.columns if c in (*REPLICA_NUMBERS, "num_params", "wall_time_s") or c.startswith("probe.")]
    ids = [c for c in runs.columns if c not in metrics]
    return runs.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])


def probe_value(results: Results, run_key: str, probe: str, key: str):
    """A probe result of one run as a numpy array (read from probes.npz when stored
    there), or None when the run lacks it."""
    value = results.probes.get(run_key, {}).get(probe, {}).get(key)
    if isinstance(value, dict) and "npz" in value:
        path = Path(results.runs.loc[results.runs["run_key"] == run_key, "path"].iloc[0]) / "probes.npz"
        with np.load(path) as arrays:
            value = arrays[value["npz"]]
    return None if value is None else _chosen_replicas(results, run_key, np.asarray(value))


def _chosen_replicas(results: Results, run_key: str, value: np.ndarray) -> np.ndarray:
    """The rows of a per-replica probe array that belong to the run's chosen learning rate."""
    if results.grid is None or value.ndim == 0:
        return value
    run = results.grid[results.grid["run_key"] == run_key]
    if len(run) < 2 or value.shape[0] != len(run) or run["lr_chosen"].all():
        return value
    return value[run["lr_chosen"].to_numpy(bool)]


def runs_with_probe(results: Results, study: str, probe: str, key: str) -> pd.DataFrame:
    """One row per run of ``study`` whose probe result holds ``key``."""
    runs = results.study(study).drop_duplicates("run_key")
    mask = np.array([key in results.probes.get(k, {}).get(probe, {}) for k in runs["run_key"]], dtype=bool)
    return runs.loc[mask] if len(runs) else runs


def probe_rows(results: Results, rows: pd.DataFrame, probe: str, key: str) -> np.ndarray | None:
    """A per-replica probe array of one run, one row per row of ``rows`` (matched by the
    ``replica`` column, so any filter of the replicas keeps rows and values aligned); None
    when the run lacks it. The array holds a row per replica of the run (every learning
    rate) or, as probes written for the chosen rate only, one per chosen replica."""
    run_key = rows["run_key"].iloc[0]
    value = results.probes.get(run_key, {}).get(probe, {}).get(key)
    if isinstance(value, dict) and "npz" in value:
        with np.load(Path(rows["path"].iloc[0]) / "probes.npz") as arrays:
            value = arrays[value["npz"]]
    if value is None or np.ndim(value) == 0:
        return None
    value = np.asarray(value, float)
    run = results.grid[results.grid["run_key"] == run_key] if results.grid is not None else rows
    order = list(run["replica"]) if value.shape[0] == len(run) else list(run[run["lr_chosen"]]["replica"])
    if value.shape[0] != len(order) or not set(rows["replica"]) <= set(order):
        return None
    return value[[order.index(r) for r in rows["replica"]]]
