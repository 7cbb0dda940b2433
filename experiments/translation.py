"""C3: do conv layers give translation invariance?

    cvd sweep --config experiments/translation.py:quick --workdir runs/translation

Families x head (flatten / global average) x padding (zero / circular, and
valid in full), the full product so that head and padding each vary alone;
paper and full also train with random circular shifts of up to 4 positions.
The translation probes (shift curves, consistency, equivariance error) run on
these checkpoints; four stride-1 conv nets (each padding, each head) show
what the stride costs under 1-pixel shifts. quick: MNIST-1D, 16 runs; paper:
28; full: every data set. Expected: conv is equivariant, not invariant; only
with global pooling and circular padding does invariance approach exact.
full leaves out dense on CIFAR-10 (over 8M parameters a replica:
experiments/common.py, FULL_MAX_PARAMS).
"""

from experiments.common import SMALL, check_variant, datasets, lattice_config, on_cpu, within_budget
from research.sweep import axis, product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.probes.final = ("translation",)
    return c


def _sweep(variant: str) -> list[dict]:
    # One factor at a time: every head with every padding, so each is compared with the other fixed.
    paddings = ["SAME", "CIRCULAR"] if on_cpu(variant) else ["SAME", "CIRCULAR", "VALID"]
    heads = product(axis("model.head", ["flatten", "global_avg"]), axis("model.padding", paddings))
    augment = [0] if check_variant(variant) in SMALL else [0, 4]
    bundles = datasets(variant, images=not on_cpu(variant))
    runs = product(
        bundles, axis("model.family", ["conv", "locally_connected", "dense"]), heads, axis("train.augment_shift", augment)
    )
    # Stride-1 conv nets beside the strided ones: exactly equivariant to 1-pixel shifts with circular
    # padding, where the strided ones are only equivariant to shifts by their stride (Azulay & Weiss 2019).
    # Both paddings, so that at stride 1 too the padding varies alone (C3 by component).
    stride_one = {"model.family": "conv", "model.strides": 1, "train.augment_shift": 0}
    return runs + product(
        bundles, [stride_one], axis("model.head", ["flatten", "global_avg"]), axis("model.padding", ["CIRCULAR", "SAME"])
    )


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
