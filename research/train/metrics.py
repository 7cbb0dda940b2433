"""Metric files in the workdir, CLU-shaped: ``write_scalars(step, dict)`` + ``flush``.

``metrics.jsonl`` holds one JSON record per line: ``step``, ``split``
(``train`` | ``val`` | ``test`` | ``track``), ``replica``, ``seed`` and the
scalars. The analysis reads only these files, ``config.json`` and ``summary.json``.

Beside it, :class:`TensorBoardWriter` writes the same scalars as a TensorBoard
event file (``events.out.tfevents.*``; tags ``split/metric/lr_<rate>_seed_<seed>``
per replica and ``split/metric`` for the mean over replicas, the config as
hparams), so ``tensorboard --logdir runs/`` shows a sweep's runs side by side.
It uses tensorboardX, which installs from PyPI without TensorFlow (CLU's
writer needs TensorFlow). :func:`read_event_scalars` reads such a file back.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from research.atomic import atomic_write_text
from research.rundir import read_metrics


def _import_tensorboardx_without_torch():
    """tensorboardX's writer imports torch when it is installed (the dev extras install it for a
    benchmark), only to accept torch tensors, which this module never passes: 4 s for every
    process that trains (benchmarks/README.md, "Measurements behind rules in the code"). So
    torch is hidden for that one import, unless something has already imported it."""
    hidden = "torch" not in sys.modules
    if hidden:
        sys.modules["torch"] = None  # `import torch` raises ImportError, which tensorboardX handles
    try:
        import tensorboardX
        import tensorboardX.proto.event_pb2
        import tensorboardX.summary
    finally:
        if hidden:
            del sys.modules["torch"]
    return tensorboardX


_tensorboardx = _import_tensorboardx_without_torch()
SummaryWriter, Event, hparams = _tensorboardx.SummaryWriter, _tensorboardx.proto.event_pb2.Event, _tensorboardx.summary.hparams


def _clean(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep the fact, as a string (read_metrics reads it back)
    return value


class MetricWriter:
    """Appends JSON lines; ``flush`` makes them durable."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open(self.path, "a", encoding="utf-8")

    def write_scalars(self, step: int, scalars: dict[str, Any], **labels: Any) -> None:
        record = {"step": int(step), **{k: _clean(v) for k, v in labels.items()}, **{k: _clean(v) for k, v in scalars.items()}}
        self._file.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        self._file.close()


class TensorBoardWriter:
    """Scalars and the run's config into one TensorBoard event file in ``logdir``.

    ``purge_step``: on resume, the step of the checkpoint resumed from; TensorBoard
    then drops the events an interrupted session wrote after it (they are redone)."""

    def __init__(self, logdir: Path, purge_step: int | None = None):
        self._writer = SummaryWriter(logdir=str(logdir), purge_step=purge_step or None, flush_secs=30)

    def write_scalars(self, step: int, split: str, scalars: dict[str, Any], suffix: str = "") -> None:
        for name, value in scalars.items():
            value = _clean(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(f"{split}/{name}" + (f"/{suffix}" if suffix else ""), float(value), int(step))

    def write_hparams(self, config: dict, metrics: Sequence[str]) -> None:
        """The flattened config as TensorBoard hparams, compared on ``metrics`` (tags)."""
        flat = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v)) for k, v in _flatten(config).items()}
        for summary in hparams(flat, {m: 0.0 for m in metrics}):
            self._writer.file_writer.add_summary(summary)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def read_events(path: Path) -> Iterator:
    """Every ``Event`` of one TensorBoard event file (TFRecord framing: length, its CRC,
    the serialized ``Event``, its CRC)."""
    data = Path(path).read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        yield Event.FromString(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4


def read_event_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from one TensorBoard event file."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(path):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return scalars


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records up to ``last_step`` (resume from a checkpoint at that step)."""
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
