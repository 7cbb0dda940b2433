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

import json
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from research.config import config_to_json
from research.data import Dataset, load_dataset, model_inputs
from research.errors import UserError
from research.models import count_params, get_model
from research.models.embed import EMBEDDABLE, embed_network_params
from research.train.checkpoint import Checkpointer, abstract_like
from research.train.engine import Engine, choose_strategy, replica_sharding, run_once
from research.train.metrics import MetricWriter, atomic_write_json, read_metrics, truncate_metrics
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
    for key in ("batch_size", "epochs", "eval_batch_size", "keep_checkpoints"):
        _positive(config.train, key)
    for key in ("log_every_steps", "checkpoint_every_steps"):
        _positive(config.train, key, 0)
    lrs = tuple(config.optimizer.learning_rates)
    if lrs and len(lrs) != config.seeds:
        raise UserError(f"optimizer.learning_rates has {len(lrs)} entries but seeds={config.seeds}")
    if any(float(lr) <= 0 for lr in lrs):
        raise UserError(f"optimizer.learning_rates must be > 0, got {lrs}")


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
    at = int(config.train.get("embed_at_epoch", 0))
    if not at:
        return 0, ""
    target = config.train.get("embed_into", "dense")
    if not 0 < at < config.train.epochs:
        raise UserError(f"train.embed_at_epoch must be between 1 and epochs-1 ({config.train.epochs - 1}), got {at}")
    family = getattr(model, "family", None)
    if family is None:
        raise UserError(f"train.embed_at_epoch needs a lattice model (model.family); {config.model.name!r} has none")
    if target not in EMBEDDABLE[family]:
        raise UserError(f"cannot embed {family} into {target!r} exactly; possible: {', '.join(EMBEDDABLE[family])}")
    return at, target


def _diff_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            keys += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            keys.append(f"{prefix}{k}")
    return keys


def prepare_workdir(workdir: Path, config_json: dict, overwrite: bool) -> dict | None:
    """Check the workdir; returns a finished run's summary to reuse, else None."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"workdir {workdir} exists and is not a directory")
    existing = workdir / "config.json"
    if not existing.exists():
        if workdir.exists() and any(workdir.iterdir()) and not overwrite:
            raise UserError(f"workdir {workdir} is not empty and holds no run; choose an empty or new directory")
        return None
    try:
        old = json.loads(existing.read_text())
    except (OSError, json.JSONDecodeError):
        old = None
    if overwrite:
        for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints"):
            path = workdir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        return None
    if old != config_json:
        changed = _diff_keys(old, config_json) if isinstance(old, dict) else ["(unreadable config.json)"]
        raise UserError(
            f"workdir {workdir} holds a run with a different config (differs in: {', '.join(changed[:6])}); "
            "pass --overwrite to replace it or choose another --workdir"
        )
    summary_path = workdir / "summary.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("status") in ("done", "diverged"):
            return summary
    return None


def _make_workdir(workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to workdir {workdir}: {e.strerror or e}") from None


def _pad_for_eval(x: np.ndarray, y: np.ndarray, eval_batch: int):
    n = len(y)
    padded = math.ceil(n / eval_batch) * eval_batch
    mask = np.zeros(padded, np.float32)
    mask[:n] = 1.0
    x = np.concatenate([x, np.zeros((padded - n, *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros(padded - n, y.dtype)])
    return x, y, mask


Tracker = Callable[[nnx.Module, nnx.State], dict[str, np.ndarray]]


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = True,
    track: dict[str, Tracker] | None = None,
) -> dict:
    """Train ``config.seeds`` replicas of one config in one program; returns the summary.

    ``track`` maps names to functions of ``(model, stacked params)`` returning
    per-replica arrays; they are recorded at step 0 and at every evaluation as
    ``split="track"`` records (e.g. the locality index of ``research.probes``).
    A tracker's optional ``check(model)`` attribute may refuse the model up front.
    """
    t_start = time.perf_counter()
    workdir = Path(workdir)
    validate(config)
    dataset = load_dataset(config.data)
    seeds = [config.seed + r for r in range(config.seeds)]
    lrs = [float(v) for v in config.optimizer.learning_rates] or [float(config.optimizer.learning_rate)] * len(seeds)
    batch = config.train.batch_size
    n_train = dataset.splits["train"]
    if batch > n_train:
        raise UserError(f"train.batch_size={batch} is larger than the training set ({n_train} examples)")
    steps_per_epoch = n_train // batch
    total_steps = steps_per_epoch * config.train.epochs
    log_every = config.train.log_every_steps or steps_per_epoch
    # Abstract build: validates the model fields and gives the graph, at no compute.
    abstract_model = nnx.eval_shape(lambda: build_model(config, dataset, seeds[0]))
    tx = build_optimizer(config.optimizer, total_steps)
    sharded = replica_sharding(len(seeds)) is not None
    strategy = choose_strategy(config.train.strategy, abstract_model, jax.default_backend(), len(seeds), sharded)
    eval_every = _positive(config.train, "eval_every_epochs")
    augment_shift = _positive(config.train, "augment_shift", 0)
    # eFCN (d'Ascoli et al. 2019): train as model.family, then embed exactly into
    # another family at an epoch boundary and train on with a fresh optimizer.
    embed_at, embed_into = validate_embedding(config, abstract_model)
    switch_step = embed_at * steps_per_epoch if embed_at else total_steps + 1
    embedded_engine = embedded_strategy = embedded_abstract = None
    if embed_at:
        embedded_model = nnx.eval_shape(lambda: build_model(config, dataset, seeds[0], family=embed_into))
        embedded_strategy = choose_strategy(config.train.strategy, embedded_model, jax.default_backend(), len(seeds), sharded)
    for fn in (track or {}).values():  # a tracker may refuse the model (before anything is written)
        getattr(fn, "check", lambda model: None)(abstract_model)
    config_json = config_to_json(config)
    finished = prepare_workdir(workdir, config_json, overwrite)
    if finished is not None:
        return finished
    _make_workdir(workdir)
    atomic_write_json(workdir / "config.json", config_json)

    chunk = math.gcd(steps_per_epoch, log_every)
    engine = Engine(nnx.graphdef(abstract_model), tx, batch, chunk=chunk, augment_shift=augment_shift)
    init, init_args = replica_initializer(config, dataset, engine, seeds, lrs)
    state = run_once(init, *init_args)
    shardings = replica_sharding(len(seeds))
    if embed_at:
        embedded_engine = Engine(nnx.graphdef(embedded_model), tx, batch, chunk=chunk, augment_shift=augment_shift)
        init, init_args = replica_initializer(config, dataset, embedded_engine, seeds, lrs, family=embed_into)
        embedded_abstract = jax.eval_shape(init, *init_args)

    def embed_state(state):
        """Phase switch: every replica's params embedded exactly; a fresh optimizer state."""
        pure = jax.device_get(nnx.to_pure_dict(state["params"]))
        per_replica = [
            embed_network_params(abstract_model, jax.tree.map(lambda a, r=r: a[r], pure), embed_into) for r in range(len(seeds))
        ]
        params = nnx.state(embedded_model, nnx.Param)
        nnx.replace_by_pure_dict(params, jax.tree.map(lambda *xs: jnp.asarray(np.stack(xs)), *per_replica))
        opt_state = jax.vmap(tx.init)(params)
        opt_state.hyperparams["learning_rate"] = state["opt_state"].hyperparams["learning_rate"]
        new = {**state, "params": params, "opt_state": opt_state}
        return jax.device_put(new, shardings[0]) if shardings else new

    x_train, x_test = model_inputs(dataset, config.data.get("standardize", False))
    y_train = dataset.y_train
    eval_batch = min(config.train.eval_batch_size, len(dataset.y_test))
    x_test, y_test, test_mask = _pad_for_eval(x_test, dataset.y_test, eval_batch)
    if shardings:
        state = jax.device_put(state, shardings[0])
        x_train, y_train, x_test, y_test, test_mask = jax.device_put((x_train, y_train, x_test, y_test, test_mask), shardings[1])
    else:
        x_train, y_train, x_test, y_test, test_mask = jax.device_put((x_train, y_train, x_test, y_test, test_mask))

    checkpointer = Checkpointer(workdir / "checkpoints", keep=config.train.keep_checkpoints)
    start_step, elapsed_before = 0, 0.0
    initial_abstract = abstract_like(state)
    restored = checkpointer.restore_latest(
        lambda meta: embedded_abstract if meta.get("phase") == "embedded" else initial_abstract
    )
    if restored is not None:
        start_step, state, meta = restored
        elapsed_before = float(meta.get("wall_time_s", 0.0))
        if shardings:
            state = jax.device_put(state, shardings[0])
    truncate_metrics(workdir / "metrics.jsonl", start_step)
    writer = MetricWriter(workdir / "metrics.jsonl")
    labels = [{"replica": r, "seed": s} for r, s in enumerate(seeds)]
    track = track or {}

    def record_tracked(step: int, model: nnx.Module, epoch: int) -> None:
        for fn in track.values():
            values = fn(model, state["params"])
            for r in range(len(seeds)):
                writer.write_scalars(step, {k: v[r] for k, v in values.items()}, split="track", epoch=epoch, **labels[r])

    if start_step == 0:
        record_tracked(0, abstract_model, 0)

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t_start

    def save(step: int) -> None:
        phase = "embedded" if step >= switch_step else "initial"
        checkpointer.save(step, state, {"step": step, "wall_time_s": elapsed(), "phase": phase})

    bar = tqdm(total=total_steps, initial=start_step, disable=not progress, unit="step", desc=workdir.name, dynamic_ncols=True)
    status = "failed"
    try:
        last_saved = start_step if restored is not None else -1
        step = start_step
        if step >= switch_step:  # resumed after the eFCN switch
            engine, strategy = embedded_engine, embedded_strategy
        while step < total_steps:
            epoch, index = divmod(step, steps_per_epoch)
            if step == switch_step and engine is not embedded_engine:
                state = embed_state(state)
                engine, strategy = embedded_engine, embedded_strategy
            perms = engine.permutations(state, epoch, n_train)
            while index < steps_per_epoch:
                stop = min(steps_per_epoch, (step // log_every + 1) * log_every - epoch * steps_per_epoch)
                state = engine.run_steps(state, x_train, y_train, perms, index, stop, strategy)
                bar.update(stop - index)
                step += stop - index
                index = stop
                state, train = engine.read_window(state)
                alive = np.asarray(jax.device_get(state["alive"]))
                learning_rates = np.asarray(jax.device_get(state["opt_state"].hyperparams["learning_rate"]))
                for r in range(len(seeds)):
                    if alive[r]:
                        writer.write_scalars(
                            step, {k: v[r] for k, v in train.items()}, split="train", **labels[r], learning_rate=learning_rates[r]
                        )
                postfix = {"loss": f"{np.mean(train['loss'][alive]):.3f}" if alive.any() else "nan"}
                if index == steps_per_epoch and ((epoch + 1) % eval_every == 0 or step == total_steps):
                    test = engine.evaluate(state["params"], x_test, y_test, test_mask, eval_batch, strategy)
                    for r in range(len(seeds)):
                        writer.write_scalars(
                            step,
                            {k: v[r] for k, v in test.items()},
                            split="test",
                            epoch=epoch + 1,
                            alive=bool(alive[r]),
                            **labels[r],
                        )
                    postfix["test_acc"] = f"{np.mean(test['accuracy']):.4f}"
                    record_tracked(step, embedded_model if step > switch_step else abstract_model, epoch + 1)
                writer.flush()
                bar.set_postfix(postfix, refresh=False)
                if (
                    config.train.checkpoint_every_steps
                    and step - last_saved >= config.train.checkpoint_every_steps
                    and step < total_steps
                ):
                    save(step)
                    last_saved = step
        if last_saved != total_steps:
            save(total_steps)
        test = engine.evaluate(state["params"], x_test, y_test, test_mask, eval_batch, strategy)
        final = jax.device_get({"alive": state["alive"], "diverged_step": state["diverged_step"]})
        replicas = []
        for r, seed in enumerate(seeds):
            replicas.append(
                {
                    "seed": seed,
                    "learning_rate": lrs[r],
                    "test_accuracy": float(test["accuracy"][r]),
                    "test_loss": float(test["loss"][r]),
                    "diverged": not bool(final["alive"][r]),
                    "diverged_step": int(final["diverged_step"][r]) if not final["alive"][r] else None,
                }
            )
        status = "diverged" if all(r["diverged"] for r in replicas) else "done"
        summary = {
            "status": status,
            "num_params": count_params(embedded_model if embed_at else abstract_model),
            "wall_time_s": elapsed(),
            "timing": {"this_session_s": time.perf_counter() - t_start, "compiles": dict(engine.traces)},
            "steps": total_steps,
            "epochs": config.train.epochs,
            "strategy": strategy,
            "replica_devices": len(shardings[0].mesh.devices.flat) if shardings else 1,
            "model": config.model.name,
            "dataset": dataset.metadata(),
            "replicas": replicas,
            "test_accuracy_mean": float(np.mean([r["test_accuracy"] for r in replicas])),
        }
        if embed_at:
            summary["embedding"] = {
                "from": abstract_model.family,
                "into": embed_into,
                "at_epoch": embed_at,
                "num_params_before": count_params(abstract_model),
            }
        atomic_write_json(workdir / "summary.json", summary)
        return summary
    except BaseException as e:
        if status == "failed" and not isinstance(e, KeyboardInterrupt):
            atomic_write_json(
                workdir / "summary.json",
                {
                    "status": "failed",
                    "error": f"{type(e).__name__}: {e}",
                    "wall_time_s": elapsed(),
                    "num_params": count_params(abstract_model),
                    "replicas": [],
                },
            )
        raise
    finally:
        bar.close()
        writer.close()
        checkpointer.close()


def strip_timing(summary: dict) -> dict:
    """A summary without its timing fields (for comparing runs)."""
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}


__all__ = ["read_metrics", "strip_timing", "train_and_evaluate"]
