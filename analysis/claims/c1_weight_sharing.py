"""C1: weight sharing cuts parameters and improves generalisation, judged on conv -
locally connected test accuracy (weight_sharing and sample_efficiency studies); the
infinite-width kernels are noted beside it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, live, matched_shapes, select
from analysis.load import Results
from analysis.verdicts import Effect

STATEMENT = "Weight sharing cuts parameters and improves generalisation."
FIGURES = ["F1_accuracy_vs_params", "F2_sample_efficiency", "F12_infinite_width"]
RULE = (
    "four outcomes over conv - locally connected test accuracy at matched shapes, matched parameters and the "
    "smallest training set, against the accuracy margin"
)


def _matched_parameters(shapes: pd.DataFrame, matched: pd.DataFrame) -> Iterator[Effect]:
    """conv - locally connected for each matched-parameter run, paired with the other
    family's matched-shape run whose parameter count is closest."""
    for _, run in matched.groupby("run_key", sort=True):
        first = run.iloc[0]
        other = "locally_connected" if first["family"] == "conv" else "conv"
        pool = shapes[(shapes["dataset"] == first["dataset"]) & (shapes["family"] == other)]
        if pool.empty:
            continue
        partner_key = pool.iloc[int(np.argmin(np.abs(pool["num_params"].to_numpy() - first["num_params"])))]["run_key"]
        partner = pool[pool["run_key"] == partner_key]
        conv, lc = (run, partner) if first["family"] == "conv" else (partner, run)
        label = (
            f"{first['dataset']}, matched parameters: conv (widths {conv['widths'].iloc[0]}, {int(conv['num_params'].iloc[0])} "
            f"params) - locally connected (widths {lc['widths'].iloc[0]}, {int(lc['num_params'].iloc[0])} params)"
        )
        yield accuracy_difference(label, conv["test_accuracy"], lc["test_accuracy"], first["dataset"])


def _smallest_training_sets(results: Results) -> Iterator[Effect]:
    """Per data set: conv - locally connected at the fewest examples per class."""
    sample = live(results.study("sample_efficiency"))
    for dataset in sorted(sample["dataset"].unique()) if not sample.empty else []:
        sub = sample[(sample["dataset"] == dataset) & (sample["n_per_class"] > 0)]  # 0: the whole training set
        if sub.empty:
            continue
        n = sub["n_per_class"].min()
        a, b = select(sub, family="conv", n_per_class=n), select(sub, family="locally_connected", n_per_class=n)
        yield accuracy_difference(f"{dataset}, {n} examples per class: conv - locally connected", a, b, dataset)


def _infinite_width_notes(results: Results) -> list[str]:
    """What the NNGP kernels say: conv vs locally connected kernel-regression accuracy per head."""
    kernels = results.study("infinite_width").dropna(subset=["test_accuracy"])
    notes = []
    for (dataset, head), sub in kernels.groupby(["dataset", "head"]):
        acc = sub.groupby("family")["test_accuracy"].mean()
        if {"conv", "locally_connected"} <= set(acc.index):
            same = " (the same kernel: sharing without pooling has no effect at infinite width)" if head == "flatten" else ""
            notes.append(
                f"{dataset}, infinite width, {head} head, {int(sub['train_examples'].iloc[0])} training examples: kernel regression "
                f"conv {100 * acc['conv']:.1f}% vs locally connected {100 * acc['locally_connected']:.1f}%{same}"
            )
    return notes


@claim("C1", STATEMENT, figures=FIGURES, study="weight_sharing", rule=RULE)
def weight_sharing(c: Claim, results: Results) -> Claim:
    c.notes += _infinite_width_notes(results)
    runs = live(results.study("weight_sharing"))
    matched, shapes = runs[runs["tag"] == "matched_params"], runs[runs["tag"] != "matched_params"]
    for effect, sub in matched_shapes(shapes, "conv", "locally_connected", "conv - locally connected (matched shapes)"):
        ratio = select(sub, "num_params", family="locally_connected").iloc[0] / select(sub, "num_params", family="conv").iloc[0]
        effect.label += f", x{ratio:.1f} parameters without sharing"
        c.deciding.append(effect)
    c.deciding += list(_matched_parameters(shapes, matched))
    c.deciding += list(_smallest_training_sets(results))
    return c.decide()
