"""Position generalisation (C3): train with objects in one region of a larger
canvas (``data.canvas_size``, ``data.canvas_region``), test at every position.

The result is an accuracy map over the object's top-left corner, plus the mean
accuracy inside the training region and outside it. A network that only
learned "this object at these pixels" (dense) collapses off the region; conv
with global pooling carries what it learned everywhere.
"""

from __future__ import annotations

import numpy as np

from research.data import load_dataset, place_on_canvas
from research.errors import UserError
from research.probes.base import ProbeOptions, accuracy, register_probe
from research.train.trained import TrainedRun

MAX_POSITIONS_PER_AXIS = 7


def corner_grid(max_corner: int, region: int) -> list[int]:
    """Up to ``MAX_POSITIONS_PER_AXIS`` corners from 0 to ``max_corner``, always
    including the training region's far edge."""
    step = max(1, -(-max_corner // (MAX_POSITIONS_PER_AXIS - 1)))
    return sorted({*range(0, max_corner + 1, step), max_corner, region})


@register_probe("position")
def position_map(run: TrainedRun, options: ProbeOptions) -> dict:
    """Test accuracy at every canvas position, trained positions against unseen ones (C7; runs trained on a canvas)."""
    canvas = (run.dataset.info if run.dataset is not None else {}).get("canvas")
    if not canvas:
        raise UserError("the position probe needs a run trained on a canvas (set data.canvas_size and data.canvas_region)")
    plain = run.config.data.copy_and_resolve_references()
    plain.canvas_size = 0
    source = load_dataset(plain)
    n = min(options.examples or len(source.y_test), 500)
    x, y = source.x_test[:n], source.y_test[:n]
    size, region = canvas["size"], canvas["region"]
    spatial = x.shape[1:-1]
    axes = [corner_grid(size - s, region) for s in spatial]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(spatial))
    acc = np.stack([accuracy(run, place_on_canvas(x, (size,) * len(spatial), position=corner)[0], y) for corner in grid], -1)
    inside = (grid <= region).all(axis=1)
    return {
        "run_level": ["corners", "axes"],  # lists that are not one value per replica
        "corners": [list(map(int, c)) for c in grid],
        "axes": axes,
        "region": region,
        "accuracy_map": acc.reshape(run.num_replicas, *map(len, axes)).tolist(),
        "accuracy_in_region": acc[:, inside].mean(-1).tolist(),
        "accuracy_off_region": acc[:, ~inside].mean(-1).tolist(),
    }
