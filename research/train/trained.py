"""A trained run, read back from its workdir: config, data, model and the
parameters of every replica at the newest checkpoint.

This is what the probes (``research.probes``) and notebooks work on. It reads
only the files the run loop wrote (``config.json``, ``checkpoints/``), so the
probes never depend on how a run was trained.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from research.config import config_from_json
from research.data import Dataset, as_float, input_normalizer
from research.errors import UserError
from research.rundir import RunDir
from research.train.checkpoint import Checkpointer
from research.train.spec import RunSpec


@dataclass
class TrainedRun:
    """Replicas of one model: ``params`` leaves carry a leading replica axis.

    ``x_test`` holds test examples as stored (e.g. uint8 pixels, so that a
    zero-fill shift fills with background); ``normalize`` maps stored examples
    to model inputs exactly as in training, and :meth:`logits` applies it.
    """

    model: nnx.Module  # abstract (shapes only); its graphdef is what runs
    params: nnx.State
    x_test: np.ndarray
    y_test: np.ndarray
    seeds: list[int]
    config: ml_collections.ConfigDict | None = None
    dataset: Dataset | None = None
    normalize: Callable[[np.ndarray], np.ndarray] = as_float
    step: int = 0
    workdir: Path | None = None
    indices: tuple[int, ...] | None = None  # each replica's index in the stored run (None: 0, 1, ...)
    _compiled: dict = field(default_factory=dict, repr=False)

    @property
    def num_replicas(self) -> int:
        return len(self.seeds)

    @property
    def replica_indices(self) -> tuple[int, ...]:
        """Each replica's index in the stored run: what a probe keys a replica's own random draws by,
        so that its numbers do not depend on which other replicas are probed beside it."""
        return self.indices if self.indices is not None else tuple(range(self.num_replicas))

    def select(self, replicas: Sequence[int]) -> TrainedRun:
        """The same run with only ``replicas`` (indices along the replica axis), in that order."""
        index = [int(i) for i in replicas]
        params = jax.tree.map(lambda a: a[np.asarray(index)], self.params)
        kept = tuple(self.replica_indices[i] for i in index)
        return replace(self, params=params, seeds=[self.seeds[i] for i in index], indices=kept, _compiled={})

    @property
    def graphdef(self) -> nnx.GraphDef:
        return nnx.graphdef(self.model)

    def _vmapped(self, name: str, fn: Callable) -> Callable:
        if name not in self._compiled:
            graphdef = self.graphdef

            def one(params, x):
                return fn(nnx.merge(graphdef, params), x)

            self._compiled[name] = jax.jit(jax.vmap(one, in_axes=(0, None)))
        return self._compiled[name]

    def logits(self, x: np.ndarray, batch: int = 500) -> np.ndarray:
        """``(replicas, examples, classes)`` logits of stored examples ``x``."""
        fn = self._vmapped("logits", lambda model, x: model(x))
        parts = [np.asarray(fn(self.params, jnp.asarray(self.normalize(x[i : i + batch])))) for i in range(0, len(x), batch)]
        return np.concatenate(parts, 1)

    def features(self, x: np.ndarray) -> list[np.ndarray]:
        """The hidden feature maps of stored examples ``x``, each ``(replicas, examples, ...)``."""
        if not hasattr(self.model, "features"):
            raise UserError(f"model {type(self.model).__name__} exposes no hidden features")
        fn = self._vmapped("features", lambda model, x: model.features(x))
        return [np.asarray(f) for f in fn(self.params, jnp.asarray(self.normalize(x)))]

    @classmethod
    def from_models(cls, models: list[nnx.Module], x_test: np.ndarray, y_test: np.ndarray) -> TrainedRun:
        """Replicas from live models of one architecture (tests, notebooks)."""
        params = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.state(m, nnx.Param) for m in models])
        return cls(model=models[0], params=params, x_test=x_test, y_test=y_test, seeds=list(range(len(models))))


def load_config_json(workdir: Path) -> ml_collections.ConfigDict:
    run_dir = RunDir(workdir)
    if not run_dir.config_file.exists():
        raise UserError(f"{workdir} is not a run directory (no config.json); give the directory of one run")
    stored = run_dir.config_json()
    if stored is None:
        raise UserError(f"{run_dir.config_file} is not readable JSON")
    return config_from_json(stored)


def load_trained(workdir: str | Path) -> TrainedRun:
    """The newest checkpoint of a run directory, every replica at once."""
    run_dir = RunDir(workdir)
    config = load_config_json(run_dir.path)
    if not run_dir.checkpoints.is_dir():
        raise UserError(f"{workdir} has no checkpoints/ yet; train it first (cvd train or cvd sweep)")
    spec = RunSpec.build(config)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def phase_of(meta: dict) -> str:
        return meta.get("phase", "initial")

    def abstract_state(meta: dict):
        shapes = spec.abstract_states[phase_of(meta)]
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), shapes)

    checkpointer = Checkpointer(run_dir.checkpoints)
    try:
        restored = checkpointer.restore_latest(abstract_state)
    finally:
        checkpointer.close()
    if restored is None:
        raise UserError(f"{workdir}/checkpoints holds no readable checkpoint")
    step, state, meta = restored
    dataset = spec.data
    normalize = input_normalizer(dataset, config.data.standardize)
    run = TrainedRun(spec.phases[phase_of(meta)].model, state["params"], dataset.x_test, dataset.y_test, list(spec.seeds))
    return replace(run, config=config, dataset=dataset, normalize=normalize, step=step, workdir=run_dir.path)
