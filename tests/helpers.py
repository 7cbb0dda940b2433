"""Tiny configs shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path

from research.config import default_config


def tiny_config(model: str = "cnn", **train):
    c = default_config()
    c.seeds = 2
    c.data.name = "mnist1d"
    c.data.n_per_class = 8  # 80 training examples
    if model == "cnn":
        c.model.name = "lattice"
        c.model.family = "conv"
        c.model.widths = (4, 4)
        c.model.kernel_sizes = 3
        c.model.strides = 2
    else:
        c.model.name = "mlp"
        c.model.hidden = (16,)
    c.optimizer.learning_rate = 1e-2
    c.train.batch_size = 10
    c.train.epochs = 3
    c.train.eval_batch_size = 300
    c.train.checkpoint_every_steps = 8
    for key, value in train.items():
        c.train[key] = value
    return c


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


TINY_STUDY = """
from research.config import default_config
from research.sweep import axis, product


def get_config(variant=None):
    c = default_config()
    c.seeds = 2
    c.model.name = "lattice"
    c.model.widths = (2, 2)
    c.model.strides = 2
    c.data.n_per_class = 5
    c.train.batch_size = 10
    c.train.epochs = 2
    c.optimizer.learning_rate = 1e-2
    return c


def get_sweep(variant=None):
    runs = product(axis("model.family", ["conv", "locally_connected", "dense"]), axis("model.kernel_sizes", [3, 5]),
                   axis("optimizer.learning_rate", [1e-2, 3e-3]))
    if variant == "few":
        runs = [r for r in runs if r["optimizer.learning_rate"] == 1e-2 and r["model.family"] != "dense"]
    if variant == "faulty":
        runs = runs[:1] + [
            {"model.family": "conv", "model.kernel_sizes": 99, "model.padding": "VALID"},  # invalid: kernel > input
            {"train.batch_size": 10_000},  # raises when it runs: batch larger than the training set
            {"optimizer.name": "sgd", "optimizer.learning_rate": 1e30},  # every replica diverges
        ]
    return runs
"""
