"""Directories that commands write into: their paths checked, one lock each.

:func:`workdir_lock` is the one lock of the codebase: ``cvd train`` and ``cvd
probe`` hold their run directory's, ``cvd sweep`` its sweep directory's,
``cvd analyze`` its report directory's, each while it writes there. The lock is
an exclusive ``flock`` on ``DIR/.cvd.lock``, which names its holder (pid and
command): a second process that wants it is refused at once with one line
naming the holder, never left waiting, and a holder that dies (even by kill -9)
lets go with its process. :func:`check_path` refuses, before anything is made,
a path the file system or the checkpoint library could not hold.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from research.errors import UserError

LOCK_NAME = ".cvd.lock"
NAME_MAX = 255  # bytes in one path component (Linux, macOS)
PATH_MAX = 4096  # bytes in a path (Linux)


def check_path(path: Path, what: str = "workdir") -> Path:
    """``path``, refused (a one-line UserError) when the file system could not hold it: not
    UTF-8 (JSON and the checkpoint library need UTF-8 names), a component over
    :data:`NAME_MAX` bytes, or over :data:`PATH_MAX` in all."""
    text = str(path)
    try:
        encoded = os.path.abspath(text).encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{what} {text!r} is not valid UTF-8; choose a name of UTF-8 characters") from None
    longest = max(Path(text).parts, key=lambda part: len(part.encode("utf-8")), default="")
    if len(longest.encode("utf-8")) > NAME_MAX:
        raise UserError(
            f"{what} name {longest[:40]}... is {len(longest.encode())} bytes, longer than the {NAME_MAX} a file name may have"
        )
    if len(encoded) > PATH_MAX:
        raise UserError(f"{what} {text[:40]}... is {len(encoded)} bytes, longer than the {PATH_MAX} a path may have")
    return Path(path)


# -- one lock per directory ------------------------------------------------------------
_HELD: dict[Path, int] = {}  # directories whose lock this process holds re-entrantly -> depth


def _open_lock(directory: Path, command: str, what: str):
    """The locked ``.cvd.lock`` of ``directory`` (made if need be), or a one-line UserError."""
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{what} {directory} exists and is not a directory")
    path = directory / LOCK_NAME
    while True:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+")
        except OSError as e:
            raise UserError(f"cannot write to {what} {directory}: {e.strerror or e}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().split(maxsplit=1)
            handle.close()
            pid, held_by = (holder + ["?", "command"])[:2] if holder else ("?", "command")
            raise UserError(
                f"another cvd {held_by.strip()} (pid {pid}) is running in {directory}; "
                "wait for it to finish or choose another directory"
            ) from None
        try:
            current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            current = False
        if current:  # else its holder removed it as we opened it: lock the new one
            break
        handle.close()
    with contextlib.suppress(OSError):  # naming the holder is a courtesy (a full disk may refuse it)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {command}\n")
        handle.flush()
    return handle


def _missing_parents(directory: Path) -> list[Path]:
    """``directory`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


@contextlib.contextmanager
def workdir_lock(directory: Path, command: str, *, what: str = "workdir", reentrant: bool = False) -> Iterator[Path]:
    """Hold ``directory``'s lock while ``command`` (``train``, ``probe``, ``sweep``, ``analyze``)
    writes there; a second holder, in another process, is refused with one line naming this
    one. The directory is made (its path checked by :func:`check_path`) and, when the
    command leaves it empty (refused or failed before writing), removed again with the
    parents it needed; the lock file is removed on release. ``reentrant``: this process may
    take it again inside (a run's training, then its probes)."""
    directory = check_path(Path(directory), what).absolute()
    if reentrant and _HELD.get(directory):
        _HELD[directory] += 1
        try:
            yield directory
        finally:
            _HELD[directory] -= 1
        return
    made = _missing_parents(directory)
    handle = _open_lock(directory, command, what)
    _HELD[directory] = 1 if reentrant else 0
    try:
        yield directory
    finally:
        _HELD.pop(directory, None)
        with contextlib.suppress(OSError):
            (directory / LOCK_NAME).unlink()
        handle.close()
        for path in made:  # only what this call made, and only while empty
            with contextlib.suppress(OSError):
                path.rmdir()
