"""Sweeps as plain Python: lists of override dicts built with ``axis``/``product``/``zip_axes``.

An override dict maps config keys (``"model.family"``) to values. An axis is a
list of override dicts, so one axis value can set several keys at once (a
data set together with its geometry). ``run_id`` names a run by its overrides:
a readable part plus a short hash, stable across machines and Python versions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from research.errors import UserError

Overrides = dict[str, Any]


def axis(key: str, values: Iterable[Any]) -> list[Overrides]:
    """One config key over several values."""
    return [{key: value} for value in values]


def product(*axes: Sequence[Overrides]) -> list[Overrides]:
    """Every combination of one entry per axis, merged left to right."""
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def zip_axes(*axes: Sequence[Overrides]) -> list[Overrides]:
    """Entries of equal-length axes merged position by position."""
    lengths = {len(a) for a in axes}
    if len(lengths) > 1:
        raise UserError(f"zip_axes needs axes of one length, got {sorted(lengths)}")
    return [{k: v for part in parts for k, v in part.items()} for parts in zip(*axes)]


def _short(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "x".join(_short(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


ALWAYS_SHOWN = ("data.name", "model.family")
"""Keys a run id shows whenever they vary, even when other shown keys determine them."""


def _distinct(sweep: Sequence[Overrides], keys: Sequence[str]) -> int:
    return len({json.dumps([o.get(k) for k in keys], default=str) for o in sweep})


def varying_keys(sweep: Sequence[Overrides]) -> list[str]:
    """The keys a run id shows: those whose value differs between runs, less
    those the other shown keys already determine (e.g. a data set bundle's
    batch size), in first-seen order."""
    keys = list(dict.fromkeys(k for o in sweep for k in o))
    shown = [k for k in keys if _distinct(sweep, [k]) > 1]
    needed = _distinct(sweep, shown)
    for key in reversed([k for k in shown if k not in ALWAYS_SHOWN]):
        rest = [k for k in shown if k != key]
        if _distinct(sweep, rest) == needed:
            shown = rest
    return shown


def run_id(overrides: Overrides, readable_keys: Sequence[str] | None = None) -> str:
    """``family=conv,widths=8x8x8-1a2b3c4d``: readable, unique by the hash of all overrides.

    ``readable_keys`` (default: all) picks the keys shown; the hash covers every key.
    """
    digest = hashlib.sha1(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]
    shown = overrides if readable_keys is None else {k: overrides[k] for k in readable_keys if k in overrides}
    readable = ",".join(f"{key.split('.')[-1]}={_short(value)}" for key, value in shown.items())
    readable = re.sub(r"[^A-Za-z0-9_.=,+-]", "", readable)[:90] or "base"
    return f"{readable}-{digest}"
