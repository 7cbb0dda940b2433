"""A trained run, read back from its workdir: config, data, model and the
parameters of every replica at the newest checkpoint.

This is what the probes (``research.probes``) and notebooks work on. It reads
only the files the run loop wrote (``config.json``, ``checkpoints/``), so the
probes never depend on how a run was trained.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from research.config import config_from_json
from research.data import Dataset, as_float, input_normalizer, load_dataset
from research.errors import UserError
from research.train.checkpoint import Checkpointer
from research.train.engine import Engine
from research.train.loop import build_model, replica_grid, replica_initializer
from research.train.optim import build_optimizer


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
    _compiled: dict = field(default_factory=dict, repr=False)

    @property
    def num_replicas(self) -> int:
        return len(self.seeds)

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
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise UserError(f"{workdir} is not a run directory (no config.json); give the directory of one run")
    try:
        return config_from_json(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def load_trained(workdir: str | Path) -> TrainedRun:
    """The newest checkpoint of a run directory, every replica at once."""
    workdir = Path(workdir)
    config = load_config_json(workdir)
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"{workdir} has no checkpoints/ yet; train it first (cvd train or cvd sweep)")
    dataset = load_dataset(config.data)
    seeds, lrs = replica_grid(config)
    steps = (dataset.splits["train"] // config.train.batch_size) * config.train.epochs
    tx = build_optimizer(config.optimizer, steps)
    embedded_into = config.train.embed_into if config.train.embed_at_epoch else None
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def abstract(family: str | None):
        changes = {"family": family} if family else {}
        model = nnx.eval_shape(lambda: build_model(config, dataset, seeds[0], **changes))
        engine = Engine(nnx.graphdef(model), tx, config.train.batch_size)
        init, init_args = replica_initializer(config, dataset, engine, seeds, lrs, **changes)
        shapes = jax.eval_shape(init, *init_args)
        return model, jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device), shapes)

    models = {}

    def abstract_for(meta: dict):
        family = embedded_into if meta.get("phase") == "embedded" else None
        models[family] = models.get(family) or abstract(family)
        models["restored"] = models[family][0]
        return models[family][1]

    checkpointer = Checkpointer(workdir / "checkpoints")
    try:
        restored = checkpointer.restore_latest(abstract_for)
    finally:
        checkpointer.close()
    if restored is None:
        raise UserError(f"{workdir}/checkpoints holds no readable checkpoint")
    step, state, _ = restored
    normalize = input_normalizer(dataset, config.data.standardize)
    run = TrainedRun(models["restored"], state["params"], dataset.x_test, dataset.y_test, seeds)
    return replace(run, config=config, dataset=dataset, normalize=normalize, step=step, workdir=workdir)
