"""Training: the compiled multi-replica engine, checkpoints, metrics, the run loop."""

from research.train.loop import strip_timing, train_and_evaluate

__all__ = ["strip_timing", "train_and_evaluate"]
