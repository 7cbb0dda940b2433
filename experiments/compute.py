"""C4: do conv layers parallelise better than dense layers?

    cvd sweep --config experiments/compute.py:quick --workdir runs/compute

Every family at matched output shapes (the same widths), and every non-conv
family again at the width whose forward multiply-accumulates match the conv's
(matched FLOPs). The cost probe measures FLOPs, step time and fraction of peak
on these runs. quick: MNIST-1D, 3 seeds, 6 runs. full: all data sets.
"""

from flax import nnx

from experiments.common import FAMILIES, check_variant, datasets, lattice_config
from research.models import count_macs, get_model
from research.sweep import product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.probes.final = ("cost",)
    return c


def _macs(bundle: dict, family: str, width: int) -> int:
    one_d = bundle["data.name"] == "mnist1d"
    shape = (40, 1) if one_d else ((32, 32, 3) if "cifar" in bundle["data.name"] else (28, 28, 1))
    widths = (width,) * 3 if one_d else (width, 2 * width)
    model = nnx.eval_shape(
        lambda: get_model(
            "lattice",
            shape,
            10,
            nnx.Rngs(0),
            family=family,
            widths=widths,
            kernel_sizes=bundle["model.kernel_sizes"],
            strides=2,
            padding="SAME",
        )
    )
    return count_macs(model)


def matched_width(bundle: dict, family: str, target_macs: int) -> int:
    """The width whose multiply-accumulates come closest to ``target_macs`` (MACs grow with width: bisect)."""
    low, high = 1, 256
    while low < high:
        mid = (low + high) // 2
        if _macs(bundle, family, mid) < target_macs:
            low = mid + 1
        else:
            high = mid
    candidates = {max(1, low - 1), low}
    return min(candidates, key=lambda w: abs(_macs(bundle, family, w) - target_macs))


def get_sweep(variant: str = "quick"):
    runs = []
    for bundle in datasets(variant, images=check_variant(variant) == "full"):
        base_width = bundle["model.widths"][0]
        runs += product([bundle], [{"model.family": f, "tag": "matched_shape"} for f in FAMILIES])
        target = _macs(bundle, "conv", base_width)
        for family in FAMILIES[1:]:
            width = matched_width(bundle, family, target)
            if width == base_width:  # already matched (locally connected: same MACs as the conv)
                continue
            widths = (width,) * len(bundle["model.widths"]) if bundle["data.name"] == "mnist1d" else (width, 2 * width)
            runs.append({**bundle, "model.family": family, "model.widths": widths, "tag": "matched_flops"})
    return runs
