"""Sweep directories -> tidy pandas DataFrames. Reads only files the runs wrote.

* :func:`load_runs`: one row per run x replica: the study, the run id and
  status, the config axes (family, dataset, widths, ...), the summary's
  numbers and every per-replica probe scalar (``probe.<name>.<key>``).
  Failed and unfinished runs keep a row (status shown, numbers NaN).
* :func:`tidy`: the same, long: one row per run x replica x metric.
* :func:`load_curves`: ``metrics.jsonl`` records, one row per record.
* :class:`Results` bundles these with each run's full probe results.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from research.errors import UserError

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
    "canvas_size": ("data", "canvas_size"),
    "augment_shift": ("train", "augment_shift"),
    "embed_at_epoch": ("train", "embed_at_epoch"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("optimizer", "learning_rate"),
}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _axis_value(config: dict, section: str, key: str):
    value = config.get(section, {}).get(key)
    if isinstance(value, list):
        return "x".join(map(str, value)) if len(value) != 1 else str(value[0])
    return value


def find_runs(directories) -> list[tuple[str, Path]]:
    """``(study, run dir)`` of every run under the directories: sweeps (``sweep.json``,
    up to two levels down) and bare run directories (``config.json``)."""
    found: list[tuple[str, Path]] = []
    for directory in map(Path, directories):
        if not directory.is_dir():
            raise UserError(f"{directory} is not a directory; give a sweep directory (with sweep.json) or one holding sweeps")
        sweeps = sorted(
            {p.parent for pattern in ("sweep.json", "*/sweep.json", "*/*/sweep.json") for p in directory.glob(pattern)}
        )
        for sweep in sweeps:
            index = _read_json(sweep / "sweep.json") or {}
            study = Path(str(index.get("study", sweep.name)).partition(":")[0]).stem
            for rid in index.get("runs", {}):
                found.append((study, sweep / "runs" / rid))
        if not sweeps:
            found += [("runs", p.parent) for p in sorted(directory.glob("*/config.json"))]
            if (directory / "config.json").exists():
                found.append(("runs", directory))
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


@dataclass
class Results:
    runs: pd.DataFrame
    curves: pd.DataFrame
    probes: dict[str, dict] = field(default_factory=dict)  # run key -> probes.json contents

    def study(self, name: str) -> pd.DataFrame:
        return self.runs[self.runs["study"] == name]

    def has(self, study: str) -> bool:
        return bool((self.runs["study"] == study).any())


def load_runs(directories) -> pd.DataFrame:
    return load_results(directories, curves=False).runs


def load_results(directories, *, curves: bool = True) -> Results:
    rows, curve_rows, probes = [], [], {}
    for study, run_dir in find_runs(directories):
        config = _read_json(run_dir / "config.json") or {}
        summary = _read_json(run_dir / "summary.json") or {}
        run_probes = _read_json(run_dir / "probes.json") or {}
        key = f"{study}/{run_dir.name}"
        probes[key] = run_probes
        base = {
            "study": study,
            "run": run_dir.name,
            "run_key": key,
            "path": str(run_dir),
            "status": summary.get("status", "pending" if not (run_dir / "checkpoints").exists() else "interrupted"),
            "tag": config.get("tag", ""),
            **{name: _axis_value(config, *where) for name, where in AXES.items()},
            "num_params": summary.get("num_params", np.nan),
            "train_examples": (summary.get("dataset") or {}).get("splits", {}).get("train", np.nan),
            "wall_time_s": summary.get("wall_time_s", np.nan),
            "tracked": bool(config.get("probes", {}).get("track")),
        }
        replicas = summary.get("replicas") or [{"seed": None}]
        for r, replica in enumerate(replicas):
            row = {
                **base,
                "replica": r,
                "seed": replica.get("seed"),
                "test_accuracy": replica.get("test_accuracy", np.nan),
                "test_loss": replica.get("test_loss", np.nan),
                "diverged": replica.get("diverged", False),
            }
            for probe, result in run_probes.items():
                for name, value in result.items():
                    scalar = _per_replica(value, r)
                    if scalar is not None and name not in ("seconds", "step"):
                        row[f"probe.{probe}.{name}"] = scalar
            rows.append(row)
        if curves and (run_dir / "metrics.jsonl").exists():
            for line in (run_dir / "metrics.jsonl").read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    warnings.warn(f"{run_dir / 'metrics.jsonl'}: skipping an unreadable line", stacklevel=2)
                    continue
                curve_rows.append(
                    {"study": study, "run_key": key, "family": base["family"], "dataset": base["dataset"], **record}
                )
    runs = pd.DataFrame(rows)
    curve_frame = pd.DataFrame(curve_rows)
    return Results(runs=runs, curves=curve_frame, probes=probes)


def tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Long form: one row per run x replica x metric (``metric``, ``value``)."""
    metrics = [
        c for c in runs.columns if c in ("test_accuracy", "test_loss", "num_params", "wall_time_s") or c.startswith("probe.")
    ]
    ids = [c for c in runs.columns if c not in metrics]
    return runs.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value").dropna(subset=["value"])


def probe_value(results: Results, run_key: str, probe: str, key: str):
    """A probe result of one run as a numpy array (read from probes.npz when stored
    there), or None when the run lacks it."""
    value = results.probes.get(run_key, {}).get(probe, {}).get(key)
    if isinstance(value, dict) and "npz" in value:
        path = Path(results.runs.loc[results.runs["run_key"] == run_key, "path"].iloc[0]) / "probes.npz"
        with np.load(path) as arrays:
            return arrays[value["npz"]]
    return None if value is None else np.asarray(value)


def runs_with_probe(results: Results, study: str, probe: str, key: str) -> pd.DataFrame:
    """One row per run of ``study`` whose probe result holds ``key``."""
    runs = results.study(study).drop_duplicates("run_key")
    mask = np.array([key in results.probes.get(k, {}).get(probe, {}) for k in runs["run_key"]], dtype=bool)
    return runs.loc[mask] if len(runs) else runs
