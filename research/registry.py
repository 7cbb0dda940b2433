"""Explicit name -> factory registries, filled by a decorator.

One ``Registry`` per kind that users extend from their own code (models,
datasets, probes, figures): registered by decorator, from any module, even a
study file. ``get`` on an unknown name raises a :class:`~research.errors.UserError`
that lists the valid names and suggests the closest one.

The rule for the rest: a fixed table that only this package fills (layer
families, trackers, launchers, optimizers, strategies, benchmark sections,
claims) is a plain dict or tuple next to the code that uses it, and an unknown
name in it goes through the same :func:`research.errors.unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from research.errors import unknown

T = TypeVar("T")


def _origin(item) -> tuple[str, str]:
    """Where a registered item was defined: (module, qualified name)."""
    return getattr(item, "__module__", ""), getattr(item, "__qualname__", repr(item))


class Registry(Generic[T]):
    """A named collection of factories of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None) -> Callable[[T], T] | T:
        """Register ``item`` under ``name``; usable as ``@registry.register("x")``."""
        if item is not None:
            self._add(name, item)
            return item

        def decorator(fn: T) -> T:
            self._add(name, fn)
            return fn

        return decorator

    def _add(self, name: str, item: T) -> None:
        old = self._items.get(name)
        if old is not None and _origin(old) != _origin(item):
            raise ValueError(f"{self.kind} {name!r} registered twice")
        # The same definition again (a study file that registers a data source, imported
        # a second time by a sweep worker) replaces the first: harmless.
        self._items[name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise unknown(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
