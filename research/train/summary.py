"""``summary.json`` of a trained run: status, sizes, timing and per replica its numbers.

Built by the run loop (:mod:`research.train.loop`) at the end of training from
the run's spec, its final state and evaluation, and the validation curve its
``metrics.jsonl`` holds.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx

from research.models import count_params
from research.rundir import RunDir
from research.train.early_stopping import BestValidation
from research.train.engine import TrainState, replica_sharding
from research.train.spec import Phase, RunSpec

TIMING_KEYS = ("wall_time_s", "timing")


def strip_timing(summary: dict) -> dict:
    """A summary without its timing fields (for comparing runs)."""
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


def val_gain_last_fifth(run_dir: RunDir, replicas: int, total_steps: int) -> list[float | None]:
    """Per replica: validation accuracy at the end minus at the last evaluation at or
    before 80% of training (None without such an evaluation or a val split)."""
    curves: dict[int, dict[int, float]] = {}
    for record in run_dir.metrics():
        if record.get("split") == "val":
            curves.setdefault(record["replica"], {})[record["step"]] = float(record["accuracy"])
    gains = []
    for r in range(replicas):
        curve = curves.get(r, {})
        early = [step for step in curve if step <= 0.8 * total_steps]
        gains.append(curve[total_steps] - curve[max(early)] if early and total_steps in curve else None)
    return gains


def head_inputs(model: nnx.Module) -> int | None:
    """Features entering a lattice net's head (after its last pooling and the head's flatten or
    global pool): what pooling and downsampling leave for the classifier. None for other models."""
    shape = getattr(model, "feature_shape", None)
    if shape is None:
        return None
    return math.prod(shape) if model.head == "flatten" else shape[-1]


def replica_device_count(replicas: int) -> int:
    shardings = replica_sharding(replicas)
    return len(shardings[0].mesh.devices.flat) if shardings else 1


def replica_records(spec: RunSpec, state: TrainState, final: dict, gains: list, best: BestValidation) -> list[dict]:
    """Per replica: seed, learning rate, final train / val / test numbers, the best validation
    epoch and the numbers there, divergence."""
    status = jax.device_get({"alive": state["alive"], "diverged_step": state["diverged_step"]})
    replicas = []
    for r, (seed, rate) in enumerate(zip(spec.seeds, spec.learning_rates)):
        measured = {f"{split}_{k}": float(values[k][r]) for split, values in final.items() for k in ("accuracy", "loss")}
        alive = bool(status["alive"][r])
        replicas.append(
            {
                "seed": seed,
                "learning_rate": rate,
                **measured,
                **best.replica_fields(r),
                "val_accuracy_gain_last_fifth": gains[r],
                "diverged": not alive,
                "diverged_step": None if alive else int(status["diverged_step"][r]),
            }
        )
    return replicas


def run_summary(
    spec: RunSpec, run_dir: RunDir, phase: Phase, state: TrainState, final: dict, timing: dict, best, step: int, halving=None
) -> dict:
    """``summary.json`` of a run that trained ``step`` steps: status, sizes, ``timing``
    (``wall_time_s``, ``this_session_s``), and per replica its seed, learning rate, final
    numbers, its best validation epoch and the numbers there (``best``: a
    :class:`~research.train.early_stopping.BestValidation`), and how much val accuracy
    still rose in the last fifth. A run that halved its rates (``halving``: a
    :class:`~research.train.rate_choice.RateHalving`) says when and which rates it kept; its
    dropped replicas' entries carry ``dropped_at_epoch`` and their numbers at that epoch."""
    gains = val_gain_last_fifth(run_dir, spec.replicas, step)
    replicas = replica_records(spec, state, final, gains, best)
    halved = halving is not None and halving.kept is not None
    for r, replica in enumerate(replicas):
        if halved and r not in halving.kept:
            replica["dropped_at_epoch"] = halving.decided_at
    summary = {
        "status": "diverged" if all(r["diverged"] for r in replicas) else "done",
        "num_params": count_params(phase.model),
        "wall_time_s": timing["wall_time_s"],
        "timing": {"this_session_s": timing["this_session_s"], "compiles": spec.engines[phase.name].compiled_programs()},
        "steps": step,
        "epochs": step // spec.steps_per_epoch,
        "max_epochs": spec.config.train.epochs,
        "stopped_early": step < spec.total_steps,
        "strategy": phase.strategy,
        "replica_devices": replica_device_count(spec.replicas),
        "model": spec.config.model.name,
        "head_inputs": head_inputs(phase.model),
        "dataset": spec.data.metadata(),
        "learning_rates": sorted(set(spec.learning_rates)),
        "replicas": replicas,
        "test_accuracy_mean": float(np.mean([r["test_accuracy"] for r in replicas])),
    }
    if halved:
        kept_rates = sorted({float(spec.learning_rates[r]) for r in halving.kept})
        summary["rate_halving"] = {"at_epoch": halving.decided_at, "kept_learning_rates": kept_rates}
    if "embedded" in spec.phases:
        initial = spec.initial.model
        summary["embedding"] = {
            "from": initial.family,
            "into": spec.embed_into,
            "at_epoch": spec.switch_step // spec.steps_per_epoch,
            "num_params_before": count_params(initial),
        }
    return summary
