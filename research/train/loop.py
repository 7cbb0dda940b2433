"""``train_and_evaluate(config, workdir)``: one run, R seeds, resumable.

The one entry point that the CLI, the sweep launchers, tests and notebooks
call. It validates everything (config values, data set, model, optimizer)
before writing anything, then trains with the :class:`~research.train.engine.Engine`,
writing ``config.json``, ``metrics.jsonl``, ``checkpoints/`` and finally
``summary.json`` into the workdir. Started again with the same config, it
resumes from the newest readable checkpoint and ends bit-identical to an
uninterrupted run (timing fields aside).

Order at a step boundary: log train metrics, evaluate (at epoch ends), flush
the metrics, then checkpoint. So every record up to a checkpoint's step is on
disk before the checkpoint exists, and a resume drops the records after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from research.data import Dataset, load_dataset, model_inputs
from research.errors import UserError
from research.models import count_params, get_model
from research.models.embed import EMBEDDABLE, embed_network_params
from research.progress import progress_bar
from research.rundir import atomic_write_json, make_workdir, prepare_workdir, run_config_json, write_config
from research.train.checkpoint import Checkpointer
from research.train.engine import Engine, TrainState, choose_strategy, replica_sharding, run_once
from research.train.metrics import MetricWriter, TensorBoardWriter, read_metrics, truncate_metrics
from research.train.optim import build_optimizer

TIMING_KEYS = ("wall_time_s", "timing")


def _positive(section, key: str, minimum: int = 1) -> int:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def validate(config: ml_collections.ConfigDict) -> None:
    """Range checks that types alone do not catch."""
    _positive(config, "seeds")
    _positive(config, "seed", 0)
    for key in ("batch_size", "epochs", "eval_batch_size", "keep_checkpoints", "eval_every_epochs"):
        _positive(config.train, key)
    for key in ("log_every_steps", "checkpoint_every_steps", "augment_shift"):
        _positive(config.train, key, 0)
    lrs = tuple(config.optimizer.learning_rates)
    if any(isinstance(lr, (str, bool)) or float(lr) <= 0 for lr in lrs):
        raise UserError(f"optimizer.learning_rates must be > 0, got {lrs}")
    _in_range(config.optimizer, OPTIMIZER_RANGES)


# The numeric optimizer keys' valid ranges: key -> (lowest allowed, first value above the range).
OPTIMIZER_RANGES = {
    "b1": (0.0, 1.0),
    "b2": (0.0, 1.0),
    "momentum": (0.0, 1.0),
    "weight_decay": (0.0, float("inf")),
    "grad_clip_norm": (0.0, float("inf")),
    "warmup_steps": (0, float("inf")),
}


def _in_range(section, ranges: dict[str, tuple[float, float]]) -> None:
    for key, (low, above) in ranges.items():
        value = section[key]
        if not low <= value < above:
            upper = f" and < {above:g}" if above != float("inf") else ""
            raise UserError(f"optimizer.{key} must be >= {low:g}{upper}, got {value!r}")


def replica_grid(config) -> tuple[list[int], list[float]]:
    """``(seeds, learning_rates)``, one entry per replica: every rate of
    ``optimizer.learning_rates`` (or the one ``learning_rate``) with every seed,
    rate-major. Replicas of one rate share their seeds with the other rates, so
    rates are compared on the same initialisations and batch orders."""
    rates = [float(v) for v in config.optimizer.learning_rates] or [float(config.optimizer.learning_rate)]
    seeds = [config.seed + s for s in range(config.seeds)]
    return [seed for _ in rates for seed in seeds], [rate for rate in rates for _ in seeds]


def model_fields(config) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.model.items() if k != "name"}


def build_model(config, dataset: Dataset, seed: int, **changes) -> nnx.Module:
    fields = {**model_fields(config), **changes}
    return get_model(config.model.name, dataset.input_shape, dataset.num_classes, nnx.Rngs(jax.random.key(seed)), **fields)


def replica_initializer(config, dataset: Dataset, engine: Engine, seeds: list[int], lrs: list[float], **model_changes):
    """``(init, args)``: ``init(*args)`` builds the stacked train state of every replica
    (run it with :func:`run_once`, or ``jax.eval_shape`` it for the shapes)."""

    def init_one(seed, learning_rate):
        params = nnx.state(build_model(config, dataset, seed, **model_changes), nnx.Param)
        return engine.init_replica(params, seed, learning_rate)

    return jax.vmap(init_one), (jnp.asarray(seeds, jnp.uint32), jnp.asarray(lrs, jnp.float32))


def validate_embedding(config, model) -> tuple[int, str]:
    """``(epoch, target family)`` of an eFCN run (``train.embed_at_epoch`` > 0), else ``(0, "")``."""
    at = int(config.train.embed_at_epoch)
    if not at:
        return 0, ""
    target = config.train.embed_into
    if not 0 < at < config.train.epochs:
        raise UserError(f"train.embed_at_epoch must be between 1 and epochs-1 ({config.train.epochs - 1}), got {at}")
    family = getattr(model, "family", None)
    if family is None:
        raise UserError(f"train.embed_at_epoch needs a lattice model (model.family); {config.model.name!r} has none")
    if target not in EMBEDDABLE[family]:
        raise UserError(f"cannot embed {family} into {target!r} exactly; possible: {', '.join(EMBEDDABLE[family])}")
    return at, target


@dataclass(frozen=True)
class Tracker:
    """A probe recorded during training: ``record(model, stacked params)`` returns per-replica
    arrays; ``check(model)`` may refuse the model up front (a one-line UserError)."""

    record: Callable[[nnx.Module, nnx.State], dict[str, np.ndarray]]
    check: Callable[[nnx.Module], None] = lambda model: None


# -- the plan: everything checked before anything is written ----------------------
@dataclass
class Phase:
    """A stretch of training with one model: the initial one, or the eFCN's embedded one.

    ``model`` is abstract (shapes only); ``engine`` holds its compiled step and
    evaluation; ``abstract_state`` is what its checkpoints restore into."""

    name: str
    model: nnx.Module
    engine: Engine | None = None
    strategy: str = "scan"
    abstract_state: Any = None


@dataclass
class RunPlan:
    """One run's shape, derived from its config and data set (nothing trained)."""

    config: ml_collections.ConfigDict
    dataset: Dataset
    seeds: list[int]
    learning_rates: list[float]
    steps_per_epoch: int
    total_steps: int
    log_every: int
    switch_step: int  # eFCN: the step at which the embedded phase starts (total + 1: never)
    embed_into: str
    tx: optax.GradientTransformation
    phases: dict[str, Phase]

    @property
    def replicas(self) -> int:
        return len(self.seeds)

    def evaluation_due(self, epoch: int, end_of_epoch: bool) -> bool:
        """Evaluate after ``epoch`` (0-based) every ``eval_every_epochs`` and at the last one."""
        every = self.config.train.eval_every_epochs
        return end_of_epoch and ((epoch + 1) % every == 0 or epoch + 1 == self.config.train.epochs)


def plan_run(config: ml_collections.ConfigDict, track: dict[str, Tracker]) -> RunPlan:
    """Validate the config, data set, model and optimizer; raises UserError, writes nothing."""
    validate(config)
    dataset = load_dataset(config.data)
    seeds, lrs = replica_grid(config)
    batch, n_train = config.train.batch_size, dataset.splits["train"]
    if batch > n_train:
        raise UserError(f"train.batch_size={batch} is larger than the training set ({n_train} examples)")
    steps_per_epoch = n_train // batch
    total_steps = steps_per_epoch * config.train.epochs
    # Abstract build: validates the model fields and gives the graph, at no compute.
    model = nnx.eval_shape(lambda: build_model(config, dataset, seeds[0]))
    phases = {"initial": Phase("initial", model)}
    # eFCN (d'Ascoli et al. 2019): train as model.family, then embed exactly into
    # another family at an epoch boundary and train on with a fresh optimizer.
    embed_at, embed_into = validate_embedding(config, model)
    if embed_at:
        phases["embedded"] = Phase("embedded", nnx.eval_shape(lambda: build_model(config, dataset, seeds[0], family=embed_into)))
    for tracker in track.values():  # a tracker may refuse the model up front
        tracker.check(model)
    sharded = replica_sharding(len(seeds)) is not None
    for phase in phases.values():
        phase.strategy = choose_strategy(config.train.strategy, phase.model, jax.default_backend(), len(seeds), sharded)
    return RunPlan(
        config=config,
        dataset=dataset,
        seeds=seeds,
        learning_rates=lrs,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        log_every=config.train.log_every_steps or steps_per_epoch,
        switch_step=embed_at * steps_per_epoch if embed_at else total_steps + 1,
        embed_into=embed_into,
        tx=build_optimizer(config.optimizer, total_steps),
        phases=phases,
    )


def compile_phases(plan: RunPlan) -> None:
    """Give every phase its engine (compiled on first use) and abstract train state."""
    config = plan.config
    chunk = math.gcd(plan.steps_per_epoch, plan.log_every)
    for phase in plan.phases.values():
        phase.engine = Engine(
            nnx.graphdef(phase.model), plan.tx, config.train.batch_size, chunk=chunk, augment_shift=config.train.augment_shift
        )
        changes = {"family": plan.embed_into} if phase.name == "embedded" else {}
        init, args = replica_initializer(config, plan.dataset, phase.engine, plan.seeds, plan.learning_rates, **changes)
        phase.abstract_state = jax.eval_shape(init, *args)


def segments(start: int, total: int, steps_per_epoch: int, log_every: int) -> Iterator[tuple[int, int, int]]:
    """``(epoch, begin, end)``: the steps ``begin..end-1`` of ``epoch`` from global step
    ``start`` to ``total``, each segment ending at the next log point or the epoch's end."""
    step = start
    while step < total:
        epoch, begin = divmod(step, steps_per_epoch)
        end = min(steps_per_epoch, (step // log_every + 1) * log_every - epoch * steps_per_epoch)
        yield epoch, begin, end
        step += end - begin


# -- data on the device -------------------------------------------------------------
@dataclass
class EvalSplit:
    """One evaluation split on the device, padded to whole batches (``mask`` marks real examples)."""

    x: jax.Array
    y: jax.Array
    mask: jax.Array
    batch: int


def _eval_split(x: np.ndarray, y: np.ndarray, batch: int, put: Callable) -> EvalSplit:
    padded = math.ceil(len(y) / batch) * batch
    mask = np.zeros(padded, np.float32)
    mask[: len(y)] = 1.0
    x = np.concatenate([x, np.zeros((padded - len(y), *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros(padded - len(y), y.dtype)])
    return EvalSplit(*put((x, y, mask)), batch)


def device_data(plan: RunPlan) -> tuple[jax.Array, jax.Array, dict[str, EvalSplit]]:
    """Training inputs and labels, and the evaluation splits (``val`` when carved,
    ``test``; ``train`` is evaluated once, at the end), all on the device."""
    shardings = replica_sharding(plan.replicas)
    put = (lambda tree: jax.device_put(tree, shardings[1])) if shardings else jax.device_put
    ds = plan.dataset
    inputs = model_inputs(ds, plan.config.data.standardize)
    labels = {"train": ds.y_train, "val": ds.y_val, "test": ds.y_test}
    # One batch size for every split (the smaller ones padded up to it): one evaluation program
    # to compile per run instead of one per split size (val 400 and test 1000 were two). Sized by
    # the splits evaluated every epoch; train, evaluated once, takes as many batches as it needs.
    per_epoch = [len(labels[name]) for name in inputs if name != "train"] or [len(labels["train"])]
    eval_batch = min(plan.config.train.eval_batch_size, max(per_epoch))
    evals = {name: _eval_split(x, labels[name], eval_batch, put) for name, x in inputs.items()}
    x_train, y_train = put((inputs["train"], ds.y_train))
    return x_train, y_train, evals


def _on_replica_devices(state, replicas: int):
    shardings = replica_sharding(replicas)
    return jax.device_put(state, shardings[0]) if shardings else state


def embed_state(plan: RunPlan, state: TrainState) -> TrainState:
    """The eFCN switch: every replica's params embedded exactly; a fresh optimizer state."""
    initial, embedded = plan.phases["initial"].model, plan.phases["embedded"].model
    pure = jax.device_get(nnx.to_pure_dict(state["params"]))
    per_replica = [
        embed_network_params(initial, jax.tree.map(lambda a, r=r: a[r], pure), plan.embed_into) for r in range(plan.replicas)
    ]
    params = nnx.state(embedded, nnx.Param)
    nnx.replace_by_pure_dict(params, jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *per_replica))
    opt_state = jax.vmap(plan.tx.init)(params)
    opt_state.hyperparams["learning_rate"] = state["opt_state"].hyperparams["learning_rate"]
    return _on_replica_devices({**state, "params": params, "opt_state": opt_state}, plan.replicas)


# -- the run --------------------------------------------------------------------------
class RunLog:
    """Where a run writes as it goes: metrics (one record per replica), checkpoints
    labelled by phase, the progress bar. ``elapsed()`` counts earlier sessions too."""

    def __init__(self, workdir: Path, plan: RunPlan, config_json: dict, progress: bool, t_start: float):
        self.workdir, self.plan, self.config_json, self.t_start = workdir, plan, config_json, t_start
        self.checkpointer = Checkpointer(workdir / "checkpoints", keep=plan.config.train.keep_checkpoints)
        self.elapsed_before = 0.0
        self.labels = [{"replica": r, "seed": s} for r, s in enumerate(plan.seeds)]
        self.tags = [f"lr_{rate:g}_seed_{seed}" for seed, rate in zip(plan.seeds, plan.learning_rates)]
        self.writer: MetricWriter | None = None
        self.tensorboard: TensorBoardWriter | None = None
        self.bar = None
        self.progress = progress

    def restore(self) -> tuple[int, str, TrainState | None]:
        """``(step, phase name, state)`` of the newest readable checkpoint, or ``(0, "initial", None)``."""
        phases = self.plan.phases
        restored = self.checkpointer.restore_latest(lambda meta: phases[meta.get("phase", "initial")].abstract_state)
        start, phase, state = 0, "initial", None
        if restored is not None:
            start, state, meta = restored
            phase, self.elapsed_before = meta.get("phase", "initial"), float(meta.get("wall_time_s", 0.0))
            state = _on_replica_devices(state, self.plan.replicas)
        truncate_metrics(self.workdir / "metrics.jsonl", start)  # records after the checkpoint are redone
        self.writer = MetricWriter(self.workdir / "metrics.jsonl")
        # On resume, TensorBoard drops what an interrupted session wrote after the checkpoint
        # (kept: its own step, as in metrics.jsonl).
        self.tensorboard = TensorBoardWriter(self.workdir, purge_step=start + 1 if start else None)
        if start == 0:
            self.tensorboard.write_hparams(self.config_json, ["val/accuracy", "test/accuracy"])
        self.bar = progress_bar(
            total=self.plan.total_steps, initial=start, disable=not self.progress, unit="step", desc=self.workdir.name
        )
        return start, phase, state

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def save(self, step: int, state: TrainState, phase: Phase) -> None:
        self.checkpointer.save(step, state, {"step": step, "wall_time_s": self.elapsed(), "phase": phase.name})

    def write(self, step: int, split: str, values: dict[str, np.ndarray], alive: np.ndarray | None = None, **labels) -> None:
        """One record per replica (only live ones for ``train``) in metrics.jsonl; in TensorBoard
        each replica's scalars and their mean over the replicas written."""
        written = []
        for r in range(self.plan.replicas):
            if split == "train" and not alive[r]:
                continue
            written.append(r)
            extra = {"alive": bool(alive[r])} if alive is not None and split != "train" else {}
            scalars = {k: v[r] for k, v in values.items()}
            self.writer.write_scalars(step, scalars, split=split, **self.labels[r], **labels, **extra)
            self.tensorboard.write_scalars(step, split, scalars, suffix=self.tags[r])
        if written:
            self.tensorboard.write_scalars(step, split, {k: np.mean(np.asarray(v)[written]) for k, v in values.items()})

    def flush(self) -> None:
        self.writer.flush()
        self.tensorboard.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.checkpointer.close()


def evaluate_splits(phase: Phase, state: TrainState, evals: dict[str, EvalSplit], names) -> dict[str, dict[str, np.ndarray]]:
    """Per-replica loss and accuracy on each named split that exists."""
    return {
        name: phase.engine.evaluate(state["params"], s.x, s.y, s.mask, s.batch, phase.strategy)
        for name, s in evals.items()
        if name in names
    }


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    track: dict[str, Tracker] | None = None,
) -> dict:
    """Train ``seeds x len(learning_rates)`` replicas of one config in one program; returns the summary.

    ``track`` maps names to functions of ``(model, stacked params)`` returning
    per-replica arrays; they are recorded at step 0 and at every evaluation as
    ``split="track"`` records (e.g. the locality index of ``research.probes``).
    Each :class:`Tracker`'s ``check(model)`` may refuse the model up front.
    """
    t_start, workdir, track = time.perf_counter(), Path(workdir), track or {}
    plan = plan_run(config, track)
    config_json = run_config_json(config)
    finished = prepare_workdir(workdir, config_json, overwrite)
    if finished is not None:
        return finished
    make_workdir(workdir)
    write_config(workdir, config_json)
    compile_phases(plan)
    log = RunLog(workdir, plan, config_json, progress, t_start)
    try:
        return _train(plan, log, track)
    except BaseException as e:
        if not isinstance(e, KeyboardInterrupt):
            failed = {"status": "failed", "error": f"{type(e).__name__}: {e}", "wall_time_s": log.elapsed(), "replicas": []}
            atomic_write_json(workdir / "summary.json", {**failed, "num_params": count_params(plan.phases["initial"].model)})
        raise
    finally:
        log.close()


def record_tracked(log: RunLog, track: dict[str, Tracker], phase: Phase, state: TrainState, step: int, epoch: int) -> None:
    """Tracked probes' per-replica values as ``split="track"`` records."""
    for tracker in track.values():
        log.write(step, "track", tracker.record(phase.model, state["params"]), epoch=epoch)


def _train(plan: RunPlan, log: RunLog, track: dict[str, Tracker]) -> dict:
    """The loop: segments of steps, then train metrics, evaluation, checkpoint (in that order)."""
    config, spe = plan.config, plan.steps_per_epoch
    x_train, y_train, evals = device_data(plan)
    start, phase_name, state = log.restore()
    phase = plan.phases[phase_name]
    if state is None:
        init, args = replica_initializer(config, plan.dataset, phase.engine, plan.seeds, plan.learning_rates)
        state = _on_replica_devices(run_once(init, *args), plan.replicas)

    if start == 0:
        record_tracked(log, track, phase, state, 0, 0)
    last_saved, perms_epoch = (start if start else -1), None
    for epoch, begin, end in segments(start, plan.total_steps, spe, plan.log_every):
        if epoch * spe + begin == plan.switch_step and phase.name == "initial":
            state, phase = embed_state(plan, state), plan.phases["embedded"]
        if perms_epoch != epoch:
            perms, perms_epoch = phase.engine.permutations(state, epoch, plan.dataset.splits["train"]), epoch
        state = phase.engine.run_steps(state, x_train, y_train, perms, begin, end, phase.strategy)
        step = epoch * spe + end
        state, train = phase.engine.read_window(state)
        alive = np.asarray(jax.device_get(state["alive"]))
        rates = np.asarray(jax.device_get(state["opt_state"].hyperparams["learning_rate"]))
        log.write(step, "train", {**train, "learning_rate": rates}, alive)
        postfix = {"loss": f"{np.mean(train['loss'][alive]):.3f}" if alive.any() else "nan"}
        if plan.evaluation_due(epoch, end == spe):
            for split, values in evaluate_splits(phase, state, evals, ("val", "test")).items():
                log.write(step, split, values, alive, epoch=epoch + 1)
                postfix[f"{split}_acc"] = f"{np.mean(values['accuracy']):.4f}"
            record_tracked(log, track, phase, state, step, epoch + 1)
        log.flush()
        log.bar.set_postfix(postfix, refresh=False)  # shown by the update: this window's numbers
        log.bar.update(end - begin)
        every = config.train.checkpoint_every_steps
        if every and step - last_saved >= every and step < plan.total_steps:
            log.save(step, state, phase)
            last_saved = step
    if last_saved != plan.total_steps:
        log.save(plan.total_steps, state, phase)
    final = evaluate_splits(phase, state, evals, ("train", "val", "test"))
    summary = run_summary(plan, log, phase, state, final)
    atomic_write_json(log.workdir / "summary.json", summary)
    return summary


def _val_gain_last_fifth(metrics_path: Path, replicas: int, total_steps: int) -> list[float | None]:
    """Per replica: validation accuracy at the end minus at the last evaluation at or
    before 80% of training (None without such an evaluation or a val split)."""
    curves: dict[int, dict[int, float]] = {}
    for record in read_metrics(metrics_path):
        if record.get("split") == "val":
            curves.setdefault(record["replica"], {})[record["step"]] = float(record["accuracy"])
    gains = []
    for r in range(replicas):
        curve = curves.get(r, {})
        early = [step for step in curve if step <= 0.8 * total_steps]
        gains.append(curve[total_steps] - curve[max(early)] if early and total_steps in curve else None)
    return gains


def run_summary(plan: RunPlan, log: RunLog, phase: Phase, state: TrainState, final: dict) -> dict:
    """``summary.json``: status, sizes, timing, and per replica its seed, learning rate,
    final train / val / test numbers, how much val accuracy still rose in the last fifth."""
    status = jax.device_get({"alive": state["alive"], "diverged_step": state["diverged_step"]})
    gains = _val_gain_last_fifth(log.workdir / "metrics.jsonl", plan.replicas, plan.total_steps)
    replicas = []
    for r, (seed, rate) in enumerate(zip(plan.seeds, plan.learning_rates)):
        measured = {f"{split}_{k}": float(values[k][r]) for split, values in final.items() for k in ("accuracy", "loss")}
        alive = bool(status["alive"][r])
        replicas.append(
            {
                "seed": seed,
                "learning_rate": rate,
                **measured,
                "val_accuracy_gain_last_fifth": gains[r],
                "diverged": not alive,
                "diverged_step": None if alive else int(status["diverged_step"][r]),
            }
        )
    initial = plan.phases["initial"].model
    summary = {
        "status": "diverged" if all(r["diverged"] for r in replicas) else "done",
        "num_params": count_params(phase.model),
        "wall_time_s": log.elapsed(),
        "timing": {"this_session_s": time.perf_counter() - log.t_start, "compiles": phase.engine.compiled_programs()},
        "steps": plan.total_steps,
        "epochs": plan.config.train.epochs,
        "strategy": phase.strategy,
        "replica_devices": _replica_device_count(plan.replicas),
        "model": plan.config.model.name,
        "head_inputs": head_inputs(phase.model),
        "dataset": plan.dataset.metadata(),
        "learning_rates": sorted(set(plan.learning_rates)),
        "replicas": replicas,
        "test_accuracy_mean": float(np.mean([r["test_accuracy"] for r in replicas])),
    }
    if "embedded" in plan.phases:
        summary["embedding"] = {
            "from": initial.family,
            "into": plan.embed_into,
            "at_epoch": plan.switch_step // plan.steps_per_epoch,
            "num_params_before": count_params(initial),
        }
    return summary


def head_inputs(model: nnx.Module) -> int | None:
    """Features entering a lattice net's head (after its last pooling and the head's flatten or
    global pool): what pooling and downsampling leave for the classifier. None for other models."""
    shape = getattr(model, "feature_shape", None)
    if shape is None:
        return None
    return math.prod(shape) if model.head == "flatten" else shape[-1]


def _replica_device_count(replicas: int) -> int:
    shardings = replica_sharding(replicas)
    return len(shardings[0].mesh.devices.flat) if shardings else 1


def strip_timing(summary: dict) -> dict:
    """A summary without its timing fields (for comparing runs)."""
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


__all__ = ["read_metrics", "strip_timing", "train_and_evaluate"]
