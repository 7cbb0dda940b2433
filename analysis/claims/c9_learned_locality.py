"""C9: a dense net can learn locality from data, judged on beta-LASSO (Neyshabur 2020)
against the same SGD without the sparsity step (learned_locality study).

Two effects decide it, per data set, each against its own margin: locality (the
beta-LASSO dense net's first-layer locality index above its shuffled baseline and
above the SGD-trained dense net's: :func:`~analysis.verdicts.conjunction`) and
accuracy (its test accuracy gain over the SGD-trained dense net); the claim is
their :func:`~analysis.verdicts.joint` verdict. ``l1`` is chosen on validation among
the beta-LASSO runs, like the learning rate within each run. Shown beside them:
the optimizer's own effect (SGD against Adam, which does not count), the locally
connected net's gain, the gap to conv; noted: the share of the dense-to-conv gap
closed, and locality, sparsity and accuracy along the ``l1`` grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.claims import THRESHOLDS, Claim, accuracy_difference, claim, live, select
from analysis.load import Results
from analysis.verdicts import Effect, OutcomeRule, conjunction, difference, four_outcomes, joint, level, pooled

STUDY = "learned_locality"
STATEMENT = "A dense net can learn locality from data."
FIGURES = ["F15_learned_weight_maps", "F11_locality_index"]
RULE = (
    "joint verdict of two effects of the beta-LASSO dense net against the SGD-trained dense net (l1 chosen on "
    "validation): locality (its first-layer locality index above its shuffled baseline and above the SGD net's, "
    "each beyond +-{locality_index_margin:g}) and accuracy (its gain beyond the accuracy margin of "
    "+-{accuracy_points:g} points); supported when both are, depends when they disagree"
)
INDEX, SHUFFLED = "probe.locality.locality_index", "probe.locality.shuffled"
NONZERO = "probe.sparsity.nonzero_first_layer"


def index_difference(label: str, a, b, dataset: str) -> Effect:
    """``a - b`` of locality indices over seeds, against the index margin (an index: no unit)."""
    return difference(label, a, b, THRESHOLDS["locality_index_margin"], dataset=dataset, unit="", scale=1.0)


def above_shuffled(label: str, runs: pd.DataFrame, dataset: str) -> Effect:
    """The locality index minus its shuffled baseline, paired per replica, against the index margin."""
    values = (runs[INDEX] - runs[SHUFFLED]).to_numpy(float)
    return level(label, values, THRESHOLDS["locality_index_margin"], dataset=dataset, unit="", scale=1.0)


def chosen_l1(runs: pd.DataFrame) -> pd.DataFrame:
    """Of beta-LASSO runs at several ``l1`` (one data set, one family), the replicas of the run
    whose mean validation accuracy is best (ties: the smaller ``l1``); the test split is not read."""
    if runs.empty:
        return runs
    val = runs.groupby("l1")["val_accuracy"].mean().dropna()
    if val.empty:
        return runs[runs["l1"] == runs["l1"].min()]
    return runs[runs["l1"] == val.index[int(np.argmax(val.to_numpy()))]]


def arms(sub: pd.DataFrame, family: str) -> dict[str, pd.DataFrame]:
    """``family``'s replicas per optimizer: sgd, adam, beta_lasso (at the chosen l1), and
    ``grid``: every beta-LASSO run."""
    rows = sub[sub["family"] == family]
    grid = rows[rows["optimizer"] == "beta_lasso"]
    return {
        "sgd": rows[rows["optimizer"] == "sgd"],
        "adam": rows[rows["optimizer"] == "adam"],
        "beta_lasso": chosen_l1(grid),
        "grid": grid,
    }


def _judged_rule(shuffled: list[Effect], control: list[Effect], accuracy: list[Effect]) -> OutcomeRule:
    """The claim's rule over any subset of its deciding effects (overall, or one data set's)."""

    def outcome(effects: list[Effect]) -> str:
        def of(group: list[Effect]) -> list[Effect]:
            return [e for e in effects if any(e is g for g in group)]

        locality = conjunction(four_outcomes(of(shuffled)), four_outcomes(of(control)))
        return joint(locality, four_outcomes(of(accuracy)))

    return outcome


def gap_closed(dense: dict[str, pd.DataFrame], conv: pd.Series) -> float:
    """(beta-LASSO - SGD) / (conv - SGD) in mean test accuracy: the share of the gap closed."""
    sgd = dense["sgd"]["test_accuracy"].mean()
    gap = conv.mean() - sgd
    return float((dense["beta_lasso"]["test_accuracy"].mean() - sgd) / gap) if gap > 0 else float("nan")


def grid_notes(dataset: str, family: str, grid: pd.DataFrame, chosen: float) -> list[str]:
    """One line per ``l1``: validation and test accuracy, locality index, non-zero share."""
    lines = []
    for l1, run in grid.groupby("l1"):
        index = f", locality index {run[INDEX].mean():.3f} (shuffled {run[SHUFFLED].mean():.3f})" if _has(run, INDEX) else ""
        nonzero = f", non-zero first-layer weights {100 * run[NONZERO].mean():.1f}%" if _has(run, NONZERO) else ""
        mark = " (chosen on validation)" if l1 == chosen else ""
        lines.append(
            f"{dataset}, {family}, beta-LASSO l1={l1:g}{mark}: val {100 * run['val_accuracy'].mean():.1f}%, "
            f"test {100 * run['test_accuracy'].mean():.1f}%{index}{nonzero}"
        )
    return lines


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and frame[column].notna().any()


def level_notes(dataset: str, dense: dict, local: dict, conv: pd.Series) -> list[str]:
    """The levels behind the differences (means over seeds): each dense net's locality index
    and shuffled baseline, and every arm's test accuracy beside conv's."""
    arms_ = {f"dense {k}": v for k, v in dense.items() if k != "grid"} | {
        f"locally connected {k}": v for k, v in local.items() if k != "grid"
    }
    index = [
        f"{name} {arm[INDEX].mean():.3f} (shuffled {arm[SHUFFLED].mean():.3f})" for name, arm in arms_.items() if _has(arm, INDEX)
    ]
    accuracy = [f"{name} {100 * arm['test_accuracy'].mean():.1f}%" for name, arm in arms_.items() if len(arm)]
    lines = [f"{dataset}: first-layer locality index: " + ", ".join(index)] if index else []
    if accuracy:
        lines.append(
            f"{dataset}: test accuracy: " + ", ".join(accuracy) + (f"; conv sgd {100 * conv.mean():.1f}%" if len(conv) else "")
        )
    return lines


def _shown(c: Claim, dataset: str, dense: dict, local: dict, conv: pd.Series) -> None:
    """Beside the deciding effects: the optimizer's own effect, the locally connected net's gain,
    the gap to conv, and the notes (gap closed, sparsity, the l1 grid)."""
    acc = lambda arm: arm["test_accuracy"]
    c.shown.append(
        accuracy_difference(
            f"{dataset}: dense, SGD - Adam (the optimizer's own effect; not counted)",
            acc(dense["sgd"]),
            acc(dense["adam"]),
            dataset,
        )
    )
    if _has(dense["adam"], INDEX) and _has(dense["sgd"], INDEX):
        c.shown.append(
            index_difference(
                f"{dataset}: locality index, dense Adam - dense SGD", dense["adam"][INDEX], dense["sgd"][INDEX], dataset
            )
        )
    c.shown.append(
        accuracy_difference(
            f"{dataset}: locally connected, beta-LASSO - SGD", acc(local["beta_lasso"]), acc(local["sgd"]), dataset
        )
    )
    c.shown.append(accuracy_difference(f"{dataset}: conv (SGD) - dense SGD (the gap)", conv, acc(dense["sgd"]), dataset))
    c.shown.append(
        accuracy_difference(f"{dataset}: conv (SGD) - dense beta-LASSO (the gap left)", conv, acc(dense["beta_lasso"]), dataset)
    )
    c.notes += level_notes(dataset, dense, local, conv)
    if len(conv) and len(dense["sgd"]) and len(dense["beta_lasso"]):
        c.notes.append(
            f"{dataset}: beta-LASSO closes {100 * gap_closed(dense, conv):.0f}% of the dense-to-conv test-accuracy gap (SGD-trained dense to SGD-trained conv)"
        )
    for name, arms_ in (("dense", dense), ("locally connected", local)):
        parts = [f"{opt} {100 * arm[NONZERO].mean():.1f}%" for opt, arm in arms_.items() if opt != "grid" and _has(arm, NONZERO)]
        if parts:
            c.notes.append(f"{dataset}: non-zero first-layer weights, {name}: " + ", ".join(parts))
    for family, arms_ in (("dense", dense), ("locally_connected", local)):
        if len(arms_["beta_lasso"]):
            c.notes += grid_notes(dataset, family, arms_["grid"], float(arms_["beta_lasso"]["l1"].iloc[0]))


@claim("C9", STATEMENT, figures=FIGURES, study=STUDY, rule=RULE)
def learned_locality(c: Claim, results: Results) -> Claim:
    runs = live(results.study(STUDY))
    shuffled, control, accuracy = [], [], []
    for dataset in sorted(runs["dataset"].unique()) if not runs.empty else []:
        sub = runs[runs["dataset"] == dataset]
        dense, local = arms(sub, "dense"), arms(sub, "locally_connected")
        lasso, sgd = dense["beta_lasso"], dense["sgd"]
        if _has(lasso, INDEX) and _has(lasso, SHUFFLED):
            shuffled.append(
                above_shuffled(f"{dataset}: locality index, dense beta-LASSO - its shuffled baseline", lasso, dataset)
            )
        if _has(lasso, INDEX) and _has(sgd, INDEX):
            control.append(
                index_difference(f"{dataset}: locality index, dense beta-LASSO - dense SGD", lasso[INDEX], sgd[INDEX], dataset)
            )
        accuracy.append(
            accuracy_difference(
                f"{dataset}: test accuracy, dense beta-LASSO - dense SGD", lasso["test_accuracy"], sgd["test_accuracy"], dataset
            )
        )
        _shown(c, dataset, dense, local, select(sub, family="conv", optimizer="sgd"))
    c.deciding += [*shuffled, *control, *accuracy]
    c.decide(_judged_rule(shuffled, control, accuracy), judged=bool(len(runs)))
    c.pool = pooled([e for e in c.deciding if any(e is a for a in accuracy)], "pooled accuracy gain")
    return c
