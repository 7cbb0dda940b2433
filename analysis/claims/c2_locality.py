"""C2: sparse (local) connectivity captures local features with fewer parameters,
judged on locally connected - dense and small-kernel conv - full-kernel conv test
accuracy (weight_sharing and locality studies); the dense first layer's locality
index is tracked beside it."""

from __future__ import annotations

import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, keyed, live, matched_shapes, select
from analysis.load import Results
from analysis.verdicts import Effect, level

STATEMENT = "Sparse (local) connectivity captures local features with fewer parameters."
FIGURES = ["F3_kernel_size", "F11_locality_index", "F1_accuracy_vs_params"]
RULE = "four outcomes over locally connected - dense (matched shapes) and small-kernel conv - full-kernel conv, against the accuracy margin"

LOCALITY_MARGIN = 0.01  # a locality index this far from its shuffled baseline is shown as a difference


def _small_kernels(results: Results) -> list[Effect]:
    """Per data set: the smallest-kernel conv - the full-kernel conv (sharing without locality)."""
    loc = live(results.study("locality"))
    effects = []
    for dataset in sorted(loc["dataset"].unique()) if not loc.empty else []:
        sub = loc[loc["dataset"] == dataset]
        conv = sub[sub["family"] == "conv"]
        if conv.empty:
            continue
        k = conv["kernel_sizes"].map(lambda v: int(str(v).split("x")[0]))
        smallest = int(k.min())
        effects.append(
            accuracy_difference(
                f"{dataset}: conv kernel {smallest} - full-kernel conv (sharing without locality, same padding)",
                keyed(conv[k == smallest]),
                select(sub, family="full_kernel_conv"),
                dataset,
            )
        )
    return effects


def _locality_tracking(results: Results) -> tuple[list[str], list[Effect]]:
    """Per tracked run: the dense first layer's locality index at step 0 and at the end,
    and, where recorded, the end's index minus its shuffled baseline (CI over seeds)."""
    curves = results.curves
    if curves.empty or "locality_index" not in curves:
        return [], []
    tracked = curves[(curves["split"] == "track") & curves["locality_index"].notna()]
    notes, effects = [], []
    for (dataset, key), run in tracked.groupby(["dataset", "run_key"]):
        first, last = run[run["step"] == run["step"].min()], run[run["step"] == run["step"].max()]
        notes.append(
            f"{dataset}: dense first layer's locality index {first['locality_index'].mean():.3f} at step 0 -> "
            f"{last['locality_index'].mean():.3f} at step {int(last['step'].iloc[0])} (uniform weights "
            f"{run['locality_uniform'].mean():.3f}; {key})"
        )
        if "locality_shuffled" in last and last["locality_shuffled"].notna().all():
            effects.append(_above_shuffled(dataset, last))
    return notes, effects


def _above_shuffled(dataset: str, last: pd.DataFrame) -> Effect:
    """The locality index at the end minus its shuffled baseline, over seeds (an index: no unit)."""
    spread = f", spread over units {last['locality_unit_spread'].mean():.3f}" if "locality_unit_spread" in last else ""
    return level(
        f"{dataset}: locality index at the end - its shuffled baseline ({last['locality_shuffled'].mean():.3f}{spread})",
        (last["locality_index"] - last["locality_shuffled"]).to_numpy(),
        LOCALITY_MARGIN,
        dataset=dataset,
        unit="",
        scale=1.0,
    )


@claim("C2", STATEMENT, figures=FIGURES, study="locality", rule=RULE)
def locality(c: Claim, results: Results) -> Claim:
    shapes = live(results.study("weight_sharing"))
    shapes = shapes[shapes["tag"] != "matched_params"]
    c.deciding += [e for e, _ in matched_shapes(shapes, "locally_connected", "dense", "locally connected - dense")]
    c.deciding += _small_kernels(results)
    notes, effects = _locality_tracking(results)
    c.notes += notes
    c.shown += effects
    return c.decide()
