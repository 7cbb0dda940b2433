"""C4: convolutional layers parallelise and dense layers cannot, judged on conv's
examples/s over the dense net's at matched FLOPs (compute study; one timing per run,
so a ratio against the throughput threshold, no CI); scaling with batch size and time
to a target accuracy are noted beside it."""

from __future__ import annotations

import pandas as pd

from analysis.claims import THRESHOLDS, Claim, claim
from analysis.load import Results

STATEMENT = "Convolutional layers parallelise; dense layers cannot."
FIGURES = ["F7_cost"]
RULE = (
    "judged on throughput at matched FLOPs: supported when conv trains >= {throughput_ratio:g}x the examples/s of the "
    "dense net doing the same FLOPs on every device and data set; not supported at <= 1/{throughput_ratio:g} everywhere; "
    "one timing per run (median step time), so no CI; fraction of peak is shown, not judged"
)

SPEED, PEAK = "probe.cost.examples_per_s", "probe.cost.fraction_of_peak"


def _time_to_target(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per data set: seconds each compute-study run needs to first reach a target validation
    accuracy (95% of the lowest final one among the runs), from its validation curve (mean over
    its chosen replicas) and the cost probe's median step time."""
    curves = results.curves
    if curves.empty or "split" not in curves or "probe.cost.step_s" not in runs:
        return []
    notes = []
    for dataset, sub in runs.groupby("dataset"):
        val = curves[curves["run_key"].isin(sub["run_key"]) & (curves["split"] == "val")]
        if val.empty:
            continue
        mean = val.groupby(["run_key", "step"])["accuracy"].mean()
        finals = mean.groupby(level=0).last()
        target = 0.95 * float(finals.min())
        parts = []
        for _, row in sub.iterrows():
            if row["run_key"] not in finals.index:
                continue
            curve = mean.loc[row["run_key"]]
            reached = curve[curve >= target]
            if len(reached):
                seconds = int(reached.index[0]) * float(row["probe.cost.step_s"])
                parts.append(f"{row['family']} ({row['tag']}) {seconds:.2f} s")
        if parts:
            notes.append(
                f"{dataset}: time to {100 * target:.1f}% validation accuracy (steps x median step time): " + "; ".join(parts)
            )
    return notes


def _throughput(c: Claim, runs: pd.DataFrame) -> list[tuple[str, float]]:
    """A note per non-conv run against the matched-shape conv on its data set and device;
    returns ``(data set on device, conv's examples/s over the matched-FLOPs dense net's)``."""
    ratios = []
    for (dataset, device), sub in runs.groupby(["dataset", "probe.cost.device"]):
        conv = sub[(sub["family"] == "conv") & (sub["tag"] == "matched_shape")]
        if conv.empty:
            continue
        conv_speed = float(conv[SPEED].iloc[0])
        for _, row in sub[sub["family"] != "conv"].iterrows():
            c.notes.append(
                f"{dataset} on {device}, {row['family']} ({row['tag']}, {row['probe.cost.step_flops']:.3g} FLOPs/step): "
                f"conv trains {conv_speed / row[SPEED]:.2f}x its examples/s; fraction of matmul peak conv "
                f"{100 * conv[PEAK].iloc[0]:.1f}% vs {100 * row[PEAK]:.1f}%"
            )
            if row["tag"] == "matched_flops" and row["family"] == "dense":
                ratios.append((f"{dataset} on {device}", conv_speed / row[SPEED]))
    return ratios


def _scaling_notes(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per data set and device: each matched-shape run's examples/s from the smallest to the largest batch."""
    notes = []
    for (dataset, device), sub in runs[runs["tag"] == "matched_shape"].groupby(["dataset", "probe.cost.device"]):
        parts, batches = [], []
        for _, row in sub.iterrows():
            scaling = results.probes.get(row["run_key"], {}).get("cost", {}).get("scaling")
            if scaling:
                rates, batches = scaling["examples_per_s"], scaling["batch_sizes"]
                parts.append(f"{row['family']} {rates[0]:.0f} -> {rates[-1]:.0f} ({rates[-1] / rates[0]:.0f}x)")
        if parts:
            notes.append(
                f"{dataset} on {device}, examples/s from batch {batches[0]} to {batches[-1]} (matched shapes): "
                + "; ".join(parts)
            )
    return notes


@claim("C4", STATEMENT, figures=FIGURES, study="compute", rule=RULE)
def compute(c: Claim, results: Results) -> Claim:
    runs = results.study("compute").drop_duplicates("run_key")
    threshold = THRESHOLDS["throughput_ratio"]
    if runs.empty or SPEED not in runs:
        return c.decide_ratios([], threshold, judged=False)
    ratios = _throughput(c, runs)
    c.notes += _scaling_notes(results, runs)
    c.notes += _time_to_target(results, runs)
    return c.decide_ratios(ratios, threshold)
