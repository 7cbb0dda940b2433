"""User-facing errors: one line saying what is wrong and what would be right.

Library code raises :class:`UserError` for bad input (unknown names, wrong
types, impossible shapes, missing data). The CLI turns it into a single line
on stderr and exit status 2, with no traceback. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user; the message is shown as-is, on one line."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix when a close match exists, else ''."""
    matches = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def unknown(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """The standard error for a name that is not in a registry."""
    valid = sorted(valid)
    return UserError(f"unknown {kind} {name!r}.{did_you_mean(name, valid)} Valid: {', '.join(valid)}")
