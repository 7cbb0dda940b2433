"""The claims C1-C7: for each, the effects that decide it (one factor at a time,
against the right control), the effects shown beside them, and its verdict by
the four-outcome rule of :mod:`analysis.verdicts`, overall and per data set.

Every function takes the loaded :class:`~analysis.load.Results` (replicas at
each run's chosen learning rate; diverged replicas are left out of every mean
and counted in the report) and returns a :class:`Claim`. Margins are in
:data:`THRESHOLDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.load import Results, probe_value
from analysis.stats import mean_ci
from analysis.verdicts import (
    NO_DATA,
    Effect,
    OutcomeRule,
    Pooled,
    controlled,
    difference,
    four_outcomes,
    keeps_outcome,
    level,
    pooled,
    ratio_outcome,
)

THRESHOLDS = {
    "accuracy_points": 1.0,  # an accuracy difference counts when its whole 95% CI is beyond +-1 point
    "consistency_points": 5.0,  # a consistency difference counts beyond +-5 points
    "equivariance_exact": 1e-4,  # relative equivariance error below this is "exact"
    "throughput_ratio": 1.25,  # conv parallelises better when it trains 1.25x the examples/s at matched FLOPs
    "permutation_indifferent_points": 2.0,  # dense is unaffected by a permutation when its CI lies within +-2 points
    "unconverged_val_gain_points": 0.5,  # flagged: mean val accuracy still rose by more than this over the last fifth
}
ACC = THRESHOLDS["accuracy_points"] / 100


@dataclass
class Claim:
    id: str
    statement: str
    figures: list[str]
    study: str
    verdict: str = NO_DATA
    deciding: list[Effect] = field(default_factory=list)  # the effects the verdict is computed from
    shown: list[Effect] = field(default_factory=list)  # effects reported beside them
    notes: list[str] = field(default_factory=list)
    rule: str = ""
    pool: Pooled | None = None
    per_dataset: dict[str, str] = field(default_factory=dict)

    def decide(
        self, outcome_rule: OutcomeRule = four_outcomes, *, controls: Sequence[Effect] = (), uncontrolled_note: str = ""
    ) -> Claim:
        """Verdict overall and per data set from the deciding effects (effects without data dropped).

        With ``controls``, the overall verdict is :func:`~analysis.verdicts.controlled` by them
        (``uncontrolled_note`` added when they void it); the per-data-set verdicts are not."""
        self.deciding = [e for e in self.deciding if e.n > 0]
        self.shown = [e for e in self.shown if e.n > 0]
        self.pool = pooled(self.deciding)
        verdict = outcome_rule(self.deciding)
        self.verdict = controlled(verdict, controls)
        if self.verdict != verdict and uncontrolled_note:
            self.notes.append(uncontrolled_note)
        datasets = sorted({e.dataset for e in self.deciding if e.dataset})
        if len(datasets) > 1:
            self.per_dataset = {d: outcome_rule([e for e in self.deciding if e.dataset == d]) for d in datasets}
        return self

    def decide_ratios(self, points: list[tuple[str, float]], threshold: float) -> Claim:
        """Verdict overall and per point from ``(point, ratio)`` pairs by
        :func:`~analysis.verdicts.ratio_outcome` (a point measured twice keeps its last ratio)."""
        self.verdict = ratio_outcome([ratio for _, ratio in points], threshold)
        self.per_dataset = {point: ratio_outcome([ratio], threshold) for point, ratio in points}
        return self


def live(frame: pd.DataFrame) -> pd.DataFrame:
    """Finished replicas that did not diverge (a diverged replica's numbers mean nothing)."""
    frame = frame.dropna(subset=["test_accuracy"])
    return frame[~frame["diverged"].astype(bool)]


def select(frame: pd.DataFrame, column: str = "test_accuracy", **where) -> pd.Series:
    mask = np.ones(len(frame), bool)
    for key, value in where.items():
        mask &= (frame[key] == value).to_numpy()
    return frame[mask][column]


# -- C1 ----------------------------------------------------------------------------
def _matched_shapes(runs: pd.DataFrame, family_a: str, family_b: str, label: str):
    """``a - b`` test accuracy at every (data set, widths) point where both ran at the same shapes."""
    for dataset, widths in sorted({(d, w) for d, w in zip(runs["dataset"], runs["widths"])}):
        sub = runs[(runs["dataset"] == dataset) & (runs["widths"] == widths)]
        a, b = select(sub, family=family_a), select(sub, family=family_b)
        if len(a) and len(b):
            yield difference(f"{dataset}, widths {widths}: {label}", a, b, ACC, dataset=dataset), sub


def _matched_parameters(shapes: pd.DataFrame, matched: pd.DataFrame):
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
        yield difference(label, conv["test_accuracy"], lc["test_accuracy"], ACC, dataset=first["dataset"])


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


# Each claim as commonly stated, the figures that show it and the study that tests it.
CLAIM_TEXT = {
    "C1": (
        "Weight sharing cuts parameters and improves generalisation.",
        ["F1_accuracy_vs_params", "F2_sample_efficiency", "F12_infinite_width"],
        "weight_sharing",
    ),
    "C2": (
        "Sparse (local) connectivity captures local features with fewer parameters.",
        ["F3_kernel_size", "F11_locality_index", "F1_accuracy_vs_params"],
        "locality",
    ),
    "C3": (
        "Convolutional layers give translation invariance.",
        ["F4_shift_robustness", "F6_equivariance_error", "F5_position_generalisation"],
        "translation",
    ),
    "C4": ("Convolutional layers parallelise; dense layers cannot.", ["F7_cost"], "compute"),
    "C5": ("Pooling lowers dimension and adds robustness.", ["F4_shift_robustness"], "pooling"),
    "C6": ("Conv's advantage comes from the spatial prior.", ["F8_permuted_pixels"], "permuted_pixels"),
    "C7": ("A dense net can keep a conv net's solution (eFCN).", ["F9_efcn"], "embedding"),
}


def new_claim(claim_id: str) -> Claim:
    """An undecided :class:`Claim` with its statement, figures and study from :data:`CLAIM_TEXT`."""
    statement, figures, study = CLAIM_TEXT[claim_id]
    return Claim(claim_id, statement, list(figures), study)


def claim_c1(results: Results) -> Claim:
    c = new_claim("C1")
    c.notes += _infinite_width_notes(results)
    runs = live(results.study("weight_sharing"))
    matched, shapes = runs[runs["tag"] == "matched_params"], runs[runs["tag"] != "matched_params"]
    for effect, sub in _matched_shapes(shapes, "conv", "locally_connected", "conv - locally connected (matched shapes)"):
        ratio = select(sub, "num_params", family="locally_connected").iloc[0] / select(sub, "num_params", family="conv").iloc[0]
        effect.label += f", x{ratio:.1f} parameters without sharing"
        c.deciding.append(effect)
    c.deciding += list(_matched_parameters(shapes, matched))
    sample = live(results.study("sample_efficiency"))
    for dataset in sorted(sample["dataset"].unique()) if not sample.empty else []:
        sub = sample[(sample["dataset"] == dataset) & (sample["n_per_class"] > 0)]  # 0: the whole training set
        if sub.empty:
            continue
        n = sub["n_per_class"].min()
        a, b = select(sub, family="conv", n_per_class=n), select(sub, family="locally_connected", n_per_class=n)
        c.deciding.append(difference(f"{dataset}, {n} examples per class: conv - locally connected", a, b, ACC, dataset=dataset))
    c.rule = (
        "four outcomes over conv - locally connected test accuracy at matched shapes, matched parameters and the "
        "smallest training set, against the accuracy margin"
    )
    return c.decide()


# -- C2 ----------------------------------------------------------------------------
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
            spread = f", spread over units {last['locality_unit_spread'].mean():.3f}" if "locality_unit_spread" in last else ""
            effects.append(
                level(
                    f"{dataset}: locality index at the end - its shuffled baseline ({last['locality_shuffled'].mean():.3f}{spread})",
                    (last["locality_index"] - last["locality_shuffled"]).to_numpy(),
                    0.01,
                    dataset=dataset,
                    unit="",
                    scale=1.0,
                )
            )
    return notes, effects


def claim_c2(results: Results) -> Claim:
    c = new_claim("C2")
    shapes = live(results.study("weight_sharing"))
    shapes = shapes[shapes["tag"] != "matched_params"]
    c.deciding += [e for e, _ in _matched_shapes(shapes, "locally_connected", "dense", "locally connected - dense")]
    loc = live(results.study("locality"))
    for dataset in sorted(loc["dataset"].unique()) if not loc.empty else []:
        sub = loc[loc["dataset"] == dataset]
        conv = sub[sub["family"] == "conv"]
        if conv.empty:
            continue
        k = conv["kernel_sizes"].map(lambda v: int(str(v).split("x")[0]))
        smallest = int(k.min())
        c.deciding.append(
            difference(
                f"{dataset}: conv kernel {smallest} - full-kernel conv (sharing without locality, same padding)",
                conv[k == smallest]["test_accuracy"],
                select(sub, family="full_kernel_conv"),
                ACC,
                dataset=dataset,
            )
        )
    notes, effects = _locality_tracking(results)
    c.notes += notes
    c.shown += effects
    c.rule = "four outcomes over locally connected - dense (matched shapes) and small-kernel conv - full-kernel conv, against the accuracy margin"
    return c.decide()


# -- C3 ----------------------------------------------------------------------------
CONSISTENCY = "probe.consistency.consistency_circular"


def _consistency_difference(label: str, a, b, dataset: str) -> Effect:
    """``a - b`` in points of consistency (already percentages), against the consistency margin."""
    margin = THRESHOLDS["consistency_points"]
    return difference(label, a, b, margin, dataset=dataset, unit="points of consistency", scale=1.0)


def _largest(results: Results, keys, key: str) -> float | None:
    values = [
        np.asarray(results.probes[k]["equivariance"].get(key, []), float)
        for k in keys
        if "equivariance" in results.probes.get(k, {})
    ]
    values = [v[np.isfinite(v)] for v in values if v.size and np.isfinite(v).any()]
    return float(np.max(np.concatenate([v.ravel() for v in values]))) if values else None


def _equivariance_notes(results: Results, runs: pd.DataFrame) -> list[str]:
    """Per family with circular padding: the largest per-layer equivariance error under
    shifts by the layer's total stride, and under 1-pixel input shifts (below the stride)."""
    notes = []
    circular = runs[runs["padding"] == "CIRCULAR"]
    for (family, strides), sub in circular.groupby(["family", circular["strides"].astype(str)], sort=False):
        keys = sub["run_key"].unique()
        by_stride, one_pixel = _largest(results, keys, "error"), _largest(results, keys, "error_one_pixel")
        if by_stride is not None:
            exact = " (exact)" if by_stride < THRESHOLDS["equivariance_exact"] else ""
            line = (
                f"{family}, strides {strides}, circular padding: largest per-layer equivariance error, shifts by the total "
                f"stride {by_stride:.2g}{exact}"
            )
            if one_pixel is not None:
                line += f"; 1-pixel input shifts {one_pixel:.2g}"
            notes.append(line)
    return notes


def claim_c3(results: Results) -> Claim:
    c = new_claim("C3")
    runs = live(results.study("translation"))
    if not runs.empty and CONSISTENCY in runs:
        plain = runs[runs["augment_shift"] == 0]
        strided = plain[plain["strides"].astype(str) != "1"]  # the stride-1 conv nets have no dense partner
        for (dataset, head, padding), sub in strided.groupby(["dataset", "head", "padding"]):
            where = f"{dataset}, {head} head, {padding} padding"
            conv = select(sub, CONSISTENCY, family="conv")
            for other, target in (("dense", c.deciding), ("locally_connected", c.shown)):
                target.append(
                    _consistency_difference(
                        f"{where}: consistency, conv - {other}",
                        conv,
                        select(sub, CONSISTENCY, family=other),
                        dataset,
                    )
                )
        conv = strided[strided["family"] == "conv"]
        for (dataset, head, padding), sub in conv.groupby(["dataset", "head", "padding"]):
            mean, low, high, n = mean_ci(sub[CONSISTENCY])
            c.notes.append(
                f"{dataset}, conv, {head} head, {padding} padding: consistency {mean:.1f}% (95% CI {low:.1f} to {high:.1f}; n={n}); 100% is invariant"
            )
        for (dataset, padding), sub in conv.groupby(["dataset", "padding"]):  # one factor: the head
            for head in sorted(set(sub["head"]) - {"flatten"}):
                c.shown.append(
                    _consistency_difference(
                        f"{dataset}, conv, {padding} padding: consistency, {head} - flatten head",
                        select(sub, CONSISTENCY, head=head),
                        select(sub, CONSISTENCY, head="flatten"),
                        dataset,
                    )
                )
        for (dataset, head), sub in conv.groupby(["dataset", "head"]):  # one factor: the padding
            if {"CIRCULAR", "SAME"} <= set(sub["padding"]):
                c.shown.append(
                    _consistency_difference(
                        f"{dataset}, conv, {head} head: consistency, circular - zero padding",
                        select(sub, CONSISTENCY, padding="CIRCULAR"),
                        select(sub, CONSISTENCY, padding="SAME"),
                        dataset,
                    )
                )
        c.notes += _equivariance_notes(results, plain)
    pos = live(results.study("position"))
    if not pos.empty and "probe.position.accuracy_in_region" in pos:
        for (family, head), group in pos.groupby(["family", "head"]):
            c.shown.append(
                difference(
                    f"position study, {family} with {head} head: off-region - in-region accuracy",
                    group["probe.position.accuracy_off_region"],
                    group["probe.position.accuracy_in_region"],
                    ACC,
                    dataset=str(group["dataset"].iloc[0]),
                )
            )
    c.rule = (
        "four outcomes over conv - dense consistency under random shifts at each head x padding setting "
        "(one factor at a time), against the consistency margin"
    )
    return c.decide()


# -- C4 ----------------------------------------------------------------------------
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


def claim_c4(results: Results) -> Claim:
    c = new_claim("C4")
    runs = results.study("compute").drop_duplicates("run_key")
    speed, peak = "probe.cost.examples_per_s", "probe.cost.fraction_of_peak"
    threshold = THRESHOLDS["throughput_ratio"]
    if runs.empty or speed not in runs:
        return c.decide_ratios([], threshold)
    ratios = []  # (data set on device, conv's examples/s over the matched-FLOPs dense net's)
    for (dataset, device), sub in runs.groupby(["dataset", "probe.cost.device"]):
        conv = sub[(sub["family"] == "conv") & (sub["tag"] == "matched_shape")]
        if conv.empty:
            continue
        conv_speed = float(conv[speed].iloc[0])
        for _, row in sub[sub["family"] != "conv"].iterrows():
            c.notes.append(
                f"{dataset} on {device}, {row['family']} ({row['tag']}, {row['probe.cost.step_flops']:.3g} FLOPs/step): "
                f"conv trains {conv_speed / row[speed]:.2f}x its examples/s; fraction of matmul peak conv "
                f"{100 * conv[peak].iloc[0]:.1f}% vs {100 * row[peak]:.1f}%"
            )
            if row["tag"] == "matched_flops" and row["family"] == "dense":
                ratios.append((f"{dataset} on {device}", conv_speed / row[speed]))
    for (dataset, device), sub in runs[runs["tag"] == "matched_shape"].groupby(["dataset", "probe.cost.device"]):
        parts = []
        for _, row in sub.iterrows():
            scaling = results.probes.get(row["run_key"], {}).get("cost", {}).get("scaling")
            if scaling:
                rates = scaling["examples_per_s"]
                parts.append(f"{row['family']} {rates[0]:.0f} -> {rates[-1]:.0f} ({rates[-1] / rates[0]:.0f}x)")
        if parts:
            batches = scaling["batch_sizes"]
            c.notes.append(
                f"{dataset} on {device}, examples/s from batch {batches[0]} to {batches[-1]} (matched shapes): "
                + "; ".join(parts)
            )
    c.notes += _time_to_target(results, runs)
    c.rule = (
        "judged on throughput at matched FLOPs: supported when conv trains >= 1.25x the examples/s of the dense net "
        "doing the same FLOPs on every device and data set; not supported at <= 1/1.25 everywhere; one timing per run "
        "(median step time), so no CI; fraction of peak is shown, not judged"
    )
    return c.decide_ratios(ratios, threshold)


# -- C5 ----------------------------------------------------------------------------
def _shifted_accuracy(results: Results, runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``runs`` with ``shifted_accuracy``: accuracy averaged over every nonzero
    circular shift of the shift probe (per replica; NaN without the probe)."""
    runs = runs.copy()
    runs["shifted_accuracy"] = np.nan
    for key, idx in runs.groupby("run_key").groups.items():
        curve = probe_value(results, key, "shift", "accuracy_circular")
        if curve is not None and curve.ndim == 2 and curve.shape[0] == len(idx) and curve.shape[1] > 1:
            runs.loc[idx, "shifted_accuracy"] = curve[:, 1:].mean(1)
    return runs


POOLING_KINDS = {
    "max": dict(pooling="max", head="flatten"),
    "avg": dict(pooling="avg", head="flatten"),
    "blur": dict(pooling="blur", head="flatten"),
    "stride": dict(pooling="stride", head="flatten"),
    "global_avg": dict(pooling="none", head="global_avg"),
    "global_max": dict(pooling="none", head="global_max"),
}


def claim_c5(results: Results) -> Claim:
    c = new_claim("C5")
    runs = live(results.study("pooling"))
    if runs.empty:
        return c
    runs = _shifted_accuracy(results, runs)
    for dataset in sorted(runs["dataset"].unique()):
        sub = runs[runs["dataset"] == dataset]
        groups = {name: sub[(sub["pooling"] == w["pooling"]) & (sub["head"] == w["head"])] for name, w in POOLING_KINDS.items()}
        none = sub[(sub["pooling"] == "none") & (sub["head"] == "flatten")]
        for name, group in groups.items():
            if group.empty or none.empty or name == "stride":
                continue
            c.deciding.append(
                difference(
                    f"{dataset}: accuracy under shifts, {name} - no pooling",
                    group["shifted_accuracy"],
                    none["shifted_accuracy"],
                    ACC,
                    dataset=dataset,
                )
            )
            c.shown.append(
                difference(
                    f"{dataset}: unshifted accuracy, {name} - no pooling",
                    group["test_accuracy"],
                    none["test_accuracy"],
                    ACC,
                    dataset=dataset,
                )
            )
            correct = "probe.consistency.consistency_correct_circular"
            if correct in sub:
                c.shown.append(
                    _consistency_difference(
                        f"{dataset}: consistency among correctly classified copies, {name} - no pooling",
                        group[correct],
                        none[correct],
                        dataset,
                    )
                )
            if name in ("max", "avg", "blur") and not groups["stride"].empty:
                c.shown.append(
                    difference(
                        f"{dataset}: accuracy under shifts, {name} pooling - plain strided downsampling",
                        group["shifted_accuracy"],
                        groups["stride"]["shifted_accuracy"],
                        ACC,
                        dataset=dataset,
                    )
                )
        sizes = [
            f"{name} {int(g['head_inputs'].iloc[0])}"
            for name, g in groups.items()
            if len(g) and np.isfinite(g["head_inputs"].iloc[0])
        ]
        if sizes and len(none) and np.isfinite(none["head_inputs"].iloc[0]):
            c.notes.append(
                f"{dataset}: features entering the head: no pooling {int(none['head_inputs'].iloc[0])}, " + ", ".join(sizes)
            )
    c.rule = (
        "robustness is accuracy under shifts (mean over every nonzero circular shift), not agreement: four outcomes "
        "over each pooling kind - no pooling, against the accuracy margin; pooling vs plain strided downsampling shown"
    )
    return c.decide()


# -- C6 ----------------------------------------------------------------------------
def _permutation_loss(runs: pd.DataFrame, dataset: str, family: str) -> Effect:
    return difference(
        f"{dataset}: {family} accuracy lost to the permutation",
        select(runs, family=family, permute_pixels=False),
        select(runs, family=family, permute_pixels=True),
        ACC,
        dataset=dataset,
    )


def claim_c6(results: Results) -> Claim:
    c = new_claim("C6")
    runs = live(results.study("permuted_pixels"))
    controls = []
    for dataset in sorted(runs["dataset"].unique()) if not runs.empty else []:
        sub = runs[runs["dataset"] == dataset]
        c.deciding.append(_permutation_loss(sub, dataset, "conv"))
        dense = _permutation_loss(sub, dataset, "dense")
        dense.margin = THRESHOLDS["permutation_indifferent_points"] / 100
        dense.label += " (control: equivalent to zero when the CI lies within +-2 points)"
        controls.append(dense)
        c.shown.append(dense)
        for family in ("locally_connected", "full_kernel_conv"):
            if len(select(sub, family=family)):
                c.shown.append(_permutation_loss(sub, dataset, family))
        for family in ("conv", "locally_connected", "full_kernel_conv"):
            a, b = select(sub, family=family, permute_pixels=True), select(sub, family="dense", permute_pixels=True)
            if len(a) and len(b):
                c.shown.append(difference(f"{dataset}, permuted pixels: {family} - dense", a, b, ACC, dataset=dataset))
    c.decide(
        controls=controls,
        uncontrolled_note="the dense control is not shown equivalent to zero (its CI leaves +-2 points), so the test has no control",
    )
    c.notes.append(
        "where the prior lives: a permutation hurts locally connected nets through locality and full-kernel convs "
        "through sharing; compare their losses above"
    )
    c.rule = (
        "four outcomes over conv's loss to a fixed pixel permutation, provided the dense control is equivalent to zero "
        "(its CI within +-2 points; otherwise inconclusive)"
    )
    return c


# -- C7 ----------------------------------------------------------------------------
def _conv_at_epoch(results: Results, runs: pd.DataFrame, epoch: int) -> pd.Series:
    """Test accuracy per replica of the conv trained from scratch, at the end of ``epoch``."""
    curves = results.curves
    if curves.empty or "epoch" not in curves:
        return pd.Series(dtype=float)
    keys = runs[(runs["family"] == "conv") & (runs["embed_at_epoch"] == 0)]["run_key"].unique()
    at = curves[curves["run_key"].isin(keys) & (curves["split"] == "test") & (curves["epoch"] == epoch)]
    return at["accuracy"]


def claim_c7(results: Results) -> Claim:
    c = new_claim("C7")
    runs = live(results.study("embedding"))
    if runs.empty:
        return c
    for dataset in sorted(runs["dataset"].unique()):
        sub = runs[runs["dataset"] == dataset]
        dense, conv = select(sub, family="dense", embed_at_epoch=0), select(sub, family="conv", embed_at_epoch=0)
        for t in sorted(sub[sub["embed_at_epoch"] > 0]["embed_at_epoch"].unique()):
            embedded = select(sub, embed_at_epoch=t)
            at_switch = _conv_at_epoch(results, sub, int(t))
            c.deciding.append(
                difference(
                    f"{dataset}, switch at epoch {t}: eFCN at the end - conv at the switch",
                    embedded,
                    at_switch,
                    ACC,
                    dataset=dataset,
                )
            )
            c.shown.append(
                difference(
                    f"{dataset}, switch at epoch {t}: eFCN - conv trained to the end", embedded, conv, ACC, dataset=dataset
                )
            )
            c.shown.append(
                difference(f"{dataset}, switch at epoch {t}: eFCN - dense from scratch", embedded, dense, ACC, dataset=dataset)
            )
    curves = results.curves
    if not curves.empty and "outside_receptive_field" in curves:
        tracked = curves[(curves["split"] == "track") & curves["outside_receptive_field"].notna()]
        for key, part in tracked.groupby("run_key"):
            end = part[part["step"] == part["step"].max()]["outside_receptive_field"]
            t = runs.loc[runs["run_key"] == key, "embed_at_epoch"]
            c.notes.append(
                f"switch at epoch {int(t.iloc[0]) if len(t) else '?'}: {100 * end.mean():.1f}% of the dense layers' weight mass "
                "lies outside the conv's receptive fields at the end (0% at the switch)"
            )
    c.notes.append(
        "at the switch every replica's weights are embedded exactly (same function) and the optimizer starts afresh: "
        "Adam's moments and step count reset, each replica keeps its learning rate"
    )
    c.rule = (
        "keeps the solution when the embedded net ends no worse than the conv at the switch (CI above -accuracy margin) "
        "at every switch time; not supported when it ends below at every one; depends when switch times differ"
    )
    return c.decide(keeps_outcome)


CLAIMS = [claim_c1, claim_c2, claim_c3, claim_c4, claim_c5, claim_c6, claim_c7]


def evaluate_claims(results: Results) -> list[Claim]:
    return [fn(results) for fn in CLAIMS]
