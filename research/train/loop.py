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

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from research.data import model_inputs
from research.errors import disk_error
from research.models import count_params
from research.models.embed import embed_network_params
from research.progress import progress_bar
from research.rundir import RunDir, read_metrics, run_config_json
from research.train.checkpoint import Checkpointer
from research.train.early_stopping import BestValidation
from research.train.engine import TrainState, replica_sharding
from research.train.footprint import check_memory
from research.train.metrics import MetricWriter, TensorBoardWriter, truncate_metrics
from research.train.optim import applied_learning_rates
from research.train.rate_choice import RateHalving, halving_epoch
from research.train.spec import Phase, RunSpec, Tracker
from research.train.summary import run_summary, strip_timing


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


def device_data(spec: RunSpec) -> tuple[jax.Array, jax.Array, dict[str, EvalSplit]]:
    """Training inputs and labels, and the evaluation splits (``val`` when carved,
    ``test``; ``train`` is evaluated once, at the end), all on the device."""
    shardings = replica_sharding(spec.replicas)
    put = (lambda tree: jax.device_put(tree, shardings[1])) if shardings else jax.device_put
    ds = spec.data
    inputs = model_inputs(ds, spec.config.data.standardize)
    labels = {"train": ds.y_train, "val": ds.y_val, "test": ds.y_test}
    # One batch size for every split (the smaller ones padded up to it): one evaluation program
    # per run instead of one per split size. Sized by the splits evaluated every epoch;
    # train, evaluated once, takes as many batches as it needs.
    per_epoch = [len(labels[name]) for name in inputs if name != "train"] or [len(labels["train"])]
    eval_batch = min(spec.config.train.eval_batch_size, max(per_epoch))
    evals = {name: _eval_split(x, labels[name], eval_batch, put) for name, x in inputs.items()}
    x_train, y_train = put((inputs["train"], ds.y_train))
    return x_train, y_train, evals


def _on_replica_devices(state, replicas: int):
    shardings = replica_sharding(replicas)
    return jax.device_put(state, shardings[0]) if shardings else state


def _carry_schedule(fresh, old):
    """``fresh`` optimizer state with every learning-rate schedule's step count taken from ``old``:
    a decaying schedule goes on from where it was, instead of restarting at its base rate."""
    is_schedule = lambda node: isinstance(node, optax.ScaleByScheduleState)
    return jax.tree.map(lambda f, o: o if is_schedule(f) else f, fresh, old, is_leaf=is_schedule)


def embed_state(spec: RunSpec, state: TrainState) -> TrainState:
    """The eFCN switch: every replica's params embedded exactly; a fresh optimizer state (Adam's
    moments are statistics of the conv's gradients, which the embedding does not map to the dense
    net's), except the learning-rate schedule, which goes on from the switch step."""
    initial, embedded = spec.initial.model, spec.phases["embedded"].model
    pure = jax.device_get(nnx.to_pure_dict(state["params"]))
    per_replica = [
        embed_network_params(initial, jax.tree.map(lambda a, r=r: a[r], pure), spec.embed_into) for r in range(spec.replicas)
    ]
    params = nnx.state(embedded, nnx.Param)
    nnx.replace_by_pure_dict(params, jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *per_replica))
    opt_state = _carry_schedule(jax.vmap(spec.tx.init)(params), state["opt_state"])
    opt_state.hyperparams["learning_rate"] = state["opt_state"].hyperparams["learning_rate"]
    return _on_replica_devices({**state, "params": params, "opt_state": opt_state}, spec.replicas)


# -- the run --------------------------------------------------------------------------
class RunLog:
    """Where a run writes as it goes: metrics (one record per replica), checkpoints
    labelled by phase, the progress bar. ``elapsed()`` counts earlier sessions too."""

    def __init__(self, run_dir: RunDir, spec: RunSpec, config_json: dict, progress: bool, t_start: float, track: dict):
        self.run_dir, self.spec, self.config_json, self.t_start, self.track = run_dir, spec, config_json, t_start, track
        self.checkpointer = Checkpointer(run_dir.checkpoints, keep=spec.config.train.keep_checkpoints, writer=True)
        self.elapsed_before = 0.0
        self.labels = [{"replica": r, "seed": s} for r, s in enumerate(spec.seeds)]
        self.tags = [f"lr_{rate:g}_seed_{seed}" for seed, rate in zip(spec.seeds, spec.learning_rates)]
        self.writer: MetricWriter | None = None
        self.tensorboard: TensorBoardWriter | None = None
        self.bar = None
        self.progress = progress
        self.ids = np.arange(spec.replicas)  # the replicas the device state holds, in its order

    def restore(self) -> tuple[int, str, TrainState | None]:
        """``(step, phase name, state)`` of the newest readable checkpoint, or ``(0, "initial", None)``."""
        states = self.spec.abstract_states
        restored = self.checkpointer.restore_latest(lambda meta: states[meta.get("phase", "initial")])
        start, phase, state = 0, "initial", None
        if restored is not None:
            start, state, meta = restored
            phase, self.elapsed_before = meta.get("phase", "initial"), float(meta.get("wall_time_s", 0.0))
            state = _on_replica_devices(state, self.spec.replicas)
        truncate_metrics(self.run_dir.metrics_file, start)  # records after the checkpoint are redone
        self.writer = MetricWriter(self.run_dir.metrics_file)
        # On resume, TensorBoard drops what an interrupted session wrote after the checkpoint
        # (kept: its own step, as in the metrics file).
        self.tensorboard = TensorBoardWriter(self.run_dir.path, purge_step=start + 1 if start else None)
        if start == 0:
            self.tensorboard.write_hparams(self.config_json, ["val/accuracy", "test/accuracy"])
        self.bar = progress_bar(
            total=self.spec.total_steps, initial=start, disable=not self.progress, unit="step", desc=self.run_dir.name
        )
        return start, phase, state

    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self.t_start

    def timing(self) -> dict:
        return {"wall_time_s": self.elapsed(), "this_session_s": time.perf_counter() - self.t_start}

    def save(self, step: int, state: TrainState, phase: Phase) -> None:
        self.checkpointer.save(step, state, {"step": step, "wall_time_s": self.elapsed(), "phase": phase.name})

    def write(self, step: int, split: str, values: dict[str, np.ndarray], alive: np.ndarray | None = None, **labels) -> None:
        """One record per replica the values hold (only live ones for ``train``) in the metrics
        file; in TensorBoard each replica's scalars and their mean over the replicas written.
        Position ``i`` of each array is replica ``self.ids[i]`` (all of them, unless the run
        halved its rates)."""
        written = []
        for i, r in enumerate(self.ids):
            if split == "train" and not alive[i]:
                continue
            written.append(i)
            extra = {"alive": bool(alive[i])} if alive is not None and split != "train" else {}
            scalars = {k: v[i] for k, v in values.items()}
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


def evaluate_splits(spec: RunSpec, phase: Phase, state: TrainState, evals: dict[str, EvalSplit], names) -> dict:
    """Per-replica loss and accuracy on each named split that exists."""
    engine = spec.engines[phase.name]
    return {
        name: engine.evaluate(state["params"], s.x, s.y, s.mask, s.batch, phase.strategy)
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

    ``track`` maps names to :class:`~research.train.spec.Tracker` s, whose ``record(model,
    stacked params)`` returns per-replica arrays; they are recorded at step 0 and at every
    evaluation as ``split="track"`` records (e.g. the locality index of ``research.probes``),
    and whose ``check(model)`` may refuse the model up front. A run that cannot fit this
    machine's memory is refused before anything is allocated or written; the run holds
    its directory's lock throughout. A run stopped by the disk (full or read-only) is left
    interrupted, not failed: the same call resumes it once there is space.
    """
    t_start, run_dir, track = time.perf_counter(), RunDir(workdir), track or {}
    spec = RunSpec.build(config, track=track)
    check_memory(spec)
    config_json = run_config_json(config)
    with run_dir.lock("train"):
        finished = run_dir.start(config_json, overwrite)
        if finished is not None:
            return finished
        log = RunLog(run_dir, spec, config_json, progress, t_start, track)
        try:
            summary = _train(spec, log)
        except BaseException as e:
            if not isinstance(e, KeyboardInterrupt) and disk_error(e) is None:
                failed = {"status": "failed", "error": f"{type(e).__name__}: {e}", "wall_time_s": log.elapsed(), "replicas": []}
                with contextlib.suppress(OSError):  # the error itself is what matters
                    run_dir.write_summary({**failed, "num_params": count_params(spec.initial.model)})
            with contextlib.suppress(Exception):  # closing may fail as the run did (a full disk)
                log.close()
            raise
        log.close()
        return summary


def record_tracked(log: RunLog, track: dict[str, Tracker], phase: Phase, state: TrainState, step: int, epoch: int) -> None:
    """Tracked probes' per-replica values as ``split="track"`` records."""
    for tracker in track.values():
        log.write(step, "track", tracker.record(phase.model, state["params"]), epoch=epoch)


def _evaluate(spec: RunSpec, log: RunLog, phase: Phase, state: TrainState, evals, alive, at: tuple[int, int]) -> dict:
    """Evaluation after ``epoch`` (0-based) at ``step``: val and test written, tracked probes
    recorded; returns per-split per-replica numbers."""
    step, epoch = at
    results = evaluate_splits(spec, phase, state, evals, ("val", "test"))
    for split, values in results.items():
        log.write(step, split, values, alive, epoch=epoch + 1)
    record_tracked(log, log.track, phase, state, step, epoch + 1)
    return results


def _full_size(values: np.ndarray, ids: np.ndarray, replicas: int, fill) -> np.ndarray:
    """Per-replica ``values`` of the replicas ``ids`` spread over all ``replicas`` (``fill`` elsewhere)."""
    whole = np.full(replicas, fill, dtype=np.asarray(values).dtype)
    whole[ids] = values
    return whole


def _dropped(spec: RunSpec, halving: RateHalving) -> np.ndarray:
    """The replicas the halving decision dropped."""
    return np.setdiff1d(np.arange(spec.replicas), halving.kept)


def _kept_on_device(log: RunLog, halving: RateHalving, state: TrainState) -> TrainState:
    """After the halving decision: the log writes the kept replicas, and the device state
    becomes their part of the full ``state`` (the dropped replicas' part stays on the host)."""
    log.ids = halving.kept
    return _on_replica_devices(halving.split(state), len(halving.kept))


def _resume_halving(spec: RunSpec, log: RunLog, best: BestValidation, halving: RateHalving, state: TrainState):
    """Rebuild early stopping and the halving decision from the metrics of a resumed run; the
    device state becomes the kept replicas' part when the run had halved."""

    def check(epoch: int, alive: np.ndarray) -> None:
        if halving.settle(epoch, best.best_val, alive):
            best.drop(_dropped(spec, halving))  # before the next evaluations, which lack them

    best.replay(log.run_dir.metrics(), check)
    return state if halving.kept is None else _kept_on_device(log, halving, state)


def _after_evaluation(spec, log, best, halving, state, results, alive, epoch) -> tuple[TrainState, bool]:
    """Early stopping's update, then the halving decision if due; returns the state to train on
    and whether it halved (the replicas changed)."""
    ids, n = log.ids, spec.replicas
    test = results.get("test", {}).get("accuracy")
    alive = _full_size(alive, ids, n, False)
    best.update(
        epoch,
        _full_size(results["val"]["accuracy"], ids, n, -np.inf),
        None if test is None else _full_size(test, ids, n, np.nan),
        alive,
    )
    if not halving.settle(epoch, best.best_val, alive):
        return state, False
    best.drop(_dropped(spec, halving))
    return _kept_on_device(log, halving, state), True


def _whole(spec: RunSpec, halving: RateHalving, state: TrainState) -> TrainState:
    """The train state over every replica (the kept replicas' among the dropped ones' frozen state)."""
    if halving.kept is None:
        return state
    return _on_replica_devices(jax.device_put(halving.full(state)), spec.replicas)


def _train(spec: RunSpec, log: RunLog) -> dict:
    """The loop: segments of steps, then train metrics, evaluation, checkpoint (in that order),
    until the last epoch or until every replica's validation accuracy has stopped improving;
    rate halving (:mod:`research.train.rate_choice`) may drop replicas on the way."""
    spe, every = spec.steps_per_epoch, spec.config.train.checkpoint_every_steps
    x_train, y_train, evals = device_data(spec)
    start, phase_name, state = log.restore()
    phase, best = spec.phases[phase_name], BestValidation(spec.replicas, spec.config.train.patience)
    halving = RateHalving(spec.learning_rates, halving_epoch(spec.config.train.halve_rates_at, spec.config.train.epochs))
    if state is None:
        state = _on_replica_devices(spec.init_state(), spec.replicas)
    if start == 0:
        record_tracked(log, log.track, phase, state, 0, 0)
    state = _resume_halving(spec, log, best, halving, state)  # a resumed run: its evaluations up to the checkpoint
    step, last_saved, perms_epoch = start, (start if start else -1), None
    for epoch, begin, end in spec.segments(start):
        if best.all_done():
            break
        if epoch * spe + begin == spec.switch_step and phase.name == "initial":
            state, phase = embed_state(spec, state), spec.phases["embedded"]
        engine = spec.engines[phase.name]
        if perms_epoch != epoch:
            perms, perms_epoch = engine.permutations(state, epoch, spec.data.splits["train"]), epoch
        state = engine.run_steps(state, x_train, y_train, perms, begin, end, phase.strategy)
        step = epoch * spe + end
        state, train = engine.read_window(state)
        alive = np.asarray(jax.device_get(state["alive"]))
        base_rates = jax.device_get(state["opt_state"].hyperparams["learning_rate"])
        rates = applied_learning_rates(spec.config.optimizer, spec.total_steps, base_rates, step)
        log.write(step, "train", {**train, "learning_rate": rates}, alive)
        postfix = {"loss": f"{np.mean(train['loss'][alive]):.3f}" if alive.any() else "nan"}
        if spec.evaluation_due(epoch, end == spe):
            results = _evaluate(spec, log, phase, state, evals, alive, (step, epoch))
            postfix.update({f"{split}_acc": f"{np.mean(v['accuracy']):.4f}" for split, v in results.items()})
            if "val" in results:
                state, halved = _after_evaluation(spec, log, best, halving, state, results, alive, epoch + 1)
                perms_epoch = None if halved else perms_epoch  # the kept replicas' data orders
        log.flush()
        log.bar.set_postfix(postfix, refresh=False)  # shown by the update: this window's numbers
        log.bar.update(end - begin)
        if every and step - last_saved >= every and step < spec.total_steps:
            log.save(step, _whole(spec, halving, state), phase)
            last_saved = step
    state = _whole(spec, halving, state)
    if last_saved != step:
        log.save(step, state, phase)
    final = evaluate_splits(spec, phase, state, evals, ("train", "val", "test"))
    summary = run_summary(spec, log.run_dir, phase, state, final, log.timing(), best, step, halving)
    log.run_dir.write_summary(summary)
    return summary


__all__ = ["read_metrics", "strip_timing", "train_and_evaluate"]
