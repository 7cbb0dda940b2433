"""C1: weight sharing cuts parameters and improves generalisation, judged on conv -
locally connected test accuracy at matched shapes (every width) and at every training-set
size of the sample-efficiency study (weight_sharing and sample_efficiency studies). The
accuracy-against-parameters frontier of each family, the parameters each needs to reach
another's best accuracy, the matched-parameter runs and the infinite-width kernels are
reported beside it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from analysis.claims import Claim, accuracy_difference, claim, keyed, live, matched_shapes, select
from analysis.load import Results
from analysis.verdicts import Effect

STATEMENT = "Weight sharing cuts parameters and improves generalisation."
FIGURES = ["F1_accuracy_vs_params", "F2_sample_efficiency", "F12_infinite_width"]
RULE = (
    "four outcomes over conv - locally connected test accuracy at matched shapes (every width) and at every training-set "
    "size, against the accuracy margin; the frontiers (parameters to reach the other family's best accuracy) and the "
    "matched-parameter runs are reported, not deciding"
)
FRONTIER_FAMILIES = ("conv", "locally_connected", "dense")


def frontier(runs: pd.DataFrame, family: str) -> pd.DataFrame:
    """``num_params`` and mean test accuracy of ``family``'s runs, by parameters, with ``best``: the
    best accuracy reached at or below that many parameters (the accuracy-against-parameters frontier)."""
    rows = runs[runs["family"] == family]
    points = rows.groupby("num_params")["test_accuracy"].mean().sort_index()
    return pd.DataFrame(
        {
            "num_params": points.index.to_numpy(float),
            "accuracy": points.to_numpy(),
            "best": np.maximum.accumulate(points.to_numpy()),
        }
    )


def params_to_reach(front: pd.DataFrame, target: float) -> float | None:
    """The parameters at which the frontier first reaches ``target`` (log-linear between measured
    widths), or None when it never does."""
    reached = np.flatnonzero(front["best"].to_numpy() >= target)
    if not len(reached):
        return None
    i = int(reached[0])
    if i == 0:
        return float(front["num_params"].iloc[0])
    (p0, p1), (a0, a1) = front["num_params"].iloc[i - 1 : i + 1], front["best"].iloc[i - 1 : i + 1]
    share = (target - a0) / (a1 - a0) if a1 > a0 else 1.0
    return float(np.exp(np.log(p0) + share * (np.log(p1) - np.log(p0))))


def _frontier_notes(shapes: pd.DataFrame) -> list[str]:
    """Per data set: each family's best accuracy over its widths and the parameters every other
    family needs to reach it."""
    notes = []
    for dataset, sub in shapes.groupby("dataset"):
        fronts = {f: frontier(sub, f) for f in FRONTIER_FAMILIES if (sub["family"] == f).any()}
        for family, front in fronts.items():
            i = int(np.argmax(front["accuracy"].to_numpy()))
            best, at = front["accuracy"].iloc[i], front["num_params"].iloc[i]
            parts = []
            for other, other_front in fronts.items():
                if other != family:
                    need = params_to_reach(other_front, best)
                    parts.append(
                        f"{other} needs {need:,.0f} (x{need / at:.2g})"
                        if need
                        else f"{other} never does (best {100 * other_front['best'].iloc[-1]:.1f}%)"
                    )
            notes.append(
                f"{dataset}, frontier over {len(front)} widths: {family}'s best {100 * best:.1f}% at {at:,.0f} parameters; "
                + "; ".join(parts)
            )
    return notes


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
        yield accuracy_difference(label, keyed(conv), keyed(lc), first["dataset"])


def _training_set_sizes(results: Results) -> Iterator[Effect]:
    """Per data set and training-set size: conv - locally connected."""
    sample = live(results.study("sample_efficiency"))
    for dataset in sorted(sample["dataset"].unique()) if not sample.empty else []:
        sub = sample[sample["dataset"] == dataset]
        for n in sorted(sub["n_per_class"].unique()):
            a, b = select(sub, family="conv", n_per_class=n), select(sub, family="locally_connected", n_per_class=n)
            size = f"{int(n)} examples per class" if n else "the whole training set"
            yield accuracy_difference(f"{dataset}, {size}: conv - locally connected", a, b, dataset)


def _infinite_width_notes(results: Results) -> list[str]:
    """What the infinite-width kernels say: conv vs locally connected kernel-regression accuracy
    per head, the NNGP's and (where the run fitted it) the NTK's."""
    kernels = live(results.study("infinite_width"))
    notes = []
    for (dataset, head), sub in kernels.groupby(["dataset", "head"]):
        acc = sub.groupby("family")["test_accuracy"].mean()
        ntk = sub.groupby("family")["ntk_test_accuracy"].mean() if "ntk_test_accuracy" in sub else None
        if {"conv", "locally_connected"} <= set(acc.index):
            same = " (the same kernel: sharing without pooling has no effect at infinite width)" if head == "flatten" else ""
            with_ntk = (
                f"; NTK conv {100 * ntk['conv']:.1f}% vs {100 * ntk['locally_connected']:.1f}%"
                if ntk is not None and ntk[["conv", "locally_connected"]].notna().all()
                else ""
            )
            notes.append(
                f"{dataset}, infinite width, {head} head, {int(sub['train_examples'].iloc[0])} training examples: kernel regression "
                f"(NNGP) conv {100 * acc['conv']:.1f}% vs locally connected {100 * acc['locally_connected']:.1f}%{with_ntk}{same}"
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
    c.shown += list(_matched_parameters(shapes, matched))
    c.deciding += list(_training_set_sizes(results))
    c.notes += _frontier_notes(shapes)
    return c.decide()
