"""The compiled training engine: R replicas, one program, data on the device.

Everything here is a pure function of pytrees. The train state is a dict whose
every leaf has a leading replica axis ``R``:

* ``params``, ``opt_state``: the model's ``nnx.Param`` state and Optax state
  (the learning rate is in ``opt_state``, so it can differ per replica);
* ``step``: optimizer steps taken; ``alive``: False once the replica hit a
  non-finite loss or gradient, or an update that would make its weights or
  optimizer state non-finite (not applied: it keeps its last finite state),
  after which it is frozen and ``diverged_step`` records the step where it
  happened (the others train on, unaffected);
* ``data_key``: the replica's key for its data order;
* ``window``: sums of loss, correct predictions, examples and gradient norm
  since the metrics were last read, so a checkpoint between two log points
  still resumes exactly.

The data set lives on the device. Each epoch every replica draws a
permutation of the training set, on the host, from a NumPy generator seeded
with its ``data_key`` and the epoch, and step ``i`` of the epoch trains on
``perm[i*B:(i+1)*B]``; batches are a pure function of (seed, step), which is
what makes resume exact. (On the host because ``jax.random.permutation`` is
two sort rounds on the device, slower than NumPy even before it compiles;
measured: benchmarks/README.md, "Measurements behind rules in the code".)

Two ways to run steps give bit-identical results (tested): ``dispatch`` calls
a jitted step once per step; ``scan`` runs a jitted ``lax.scan`` over a chunk
of ``chunk`` steps. On XLA CPU, ``lax.conv`` inside ``scan``/``while`` runs
several times slower than dispatched and a vmapped one becomes a slow grouped
conv, while matmuls (MLPs, dense and locally connected layers, and convs in
their matmul form) gain from ``scan`` and ``vmap``; ``choose_strategy``
encodes that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research.errors import unknown
from research.models import conv_impls

TrainState = dict[str, Any]
# One replica at a time inside scan ("sequential_scan") was dropped: it never won a benchmark
# (benchmarks/README.md, "Strategy") and auto never picked it.
STEP_STRATEGIES = ("scan", "dispatch", "sequential_dispatch")
STRATEGIES = ("auto", *STEP_STRATEGIES)
WINDOW_KEYS = ("loss", "correct", "count", "grad_norm")


def choose_strategy(requested: str, model: nnx.Module, backend: str, replicas: int = 1, sharded: bool = False) -> str:
    """One of :data:`STEP_STRATEGIES`; ``auto`` follows the measurements of ``cvd bench``.

    On CPU, a model with a conv layer that computes with ``lax.conv`` (a large
    full-kernel conv, or ``model.conv_impl=lax``) is dispatched step by step,
    and several replicas run one after another: ``lax.conv`` runs several times
    slower inside ``lax.scan`` than dispatched, and vmapped it becomes a grouped
    conv (measured: benchmarks/README.md, "Measurements behind rules in the code").
    Everything else, including convs in their matmul form (CPU's default), and
    every model on GPU/TPU or with replicas sharded over devices, runs vmapped in
    ``lax.scan`` chunks.
    """
    if requested not in STRATEGIES:
        raise unknown("train.strategy", requested, STRATEGIES)
    if requested != "auto":
        return requested
    if backend == "cpu" and "lax" in conv_impls(model, backend):
        return "sequential_dispatch" if replicas > 1 and not sharded else "dispatch"
    return "scan"


def run_once(fn: Callable, *args):
    """``jax.jit(fn)(*args)`` compiled at XLA's lowest optimisation level, for programs
    that run once per run (replica initialisation): XLA's optimiser is most of
    such a program's compile time and saves it nothing, since it runs once
    (measured: benchmarks/README.md, "Measurements behind rules in the code")."""
    compiled = jax.jit(fn).lower(*args).compile(compiler_options={"xla_backend_optimization_level": 0})
    return compiled(*args)


def _all_finite(tree) -> jax.Array:
    """Whether every float of a pytree is finite (a scalar bool)."""
    checks = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.bool_(True)


def _replica(tree, r: int):
    """Replica ``r`` of a stacked pytree, keeping the replica axis (length 1)."""
    return jax.tree.map(lambda a: a[r : r + 1], tree)


def replica_sharding(num_replicas: int) -> tuple[NamedSharding, NamedSharding] | None:
    """(replica-sharded, replicated) shardings over all devices, or None on one device.

    The replica axis is split across devices when it divides evenly; each
    device then runs the same per-replica program on its share.
    """
    devices = jax.devices()
    if len(devices) == 1 or num_replicas % len(devices):
        return None
    mesh = Mesh(np.asarray(devices), ("replica",))
    return NamedSharding(mesh, PartitionSpec("replica")), NamedSharding(mesh, PartitionSpec())


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@dataclass
class Engine:
    """Compiled train / eval functions for one model, optimizer and batch size."""

    graphdef: nnx.GraphDef
    tx: optax.GradientTransformation
    batch_size: int
    chunk: int = 1
    augment_shift: int = 0

    def __post_init__(self):
        self._step = jax.jit(self._vstep, donate_argnums=0)
        self._scan = jax.jit(self._scan_chunk, donate_argnums=0)
        self._eval = jax.jit(jax.vmap(self._replica_eval, in_axes=(0, None, None, None)))
        self._zero_window = jax.jit(lambda s: {**s, "window": jax.tree.map(jnp.zeros_like, s["window"])}, donate_argnums=0)
        self._param_norms = jax.jit(jax.vmap(optax.tree.norm))

    def compiled_programs(self) -> dict[str, int]:
        """Executables compiled so far per program (``step``, ``scan``, ``eval``): what a
        run's summary reports as ``compiles``. Counts compilations, not traces: an argument
        that changes only its device commitment compiles again without retracing."""
        counts = {"step": self._step._cache_size(), "scan": self._scan._cache_size(), "eval": self._eval._cache_size()}
        return {name: count for name, count in counts.items() if count}

    # -- state ---------------------------------------------------------------
    def init_replica(self, params: nnx.State, seed: int, learning_rate: float) -> TrainState:
        opt_state = self.tx.init(params)
        opt_state.hyperparams["learning_rate"] = jnp.asarray(learning_rate, jnp.float32)
        return {
            "params": params,
            "opt_state": opt_state,
            "step": jnp.zeros((), jnp.int32),
            "alive": jnp.ones((), bool),
            "diverged_step": jnp.full((), -1, jnp.int32),
            "data_key": jax.random.fold_in(jax.random.PRNGKey(seed), 1),
            "window": {k: jnp.zeros((), jnp.float32) for k in WINDOW_KEYS},
        }

    # -- one replica ---------------------------------------------------------
    def _loss(self, params, x, y):
        logits = nnx.merge(self.graphdef, params)(x)
        loss = cross_entropy(logits, y).mean()
        return loss, jnp.sum(jnp.argmax(logits, -1) == y)

    def _replica_step(self, state: TrainState, x_all, y_all, perm, index) -> TrainState:
        idx = lax.dynamic_slice_in_dim(perm, index * self.batch_size, self.batch_size)
        x, y = x_all[idx], y_all[idx]
        if self.augment_shift:
            x = self._random_shifts(x, jax.random.fold_in(jax.random.fold_in(state["data_key"], 2), state["step"]))
        (loss, correct), grads = jax.value_and_grad(self._loss, has_aux=True)(state["params"], x, y)
        updates, opt_state = self.tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        grad_norm = optax.tree.norm(grads)
        # The update itself is checked: finite loss and gradient can still step the weights (or
        # the optimizer state) to inf or NaN, and such a replica keeps its last finite state.
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _all_finite(params) & _all_finite(opt_state)
        ok = state["alive"] & finite

        def keep_if_ok(new, old):
            return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)

        measured = {
            "loss": loss,
            "correct": correct.astype(jnp.float32),
            "count": jnp.float32(self.batch_size),
            "grad_norm": grad_norm,
        }
        return {
            "params": keep_if_ok(params, state["params"]),
            "opt_state": keep_if_ok(opt_state, state["opt_state"]),
            "step": state["step"] + 1,
            "alive": ok,
            "diverged_step": jnp.where(state["alive"] & ~finite, state["step"], state["diverged_step"]),
            "data_key": state["data_key"],
            "window": {k: state["window"][k] + jnp.where(ok, measured[k], 0.0) for k in WINDOW_KEYS},
        }

    def _random_shifts(self, x, key):
        """Circularly shift each example by up to ``augment_shift`` along every spatial axis."""
        spatial_axes = tuple(range(1, x.ndim - 1))
        shifts = jax.random.randint(key, (x.shape[0], len(spatial_axes)), -self.augment_shift, self.augment_shift + 1)
        axes = tuple(a - 1 for a in spatial_axes)
        return jax.vmap(lambda xi, si: jnp.roll(xi, tuple(si[i] for i in range(len(axes))), axis=axes))(x, shifts)

    def _vstep(self, state, x_all, y_all, perms, index):
        return jax.vmap(self._replica_step, in_axes=(0, None, None, 0, None))(state, x_all, y_all, perms, index)

    def _scan_chunk(self, state, x_all, y_all, perms, start):
        def body(carry, i):
            return self._vstep(carry, x_all, y_all, perms, start + i), None

        state, _ = lax.scan(body, state, jnp.arange(self.chunk, dtype=jnp.int32))
        return state

    def _replica_eval(self, params, x, y, mask):
        logits = nnx.merge(self.graphdef, params)(x)
        real = mask > 0  # padding rows count for nothing, even where their loss is not finite
        loss = jnp.sum(jnp.where(real, cross_entropy(logits, y), 0.0))
        correct = jnp.sum(jnp.where(real, jnp.argmax(logits, -1) == y, False))
        return loss, correct

    # -- public --------------------------------------------------------------
    def permutations(self, state: TrainState, epoch: int, num_examples: int) -> jax.Array:
        """``(R, num_examples)`` int32: each replica's order of the training set in ``epoch``,
        placed as the replicas are (sharded over devices where they are). NumPy does not
        promise ``Generator.permutation`` the same stream across its versions; a run's
        ``config.json`` records the NumPy version it started with, so a resume under
        another one can be told apart."""
        keys = np.asarray(jax.device_get(state["data_key"]), np.uint32)
        keys = keys.reshape(keys.shape[0], -1)
        perms = np.stack([np.random.default_rng([*map(int, key), epoch]).permutation(num_examples) for key in keys])
        shardings = replica_sharding(len(keys))
        if shardings:
            return jax.device_put(perms.astype(np.int32), shardings[0])
        # Uncommitted, as the rest of a one-device state: a committed argument among
        # uncommitted ones would make the next call's state committed and compile the step twice.
        return jnp.asarray(perms, jnp.int32)

    def run_steps(self, state: TrainState, x, y, perms, start: int, stop: int, strategy: str) -> TrainState:
        """Train steps ``start..stop-1`` of the current epoch.

        ``scan`` / ``dispatch`` run all replicas together (vmapped);
        ``sequential_*`` run them one after another, each as a 1-replica
        program, over the whole segment (faster where a vmapped op is slow,
        e.g. convs turned into grouped convs on CPU).
        """
        if strategy.startswith("sequential_"):
            inner = strategy.removeprefix("sequential_")
            replicas = perms.shape[0]
            if replicas == 1:
                return self.run_steps(state, x, y, perms, start, stop, inner)
            parts = [self.run_steps(_replica(state, r), x, y, perms[r : r + 1], start, stop, inner) for r in range(replicas)]
            return jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
        if strategy == "scan":
            if (stop - start) % self.chunk:
                raise ValueError(f"steps {start}..{stop} are not whole chunks of {self.chunk}")
            for begin in range(start, stop, self.chunk):
                state = self._scan(state, x, y, perms, jnp.int32(begin))
        else:
            for index in range(start, stop):
                state = self._step(state, x, y, perms, jnp.int32(index))
        return state

    def read_window(self, state: TrainState) -> tuple[TrainState, dict[str, np.ndarray]]:
        """Per-replica means since the last read, then reset the window."""
        w = jax.device_get(state["window"])
        count = np.maximum(w["count"], 1.0)
        steps = count / self.batch_size
        means = {
            "loss": w["loss"] / steps,
            "accuracy": w["correct"] / count,
            "grad_norm": w["grad_norm"] / steps,
            "param_norm": np.asarray(jax.device_get(self._param_norms(state["params"]))),
        }
        return self._zero_window(state), means

    def evaluate(self, params, x_eval, y_eval, mask, eval_batch: int, strategy: str = "scan") -> dict[str, np.ndarray]:
        """Per-replica loss and accuracy on a padded eval split (``mask`` marks real examples).

        Under the ``sequential_*`` strategies each replica is evaluated as a
        1-replica program, as it was trained, so that its numbers do not depend
        on which others share its run (XLA CPU rounds a batched matmul over 3
        replicas differently from a plain one).
        """
        replicas = jax.tree.leaves(params)[0].shape[0]
        if strategy.startswith("sequential_") and replicas > 1:
            parts = [self.evaluate(_replica(params, r), x_eval, y_eval, mask, eval_batch) for r in range(replicas)]
            return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        total_loss = total_correct = 0.0
        for begin in range(0, x_eval.shape[0], eval_batch):
            sl = slice(begin, begin + eval_batch)
            loss, correct = self._eval(params, x_eval[sl], y_eval[sl], mask[sl])
            total_loss = total_loss + loss
            total_correct = total_correct + correct
        n = float(jax.device_get(jnp.sum(mask)))
        return {
            "loss": np.asarray(jax.device_get(total_loss)) / n,
            "accuracy": np.asarray(jax.device_get(total_correct)) / n,
        }
