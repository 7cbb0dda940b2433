"""What every probe shares: options, the example subset, the registry.

A probe is a function ``(run: TrainedRun, options: ProbeOptions) -> dict``,
registered by name with :func:`register_probe`. Its dict holds numbers and
lists (written to ``probes.json``) and may hold numpy arrays (large ones go to
``probes.npz``). Per-replica values are lists with one entry per replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from research.registry import Registry
from research.train.trained import TrainedRun


@dataclass(frozen=True)
class ProbeOptions:
    examples: int = 1000  # test examples used (0: all)
    max_shift: int = 0  # largest shift of the shift curves (0: a quarter of the smallest spatial axis)

    @classmethod
    def from_config(cls, config) -> ProbeOptions:
        section = config.get("probes", {}) if config is not None else {}
        return cls(examples=int(section.get("examples", 1000)), max_shift=int(section.get("max_shift", 0)))


Probe = Callable[[TrainedRun, ProbeOptions], dict]
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
