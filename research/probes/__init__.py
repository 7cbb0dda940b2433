"""Probes: evaluations of a trained run that turn checkpoints into the numbers
behind claims C1-C9.

``run_probes(run_dir, names)`` loads the run's newest checkpoint (every
replica at once; with ``replicas``, only those: the pipeline probes the replicas
of the run's chosen learning rate, the only ones the analysis reads, and the
others' per-replica values are NaN), runs each named probe and merges the results into
``run_dir/probes.json`` (numbers and short lists) and ``run_dir/probes.npz``
(larger arrays), both written atomically. Names are probes or groups:

* ``translation`` = ``shift``, ``consistency``, ``one_pixel``, ``equivariance``
* ``position``: accuracy map over canvas positions
* ``cost``: FLOPs, step time, fraction of a measured matmul peak
* ``locality``: the locality index of a dense first layer
* ``sparsity``: the share of non-zero weights and first-layer weight maps (C9)

Probes listed in ``config.probes.track`` are recorded during training
instead (see :func:`tracking_functions`), as ``split="track"`` records of
``metrics.jsonl``.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np

from research.atomic import atomic_write_bytes, atomic_write_json
from research.errors import UserError, unknown
from research.probes import cost, locality, position, receptive_field, sparsity, translation  # noqa: F401  (registers the probes)
from research.probes.base import PROBES, ProbeOptions, register_probe
from research.rundir import RunDir
from research.train.spec import Tracker
from research.train.trained import TrainedRun, load_trained

GROUPS = {"translation": ["shift", "consistency", "one_pixel", "equivariance"]}
TRACKERS = {
    "locality": Tracker(locality.track_locality, check=locality.check_dense_first),
    "receptive_field": Tracker(receptive_field.track_outside_mass, check=receptive_field.check_lattice),
}
LARGE = 256  # arrays with more entries than this go to probes.npz


def expand(names) -> list[str]:
    """Probe names with groups expanded, each checked, in order, once."""
    out: list[str] = []
    for name in names:
        if name in GROUPS:
            members = GROUPS[name]
        elif name in PROBES:
            members = [name]
        else:
            raise unknown("probe", name, [*PROBES.names(), *GROUPS])
        out += [m for m in members if m not in out]
    return out


def tracking_functions(names) -> dict:
    """``{name: Tracker}`` (``record(model, stacked_params) -> {metric: per-replica array}``)."""
    for name in names:
        if name not in TRACKERS:
            raise unknown("tracked probe", name, TRACKERS)
    return {name: TRACKERS[name] for name in names}


def _split_large(result: dict, prefix: str, arrays: dict) -> dict:
    out = {}
    for key, value in result.items():
        try:
            array = np.asarray(value) if isinstance(value, (list, np.ndarray)) else None
        except ValueError:  # ragged (e.g. per-layer strides with None for layers without one): keep as JSON
            array = None
        if array is not None and array.dtype != object and array.size > LARGE:
            arrays[f"{prefix}/{key}"] = array
            out[key] = {"npz": f"{prefix}/{key}", "shape": list(array.shape)}
        elif isinstance(value, np.ndarray):
            out[key] = value.tolist()
        else:
            out[key] = value
    return out


def read_probes(run_dir: Path) -> dict:
    return RunDir(run_dir).probes()


def full_replica_axis(result: dict, replicas: list[int], total: int) -> dict:
    """A probe ``result`` computed on ``replicas`` (indices) of a run of ``total`` replicas, with
    every per-replica value (a list or array along the replica axis: any value but the
    ``run_level`` ones and the scalars) widened to all ``total``, NaN (None where ragged) for
    the replicas not probed; ``replicas`` is recorded (run level)."""
    skip = {"run_level", "seconds", "step", *result.get("run_level", ())}
    out = {}
    for key, value in result.items():
        if key in skip or not isinstance(value, (list, np.ndarray)) or len(value) != len(replicas):
            out[key] = value
            continue
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):  # ragged: keep a list
            widened = [None] * total
            for i, v in zip(replicas, value):
                widened[i] = v
            out[key] = widened
            continue
        full = np.full((total, *array.shape[1:]), np.nan)
        full[replicas] = array
        out[key] = full if isinstance(value, np.ndarray) else full.tolist()
    out["replicas"] = list(replicas)
    out["run_level"] = [*result.get("run_level", ()), "replicas"]
    return out


def run_probes(
    run_dir: str | Path,
    names,
    *,
    options: ProbeOptions | None = None,
    run: TrainedRun | None = None,
    replicas: list[int] | None = None,
) -> dict:
    """Run probes ``names`` on a run directory's newest checkpoint (holding its lock); returns all
    its probe results. ``replicas`` (indices; None: all): probe only these, the others' values
    NaN (:func:`full_replica_axis`); the pipeline gives the replicas of the run's chosen rate."""
    run_dir = Path(run_dir)
    names = expand(names)
    with RunDir(run_dir).lock("probe"):  # re-entrant: a run that trains then probes holds it already
        run = run or load_trained(run_dir)
        options = options or ProbeOptions.from_config(run.config)
        total = run.num_replicas
        subset = replicas is not None and sorted(replicas) != list(range(total))
        probed = run.select(replicas) if subset else run
        results = read_probes(run_dir)
        arrays: dict[str, np.ndarray] = {}
        npz_path = RunDir(run_dir).probe_arrays_file
        if npz_path.exists():
            with np.load(npz_path) as old:
                arrays.update({k: old[k] for k in old.files})
        for name in names:
            start = time.perf_counter()
            result = PROBES.get(name)(probed, options)
            if subset:
                result = full_replica_axis(result, list(replicas), total)
            result["seconds"] = time.perf_counter() - start
            result["step"] = run.step
            results[name] = _split_large(result, name, arrays)
            _write_probes(run_dir, results, arrays)  # each probe's result is kept as soon as it exists
        return results


def _write_probes(run_dir: Path, results: dict, arrays: dict[str, np.ndarray]) -> None:
    """``probes.npz`` (large arrays) then ``probes.json`` (which points into it), each atomically."""
    if arrays:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(RunDir(run_dir).probe_arrays_file, buffer.getvalue())
    atomic_write_json(RunDir(run_dir).probes_file, results)


def applicable_probes(run: TrainedRun) -> list[str]:
    """Every probe that makes sense for a run: translation probes for inputs
    with spatial axes, position for canvas runs, locality for dense first layers, cost."""
    names = ["shift", "consistency", "one_pixel"]
    if hasattr(run.model, "layers"):
        names.append("equivariance")
    if run.dataset is not None and run.dataset.info.get("canvas"):
        names.append("position")
    try:
        locality.check_dense_first(run.model)
        names.append("locality")
    except UserError:
        pass
    return [*names, "cost"]


def missing_probes(run_dir: Path, names) -> list[str]:
    done = read_probes(run_dir)
    return [n for n in expand(names) if n not in done]


__all__ = [
    "applicable_probes",
    "GROUPS",
    "PROBES",
    "ProbeOptions",
    "expand",
    "missing_probes",
    "read_probes",
    "register_probe",
    "run_probes",
    "tracking_functions",
]
