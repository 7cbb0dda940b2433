"""C6: conv's advantage comes from the spatial prior, judged on conv's accuracy lost
to a fixed pixel permutation, provided the dense control loses nothing (permuted_pixels
study); the other families' losses and permuted-pixel accuracies are shown beside it."""

from __future__ import annotations

import pandas as pd

from analysis.claims import THRESHOLDS, Claim, accuracy_difference, claim, format_rule, live, select
from analysis.load import Results
from analysis.verdicts import Effect, difference

BAND = "+-{permutation_indifferent_points:g} points"  # the dense control counts as unaffected within it
STATEMENT = "Conv's advantage comes from the spatial prior."
FIGURES = ["F8_permuted_pixels"]
RULE = (
    "four outcomes over conv's loss to a fixed pixel permutation, provided the dense control is equivalent to zero "
    f"(its CI within {BAND}; otherwise inconclusive)"
)


def _within() -> str:
    """:data:`BAND` with its number from the current thresholds."""
    return format_rule(BAND)


def _permutation_loss(runs: pd.DataFrame, dataset: str, family: str) -> Effect:
    """``family``'s accuracy on the original pixels - on the permuted ones, against the accuracy margin."""
    return accuracy_difference(
        f"{dataset}: {family} accuracy lost to the permutation",
        select(runs, family=family, permute_pixels=False),
        select(runs, family=family, permute_pixels=True),
        dataset,
    )


def _dense_control(runs: pd.DataFrame, dataset: str) -> Effect:
    """The dense net's loss to the permutation, against the band it must lie within."""
    return difference(
        f"{dataset}: dense accuracy lost to the permutation (control: equivalent to zero when the CI lies within {_within()})",
        select(runs, family="dense", permute_pixels=False),
        select(runs, family="dense", permute_pixels=True),
        THRESHOLDS["permutation_indifferent_points"] / 100,
        dataset=dataset,
    )


def _beside(sub: pd.DataFrame, dataset: str) -> list[Effect]:
    """The other families' losses, and each family - dense on permuted pixels."""
    shown = [_permutation_loss(sub, dataset, f) for f in ("locally_connected", "full_kernel_conv") if len(select(sub, family=f))]
    for family in ("conv", "locally_connected", "full_kernel_conv"):
        a, b = select(sub, family=family, permute_pixels=True), select(sub, family="dense", permute_pixels=True)
        if len(a) and len(b):
            shown.append(accuracy_difference(f"{dataset}, permuted pixels: {family} - dense", a, b, dataset))
    return shown


@claim("C6", STATEMENT, figures=FIGURES, study="permuted_pixels", rule=RULE)
def permuted_pixels(c: Claim, results: Results) -> Claim:
    runs = live(results.study("permuted_pixels"))
    controls = []
    for dataset in sorted(runs["dataset"].unique()) if not runs.empty else []:
        sub = runs[runs["dataset"] == dataset]
        c.deciding.append(_permutation_loss(sub, dataset, "conv"))
        controls.append(_dense_control(sub, dataset))
        c.shown += [controls[-1], *_beside(sub, dataset)]
    c.decide(
        controls=controls,
        uncontrolled_note=f"the dense control is not shown equivalent to zero (its CI leaves {_within()}), so the test has no control",
    )
    c.notes.append(
        "where the prior lives: a permutation hurts locally connected nets through locality and full-kernel convs "
        "through sharing; compare their losses above"
    )
    return c
