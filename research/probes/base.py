"""What every probe shares: options, the example subset, the registry.

A probe is a function ``(run: TrainedRun, options: ProbeOptions) -> dict``,
registered by name with :func:`register_probe`. Its dict holds numbers and
lists (written to ``probes.json``) and may hold numpy arrays (large ones go to
``probes.npz``). Per-replica values are lists with one entry per replica.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from research.config import default_config
from research.registry import Registry
from research.train.trained import TrainedRun

_DEFAULTS = default_config().probes


@dataclass(frozen=True)
class ProbeOptions:
    """``config.probes.examples`` (test examples used, 0: all) and ``max_shift`` (largest
    shift of the shift curves, 0: a quarter of the smallest spatial axis); defaults from
    :func:`research.config.default_config`."""

    examples: int = _DEFAULTS.examples
    max_shift: int = _DEFAULTS.max_shift

    @classmethod
    def from_config(cls, config) -> ProbeOptions:
        if config is None:  # a run assembled in memory, without a config
            return cls()
        return cls(examples=int(config.probes.examples), max_shift=int(config.probes.max_shift))


PROBES: Registry = Registry("probe")


def register_probe(name: str):
    return PROBES.register(name)


def probe_examples(run: TrainedRun, options: ProbeOptions, cap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``options.examples`` test examples (stored form) and labels."""
    n = options.examples or len(run.y_test)
    if cap:
        n = min(n, cap)
    return run.x_test[:n], run.y_test[:n]


def spatial_shape(run: TrainedRun) -> tuple[int, ...]:
    return tuple(run.x_test.shape[1:-1])


def accuracy(run: TrainedRun, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-replica accuracy, shape ``(replicas,)``."""
    return (run.logits(x).argmax(-1) == y[None]).mean(-1)
