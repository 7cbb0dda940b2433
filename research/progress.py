"""Progress bars that read well both in a terminal and in a log file.

``progress_bar(...)`` is ``tqdm`` with the project's defaults. On a terminal it
is the usual live bar. Redirected to a file (a sweep worker's ``DIR/logs/<run>.log``,
``nohup ... > out.log``), tqdm would join every refresh with carriage returns
into one unreadable line; here each update becomes its own line instead, so a
log shows the run's progress (steps, rate, ETA, the current window's loss) as
it went.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm.auto import tqdm


class _Lines:
    """A file wrapper for tqdm: every refresh (``\\r`` + status) becomes one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._last = ""

    def write(self, text: str) -> None:
        for part in text.replace("\n", "\r").split("\r"):
            part = part.strip()
            if part and part != self._last:
                self.stream.write(part + "\n")
                self._last = part

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(*, total: int | None, desc: str, unit: str, disable: bool = False, initial: int = 0, **kwargs) -> tqdm:
    """A tqdm bar on stderr; one line per update when stderr is not a terminal."""
    stream = sys.stderr
    if not disable and not stream.isatty():
        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            file=_Lines(stream),
            mininterval=0,
            miniters=1,
            leave=False,  # every update is already a line; closing would repeat the last
            bar_format="{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
            **kwargs,
        )
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, dynamic_ncols=True, **kwargs)


__all__ = ["progress_bar"]
