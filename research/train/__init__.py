"""Training: the run spec, the compiled multi-replica engine, checkpoints, metrics, the run loop."""

from research.train.loop import train_and_evaluate
from research.train.spec import RunSpec, Tracker
from research.train.summary import strip_timing

__all__ = ["RunSpec", "Tracker", "strip_timing", "train_and_evaluate"]
