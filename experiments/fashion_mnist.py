"""Fashion-MNIST reference models (Xiao et al. 2017, https://arxiv.org/abs/1708.07747).

    cvd train --config experiments/fashion_mnist.py:cnn --workdir runs/fashion_cnn

Variants: ``mlp`` (784-256-128-100-10) and ``cnn`` ("2 conv + pooling":
conv32-maxpool-conv64-maxpool-dense128); append ``,quick`` for a smoke run on
a 100-per-class subset. Data: IDX files from Debian's ``dataset-fashion-mnist``
(``--config.data.dir`` points elsewhere), standardized with the training
set's mean and std. Adam with cosine decay (peak 1e-3 for the MLP, 2e-3 for
the CNN), batch 128, 5 epochs.

Expected (dataset README): MLP 88.3%, 2 conv + pooling 91.6%. Measured
numbers and runtimes on a 2-core CPU are in the README.
"""

from experiments.common import parse_variant
from research.config import default_config


def get_config(variant: str = "cnn"):
    model, flags = parse_variant(variant, ("mlp", "cnn"), "cnn", flags=("quick",))
    c = default_config()
    c.seeds = 1
    c.model.name = f"fashion_{model}"
    c.data.name = "fashion_mnist"
    c.data.standardize = True
    c.optimizer.learning_rate = 1e-3 if model == "mlp" else 2e-3
    c.optimizer.schedule = "cosine"
    c.train.batch_size = 128
    c.train.epochs = 5
    c.train.checkpoint_every_steps = 500
    if "quick" in flags:
        c.data.n_per_class = 100
        c.train.epochs = 2
    return c
