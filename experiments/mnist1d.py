"""MNIST-1D reference models (Greydanus & Kobak 2020, https://arxiv.org/abs/2011.14439).

    cvd train --config experiments/mnist1d.py:cnn --workdir runs/mnist1d_cnn
    cvd train --config experiments/mnist1d.py:mlp --config.data.permute_pixels=True --workdir runs/mnist1d_mlp_perm

Variants: ``mlp`` (40-100-100-10), ``cnn`` (3 strided convs, flatten, linear);
append ``,quick`` for a smoke run (3 epochs). Paper settings: Adam lr 1e-2,
batch 100, 6000 steps (150 epochs of the 4000 training examples), 5 seeds
trained together in one program.

Expected (paper): MLP 68%, CNN 94% test accuracy; with a fixed pixel
shuffle, MLP 68%, CNN 56%. Measured numbers and runtimes on a 2-core CPU are
in the README.
"""

from experiments.common import parse_variant
from research.config import default_config


def get_config(variant: str = "cnn"):
    model, flags = parse_variant(variant, ("mlp", "cnn"), "cnn", flags=("quick",))
    c = default_config()
    c.seeds = 5
    c.model.name = f"mnist1d_{model}"
    c.data.name = "mnist1d"
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 1e-2
    c.train.batch_size = 100
    c.train.epochs = 150  # 6000 steps
    c.train.checkpoint_every_steps = 1000
    if "quick" in flags:
        c.seeds = 2
        c.train.epochs = 3
    return c
