"""Early stopping on validation, per replica.

Each replica keeps its best validation accuracy so far, the epoch it reached
it and the test accuracy at that epoch (the test split is read there, never
chosen on). A replica is *done* once it has gone ``train.patience`` epochs
without improving (or has diverged); a done replica's best numbers are frozen,
so they are what it would report trained alone. The run stops when every
replica is done (``train.epochs`` bounds it either way).

The state is rebuilt from the run's ``metrics.jsonl`` on resume (the records
up to the checkpoint's step are kept, the rest redone), so a run killed in the
middle of a patience window resumes to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class BestValidation:
    """Per replica: best validation accuracy, its epoch, the test accuracy there."""

    replicas: int
    patience: int  # epochs without improvement after which a replica is done (0: never)
    best_val: np.ndarray = field(init=False)
    best_epoch: np.ndarray = field(init=False)
    test_at_best: np.ndarray = field(init=False)
    done: np.ndarray = field(init=False)
    last_epoch: int = 0

    def __post_init__(self):
        self.best_val = np.full(self.replicas, -np.inf)
        self.best_epoch = np.zeros(self.replicas, np.int64)
        self.test_at_best = np.full(self.replicas, np.nan)
        self.done = np.zeros(self.replicas, bool)

    def update(self, epoch: int, val_accuracy, test_accuracy, alive) -> None:
        """Record one evaluation after ``epoch`` (1-based) of every replica."""
        val, alive = np.asarray(val_accuracy, float), np.asarray(alive, bool)
        test = np.full(self.replicas, np.nan) if test_accuracy is None else np.asarray(test_accuracy, float)
        improved = alive & ~self.done & (val > self.best_val)
        self.best_val = np.where(improved, val, self.best_val)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.test_at_best = np.where(improved, test, self.test_at_best)
        self.last_epoch = epoch
        stale = self.patience > 0 and epoch - self.best_epoch >= self.patience
        self.done |= ~alive | stale

    def all_done(self) -> bool:
        """Whether the run can stop: every replica done (never without patience)."""
        return self.patience > 0 and bool(self.done.all())

    def replay(self, records: list[dict], after_each: Callable[[int, np.ndarray], None] | None = None) -> None:
        """Rebuild from ``metrics.jsonl`` records (a resumed run): every val evaluation in order.
        A replica dropped by rate halving (:meth:`drop`) has no records after it and counts as not
        alive there. ``after_each(epoch, alive)`` runs after each evaluation, as the live loop's
        halving check does."""
        by_epoch: dict[int, dict[str, dict[int, dict]]] = {}
        for record in records:
            if record.get("split") in ("val", "test") and "epoch" in record:
                by_epoch.setdefault(int(record["epoch"]), {}).setdefault(record["split"], {})[int(record["replica"])] = record
        for epoch in sorted(by_epoch):
            val, test = by_epoch[epoch].get("val", {}), by_epoch[epoch].get("test", {})
            if any(r not in val and not self.done[r] for r in range(self.replicas)):
                continue  # an incomplete evaluation (only replicas dropped by halving may be absent)
            missing = {"accuracy": -np.inf, "alive": False}
            rows = [val.get(r, missing) for r in range(self.replicas)]
            test_acc = [test.get(r, missing)["accuracy"] for r in range(self.replicas)] if test else None
            alive = np.array([v.get("alive", True) for v in rows], bool)
            self.update(epoch, [v["accuracy"] for v in rows], test_acc, alive)
            if after_each is not None:
                after_each(epoch, alive)

    def drop(self, replicas: np.ndarray) -> None:
        """Mark ``replicas`` done (dropped by rate halving: their best numbers are final)."""
        self.done[np.asarray(replicas, int)] = True

    def replica_fields(self, r: int) -> dict:
        """What ``summary.json`` records for replica ``r`` (None without a validation evaluation)."""
        if not np.isfinite(self.best_val[r]):
            return {"best_val_epoch": None, "val_accuracy_at_best": None, "test_accuracy_at_best_val": None}
        test = float(self.test_at_best[r])
        return {
            "best_val_epoch": int(self.best_epoch[r]),
            "val_accuracy_at_best": float(self.best_val[r]),
            "test_accuracy_at_best_val": test if np.isfinite(test) else None,
        }
