"""One module per figure of the paper; each registers ``make(results) -> Figure | None``.

``None`` means the results hold no run of the figure's study (the report
then says which study to run). Figures F1-F15 map to claims C1-C9 as listed
in each module's docstring.
"""

from __future__ import annotations

from research.registry import Registry

FIGURES: Registry = Registry("figure")

from analysis.figures import (  # noqa: E402,F401  (each module registers its figure)
    f01_params,
    f02_sample_efficiency,
    f03_kernel_size,
    f04_shift,
    f05_position,
    f06_equivariance,
    f07_cost,
    f08_permuted,
    f09_efcn,
    f10_curves,
    f11_locality,
    f12_infinite_width,
    f13_learning_rates,
    f14_data_scaling,
    f15_learned_weight_maps,
)

__all__ = ["FIGURES"]
