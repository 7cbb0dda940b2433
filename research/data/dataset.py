"""The one shape every data source returns: arrays plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """A classification data set held as host arrays, channels last.

    ``x_*`` have shape ``(n, *spatial, channels)`` and dtype uint8 (images) or
    float32; ``y_*`` are int32 class indices. ``x_val, y_val`` are the
    validation split carved from the training data (empty until
    ``research.data.load_dataset`` carves it); every choice is made on it,
    the test split is only reported.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    info: dict = field(default_factory=dict)
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def splits(self) -> dict[str, int]:
        """Examples per split (``val`` only when carved)."""
        labels = {"train": self.y_train, "val": self.y_val, "test": self.y_test}
        return {name: len(y) for name, y in labels.items() if y is not None}

    def inputs(self) -> dict[str, np.ndarray]:
        """Every split's inputs by name (``val`` only when carved)."""
        splits = {"train": self.x_train, "val": self.x_val, "test": self.x_test}
        return {name: x for name, x in splits.items() if x is not None}

    def map_inputs(self, fn) -> Dataset:
        """The same data set with ``fn`` applied to every split's inputs (labels kept)."""
        return self.replace(**{f"x_{name}": fn(x) for name, x in self.inputs().items()})

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
