"""Metric files in the workdir, CLU-shaped: ``write_scalars(step, dict)`` + ``flush``.

``metrics.jsonl`` holds one JSON record per line: ``step``, ``split``
(``train`` | ``test``), ``replica``, ``seed`` and the scalars. The analysis
reads only these files, ``config.json`` and ``summary.json``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf; keep the fact, as a string
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


def read_metrics(path: Path) -> list[dict]:
    """All records; an unreadable line (a write cut short) is skipped with a warning."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{number}: skipping a truncated or corrupt metrics line", stacklevel=2)
    return records


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records up to ``last_step`` (resume from a checkpoint at that step)."""
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def atomic_write_text(path: Path, text: str) -> None:
    """Write then rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
