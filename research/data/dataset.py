"""The one shape every data source returns: arrays plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A classification data set held as host arrays, channels last.

    ``x_*`` have shape ``(n, *spatial, channels)`` and dtype uint8 (images) or
    float32; ``y_*`` are int32 class indices.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    info: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def splits(self) -> dict[str, int]:
        return {"train": len(self.y_train), "test": len(self.y_test)}

    def replace(self, **changes) -> Dataset:
        return replace(self, **changes)

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "splits": self.splits,
            **self.info,
        }


def as_float(x: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [0, 1]; float data -> float32 unchanged."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    return x.astype(np.float32)
