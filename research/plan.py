"""``cvd reproduce --profile P --plan``: what a profile costs, before anything trains.

For every run of every study: its data set (present here or missing), replicas,
parameters, training FLOPs, sequential steps, peak device memory and checkpoint
size, all from abstract shapes (``jax.eval_shape`` and a traced forward pass;
nothing is allocated or trained). Then the totals, a time estimate, and a check:
a profile whose largest run does not fit the device's memory, or whose
checkpoints do not fit the disk, is refused (one line naming the run).

The estimates, and what they assume:

* training FLOPs: 2 x (forward multiply-accumulates per example) for a forward
  pass, 3x that for a training step, for every replica on every training
  example of every epoch up to ``train.epochs`` (after rate halving only the
  kept replicas), plus the evaluation passes (val and test at every
  evaluation, and the final pass over train, val and test). Early stopping
  is not known before the runs: the estimate counts the epoch bound; nor is
  grid extension (one piece of a run: its seeds at one rate, counted apart);
* peak device memory: per replica, float32 parameters, gradients and two Adam
  moments (16 bytes a parameter), plus a training batch's activations twice
  (kept for the backward pass, and their gradients: every intermediate value of
  the traced forward pass) or an evaluation batch's, whichever is more, plus
  the data set on the device (float32): :mod:`research.train.footprint`, the
  estimate every ``cvd train`` also checks before it allocates anything;
* a checkpoint: parameters and both Adam moments of every replica (12 bytes a
  parameter a replica); a run keeps ``train.keep_checkpoints`` of them, and
  deletes them when done if ``train.keep_final_checkpoint`` is off;
* kernel-regression runs (``task = "kernel_regression"``): the float64 Gram
  matrices of the NNGP and the NTK (train x every split), in host memory (numpy), not on the device;
  their time: pairs of examples at :func:`research.kernels.pair_seconds` (CPU seconds per
  pair, measured), added on CPU and GPU alike;
* time: a run takes, on a GPU, FLOPs at :data:`GPU_EFFECTIVE_FLOPS` plus
  :data:`GPU_STEP_OVERHEAD_S` per sequential step; on CPU, FLOPs at
  :data:`CPU_EFFECTIVE_FLOPS` plus :data:`CPU_STEP_OVERHEAD_S` a step plus
  :data:`CPU_RUN_OVERHEAD_S` a run (fitted to the paper profile's measured runs).
  Every study's runs share one queue (:func:`research.sweep.run_sweeps`), as
  long as its longest run or its runs' sum over the workers; the runs that time
  themselves follow, one at a time. A profile that extends its grids adds
  :data:`EXTENSION_SHARE` of one piece per grid. These are planning numbers
  (stated in the output), not measurements of the run to come.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from research.config import load_config
from research.data import dataset_shape
from research.data.sources import source_available
from research.errors import UserError
from research.kernels import pair_seconds
from research.rundir import run_config_json, training_key
from research.sweep import study_runs
from research.sweep.scheduler import times_itself
from research.train.footprint import GPU_TARGET, device_memory, model_sizes, peak_bytes
from research.train.rate_choice import halved_count, halving_epoch
from research.train.spec import RunSpec

GPU_EFFECTIVE_FLOPS = 10e12  # what small models reach on such a GPU in float32 (about 15% of its TF32 peak)
GPU_STEP_OVERHEAD_S = 2e-4  # per sequential step inside lax.scan (launches, the host loop)
# A CPU run's time on one worker is FLOPs at CPU_EFFECTIVE_FLOPS, plus CPU_STEP_OVERHEAD_S a
# sequential step, plus CPU_RUN_OVERHEAD_S a run (compilation, data, checkpoints, probes): a
# least-squares fit (python -m benchmarks.plan_fit; benchmarks/README.md, "Measurements behind
# rules in the code") to the worker seconds of four paper studies at 87ac939 on the 2-core
# development machine, two workers side by side: weight_sharing, translation, pooling and
# position, 78 trainings of which 12 grid pieces, which took 70% of the paper run of 31194ff.
# weight_sharing and translation ran while the test suite ran beside them for 22 of their 56
# minutes, so the fit is on the slow side. (Before: 1.52e10 FLOP/s, 0 s a step and 54 s a run,
# fitted to 31194ff's study-by-study wall times, waiting included, with every replica probed.)
CPU_EFFECTIVE_FLOPS = 2.9e10
CPU_STEP_OVERHEAD_S = 0.0146
CPU_RUN_OVERHEAD_S = 36.3
EXTENSION_SHARE = 0.18
"""Grid extension cannot be known before the runs: the plan counts this share of one piece
per run with a grid. The paper run of 31194ff trained 80 pieces for 140 grids (0.57); 54 of them
were the MNIST-1D conv and locally connected nets' step to 0.1, which their grid now holds
(experiments/common.py, ``mnist1d_local_rates``). The four studies above trained 12 pieces for
66 grids (0.18)."""


@dataclass(frozen=True)
class RunCost:
    study: str
    run_id: str
    dataset: str
    data_present: bool
    task: str
    replicas: int
    params: int  # per replica
    train_flops: float
    steps: int  # sequential steps (replicas run together)
    peak_bytes: float
    checkpoint_bytes: float  # one checkpoint
    keep: int

    keep_final: bool = True  # False: its checkpoints are deleted once it is done
    training: str = ""  # its training key: runs of several studies that train alike train once
    host_seconds: float = 0.0  # kernel regression: its kernels' numpy time on the host, CPU or GPU alike
    piece_flops: float = 0.0  # one grid-extension piece of it (its seeds at one rate); 0 without a grid
    piece_steps: int = 0
    timed: bool = False  # it times itself (research.sweep.scheduler.TIMED_PROBES): run alone, after the others

    @property
    def disk_bytes(self) -> float:
        """What the run leaves on disk when done."""
        return self.checkpoint_bytes * self.keep if self.keep_final else 0.0

    @property
    def transient_bytes(self) -> float:
        """What it holds while it trains."""
        return self.checkpoint_bytes * self.keep


def halved_replica_epochs(spec: RunSpec, epochs: int) -> float:
    """Replica-epochs a run trains at most: every replica until the evaluation that halves the
    rates (if on), then the replicas of the better half of the rates (:mod:`research.train.rate_choice`). Early stopping
    can only make it less; the plan counts the bound."""
    at = halving_epoch(float(spec.config.train.halve_rates_at), epochs)
    if at is not None:  # the first validation evaluation at or past that epoch decides
        at = next((e + 1 for e in range(at - 1, epochs) if spec.evaluation_due(e, end_of_epoch=True)), epochs)
    rates = len(set(spec.learning_rates))
    if at is None or rates < 2 or at >= epochs:
        return float(spec.replicas * epochs)
    kept = spec.replicas // rates * halved_count(rates)
    return float(spec.replicas * at + kept * (epochs - at))


def run_cost(study: str, run_id: str, config) -> RunCost:
    """What one run costs, from its config alone."""
    data = config.data
    shape = dataset_shape(data)
    present = source_available(data.name, data.dir)
    splits = shape.splits
    n_all = sum(splits.values())
    training = training_key(run_config_json(config))
    if config.task == "kernel_regression":
        gram = splits["train"] * n_all * 8
        common = dict(replicas=1, params=0, steps=0, checkpoint_bytes=0.0, keep=0, training=training)
        pairs = splits["train"] ** 2 / 2 + splits["train"] * (n_all - splits["train"])  # the training Gram once, symmetric
        seconds = pairs * pair_seconds(config.model, shape.input_shape)
        # Two kernels (NNGP and NTK), each held for train x every split, plus the eigendecomposition.
        return RunCost(
            study, run_id, data.name, present, config.task, train_flops=0.0, peak_bytes=6.0 * gram, host_seconds=seconds, **common
        )
    spec = RunSpec.build(config, shape)
    replicas = spec.replicas
    params, macs, _ = model_sizes(spec)
    epochs = int(config.train.epochs)
    evaluations = epochs // max(1, int(config.train.eval_every_epochs))
    evaluated = (splits.get("val", 0) + splits["test"]) * evaluations + n_all

    def training_flops(replica_epochs: float, replicas: int) -> float:
        return float(2 * macs * (3 * splits["train"] * replica_epochs + replicas * evaluated))

    rates = len(set(spec.learning_rates))
    flops = training_flops(halved_replica_epochs(spec, epochs), replicas)
    # One grid-extension piece: the same seeds at one rate (research/sweep/extend.py), never
    # halved, the same steps (replicas run together).
    seeds = replicas // rates
    piece_flops = training_flops(float(seeds * epochs), seeds) if rates > 1 else 0.0
    peak = peak_bytes(spec)  # the estimate every cvd train checks too
    return RunCost(
        study,
        run_id,
        data.name,
        present,
        config.task,
        replicas,
        params,
        flops,
        spec.total_steps,
        float(peak),
        float(12 * params * replicas),
        int(config.train.keep_checkpoints),
        bool(config.train.keep_final_checkpoint),
        training,
        piece_flops=piece_flops,
        piece_steps=spec.total_steps if rates > 1 else 0,
        timed=times_itself(config),
    )


def plan_profile(profile: str, studies: list[tuple[str, str]]) -> list[RunCost]:
    """Every run of every ``(study name, spec)`` of ``profile``."""
    return [run_cost(name, rid, load_config(spec, overrides)) for name, spec in studies for rid, overrides in study_runs(spec)]


def free_disk(workdir: Path) -> float:
    path = Path(workdir).resolve()
    while not path.exists():
        path = path.parent
    return float(shutil.disk_usage(path).free)


def distinct(costs: list[RunCost]) -> list[RunCost]:
    """One cost per distinct training (``cvd reproduce`` trains runs that train alike once)."""
    first: dict[str, RunCost] = {}
    for c in sorted(costs, key=lambda c: c.timed):  # the queue's first listing trains it, timed studies' last
        first.setdefault(c.training or f"{c.study}/{c.run_id}", c)
    return list(first.values())


def run_seconds(cost: RunCost, on_gpu: bool, piece: bool = False) -> float:
    """A worker's planning seconds for ``cost`` (or for one grid piece of it)."""
    if cost.task != "train":
        return cost.host_seconds
    flops, steps = (cost.piece_flops, cost.piece_steps) if piece else (cost.train_flops, cost.steps)
    if on_gpu:
        return flops / GPU_EFFECTIVE_FLOPS + steps * GPU_STEP_OVERHEAD_S
    return flops / CPU_EFFECTIVE_FLOPS + steps * CPU_STEP_OVERHEAD_S + CPU_RUN_OVERHEAD_S


def estimated_seconds(costs: list[RunCost], on_gpu: bool, workers: int = 1, extend_grids: bool = False) -> float:
    """The planning wall time of ``costs``, each distinct training counted once: every study's
    runs in one queue, as long as its longest run or its runs' sum over ``workers``, whichever
    is more, then the runs that time themselves one after another. With ``extend_grids``,
    each run with a grid adds :data:`EXTENSION_SHARE` of one piece."""
    costs = distinct(costs)

    def seconds(c: RunCost) -> float:
        extension = EXTENSION_SHARE * run_seconds(c, on_gpu, piece=True) if extend_grids and c.piece_steps else 0.0
        return run_seconds(c, on_gpu) + extension

    queued = [seconds(c) for c in costs if not c.timed]
    alone = sum(seconds(c) for c in costs if c.timed)
    return (max(max(queued), sum(queued) / max(1, workers)) if queued else 0.0) + alone


def check_fits(costs: list[RunCost], device: str, memory: float, disk: float) -> None:
    """Refuse (one line naming the run) a plan whose largest run exceeds the device memory or
    whose checkpoints, all kept, exceed the free disk. (Kernel regression runs in numpy on the
    host, not on the device.)"""
    largest = max((c for c in costs if c.task == "train"), key=lambda c: c.peak_bytes)
    if largest.peak_bytes > memory:
        raise UserError(
            f"{largest.study} run {largest.run_id} needs about {largest.peak_bytes / 1e9:.1f} GB of device memory "
            f"({largest.replicas} replicas x {largest.params:,} parameters), more than the {memory / 1e9:.0f} GB of {device}"
        )
    needed = sum(c.disk_bytes for c in costs) + max(c.transient_bytes for c in costs)
    if needed > disk:
        biggest = max(costs, key=lambda c: c.disk_bytes)
        raise UserError(
            f"the profile's checkpoints need about {needed / 1e9:.1f} GB, more than the {disk / 1e9:.1f} GB free here; "
            f"the largest, {biggest.study} run {biggest.run_id}, keeps {biggest.keep} of {biggest.checkpoint_bytes / 1e9:.2f} GB"
        )


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f}"


def plan_lines(
    costs: list[RunCost],
    profile: str,
    device: str,
    memory: float,
    disk: float,
    on_gpu: bool,
    workers: int = 1,
    extend_grids: bool = False,
) -> list[str]:
    """The table (one row per study) and the totals; the time as :func:`estimated_seconds`."""
    lines = [
        f"plan of the {profile} profile: {len(costs)} runs; device: {device}, {memory / 1e9:.0f} GB; free disk {disk / 1e9:.0f} GB",
        "| study | runs | replicas | largest model (params) | training FLOPs | steps | peak device GB (largest run) "
        "| checkpoint GB (largest) | checkpoints GB (all kept) | data missing |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for study in dict.fromkeys(c.study for c in costs):
        rows = [c for c in costs if c.study == study]
        missing = sorted({c.dataset for c in rows if not c.data_present})
        lines.append(
            f"| {study} | {len(rows)} | {sum(c.replicas for c in rows)} | {max(c.params for c in rows):,} "
            f"| {sum(c.train_flops for c in rows):.2e} | {sum(c.steps for c in rows):,} | {_gb(max(c.peak_bytes for c in rows))} "
            f"| {_gb(max(c.checkpoint_bytes for c in rows))} | {_gb(sum(c.disk_bytes for c in rows))} "
            f"| {', '.join(missing) or '-'} |"
        )
    seconds = estimated_seconds(costs, on_gpu, workers, extend_grids)
    rate = (
        f"{GPU_EFFECTIVE_FLOPS:.0e} FLOP/s and {GPU_STEP_OVERHEAD_S * 1e3:.1f} ms a step"
        if on_gpu
        else f"{CPU_EFFECTIVE_FLOPS:.2e} FLOP/s, {CPU_STEP_OVERHEAD_S * 1e3:.1f} ms a step and {CPU_RUN_OVERHEAD_S:.0f} s a run"
    )
    if workers > 1:
        rate += f", on {workers} workers side by side"
    host = sum(c.host_seconds for c in distinct(costs))
    if host:
        rate += f", plus {host / 60:.0f} min of kernel regression on the host"
    if extend_grids:
        pieces = sum(bool(c.piece_steps) for c in distinct(costs))
        rate += f"; grid extension counted as {EXTENSION_SHARE:.0%} of one piece for each of {pieces} grids"
    missing = sorted({c.dataset for c in costs if not c.data_present})
    largest = max((c for c in costs if c.task == "train"), key=lambda c: c.peak_bytes)
    lines += [
        f"total: {sum(c.train_flops for c in costs):.2e} training FLOPs, {sum(c.steps for c in costs):,} sequential steps, "
        f"checkpoints {_gb(sum(c.disk_bytes for c in costs))} GB",
        f"largest run: {largest.study} {largest.run_id}: {largest.replicas} replicas x {largest.params:,} parameters, "
        f"about {_gb(largest.peak_bytes)} GB at peak",
        f"estimated time: {seconds / 3600:.1f} {'GPU-' if on_gpu else ''}hours for {len(distinct(costs))} distinct trainings "
        f"(at {rate}; early stopping not modelled; a planning figure)",
        "data sets missing here: "
        + (", ".join(f"{d} ({sum(c.dataset == d for c in costs)} runs)" for d in missing) if missing else "none"),
    ]
    return lines


__all__ = ["GPU_TARGET", "RunCost", "check_fits", "device_memory", "free_disk", "plan_lines", "plan_profile", "run_cost"]
