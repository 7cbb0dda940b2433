"""C4: do conv layers parallelise better than dense layers?

    cvd sweep --config experiments/compute.py:quick --workdir runs/compute

Every family at matched output shapes (the same widths), and every non-conv
family again at the width whose forward multiply-accumulates match the conv's
(matched FLOPs). The cost probe measures FLOPs, step time and fraction of peak
on these runs. quick and paper: MNIST-1D, 6 runs. full: all data sets.
full leaves out dense on CIFAR-10 (over 8M parameters a replica:
experiments/common.py, FULL_MAX_PARAMS).
"""

from experiments.common import bundle_widths, datasets, lattice_config, lattice_size, matched_width, on_cpu, within_budget
from research.models import FAMILIES, count_macs
from research.sweep import product


def get_config(variant: str = "quick"):
    c = lattice_config(variant)
    c.probes.final = ("cost",)
    return c


def _sweep(variant: str) -> list[dict]:
    runs = []
    for bundle in datasets(variant, images=not on_cpu(variant)):
        base_width = bundle["model.widths"][0]
        runs += product([bundle], [{"model.family": f, "tag": "matched_shape"} for f in FAMILIES])
        target = lattice_size(bundle, "conv", base_width, count_macs)
        for family in FAMILIES[1:]:
            width = matched_width(bundle, family, target, count_macs)
            if width == base_width:  # already matched (locally connected: same MACs as the conv)
                continue
            runs.append({**bundle, "model.family": family, "model.widths": bundle_widths(bundle, width), "tag": "matched_flops"})
    return runs


def get_sweep(variant: str = "quick"):
    return within_budget(variant, _sweep(variant), get_config(variant))
