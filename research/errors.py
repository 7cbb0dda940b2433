"""User-facing errors: one line saying what is wrong and what would be right.

Library code raises :class:`UserError` for bad input (unknown names, wrong
types, impossible shapes, missing data). The CLI turns it into a single line
on stderr and exit status 2, with no traceback. Anything else is a bug and
keeps its traceback, except a full, read-only or forbidden disk (:func:`disk_error`):
the machine, not the code, which the CLI also reports in one line.
"""

from __future__ import annotations

import difflib
import errno
import os
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


# Errors of the machine, not of the code: the disk is full, read-only or not ours to write.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)
DISK_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system", "Permission denied")


def disk_error(error: BaseException) -> str | None:
    """One line saying which write the disk refused, when ``error`` (or what caused it, e.g.
    inside the checkpoint library) is a full, read-only or forbidden disk; else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            where = f" writing {error.filename}" if error.filename else ""
            return f"{error.strerror or os.strerror(error.errno)}{where}"
        text = str(error)
        for message in DISK_MESSAGES:
            if message in text:
                return f"{message}: {' '.join(text.split())[:300]}"
        error = error.__cause__ or error.__context__
    return None
