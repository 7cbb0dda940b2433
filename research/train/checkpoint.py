"""Orbax checkpoints: the only module that talks to Orbax.

A checkpoint holds the whole train state (``StandardSave``) and a small JSON
``meta`` (``JsonSave``): epoch, position in the epoch, wall time so far. Keeps
the latest ``keep`` (``preservation_policy=LatestN``). Restore goes into an
abstract state (``jax.eval_shape`` of the initial one), so shapes, dtypes and
shardings come from the code, not the files. A checkpoint that cannot be
read is reported by a warning naming it, and the previous one is tried.
When the Orbax v1 API lands, this file is the one to change.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers
from orbax.checkpoint.utils import TMP_DIR_SUFFIX


class Checkpointer:
    """Save every call to :meth:`save`; restore the newest readable checkpoint. A save that
    fails (a full disk) leaves no temporary directory behind, nor does one cut short by a
    kill: the next writing Checkpointer (``writer``, the run loop) on the directory removes it."""

    def __init__(self, directory: Path, keep: int = 2, *, writer: bool = False):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                preservation_policy=checkpoint_managers.LatestN(max(1, keep)),
                enable_async_checkpointing=False,
                create=True,
                cleanup_tmp_directories=writer,  # only the run that writes here (under its lock) may
            ),
        )

    def save(self, step: int, state: Any, meta: dict) -> None:
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
                force=True,
            )
            self.manager.wait_until_finished()
        except BaseException:
            for partial in self.directory.glob(f"*{TMP_DIR_SUFFIX}*"):
                shutil.rmtree(partial, ignore_errors=True)
            raise

    def restore_latest(self, abstract_for: Callable[[dict], Any]) -> tuple[int, Any, dict] | None:
        """``(step, state, meta)`` of the newest checkpoint that reads back, or None.

        ``abstract_for(meta)`` gives the abstract state to restore into (the
        state's structure may depend on the checkpoint, e.g. an eFCN phase).
        """
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                meta = dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
                restored = self.manager.restore(
                    step,
                    args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_for(meta)), meta=ocp.args.JsonRestore()),
                )
                return step, restored["state"], meta
            except Exception as e:  # any unreadable checkpoint: say which, set it aside, fall back to the previous
                aside = self._set_aside(step)
                warnings.warn(
                    f"checkpoint {self.directory / str(step)} is unreadable ({type(e).__name__}); moved to {aside}, "
                    "trying the previous one",
                    stacklevel=2,
                )
        return None

    def _set_aside(self, step: int) -> Path:
        """Move an unreadable step out of the manager's way (kept for inspection, never reused)."""
        aside_root = self.directory.parent / f"{self.directory.name}.unreadable"
        aside_root.mkdir(exist_ok=True)
        target = aside_root / str(step)
        n = 1
        while target.exists():
            target, n = aside_root / f"{step}.{n}", n + 1
        (self.directory / str(step)).rename(target)
        self.manager.reload()
        return target

    def close(self) -> None:
        self.manager.close()


def abstract_like(state: Any) -> Any:
    """The abstract (shape, dtype, sharding) version of a state, for restoring into."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
