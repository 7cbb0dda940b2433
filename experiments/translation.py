"""C3: do conv layers give translation invariance?

    cvd sweep --config experiments/translation.py:quick --workdir runs/translation

Families x head (flatten / global average) x padding (zero / circular /
valid), each trained plainly and with random circular shifts of up to 4
positions; the translation probes (shift curves, consistency, equivariance
error) run on these checkpoints. quick: MNIST-1D, conv / locally connected /
dense, two head-padding pairs, 3 seeds, 12 runs. full: the whole product on
all data sets, 5 seeds. Expected: conv is equivariant, not invariant; only
with global pooling and circular padding does invariance approach exact.
"""

from experiments.common import datasets, lattice_config, on_cpu
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.probes.final = ("translation",)
    return c


def get_sweep(variant: str = "quick"):
    if on_cpu(variant):
        heads = [
            {"model.head": "flatten", "model.padding": "SAME"},
            {"model.head": "global_avg", "model.padding": "CIRCULAR"},
        ]
        families = ["conv", "locally_connected", "dense"]
    else:
        heads = product(axis("model.head", ["flatten", "global_avg"]), axis("model.padding", ["SAME", "CIRCULAR", "VALID"]))
        families = ["conv", "locally_connected", "dense"]
    return product(
        datasets(variant, images=not on_cpu(variant)),
        axis("model.family", families),
        heads,
        axis("train.augment_shift", [0, 4]),
    )
