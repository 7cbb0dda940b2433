"""Verdict rules: four outcomes from constructed effects, and every claim on synthetic
result trees with three data sets (one missing a study, a diverged replica, a
single-seed point), for effects built to be supported, not supported, depending
on the point, or inconclusive. No profile's layout may crash the report."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from analysis import load_results
from analysis.claims import evaluate_claims, live
from analysis.figures import FIGURES
from analysis.verdicts import (
    DEPENDS,
    INCONCLUSIVE,
    NO_CI,
    NOT_SUPPORTED,
    SUPPORTED,
    Effect,
    difference,
    four_outcomes,
    pooled,
)
from tests.helpers import done_summary, report_only, write_run, write_sweep_index

DATASETS = ("mnist1d", "fashion_mnist", "tfds:cifar10")
M = 0.01  # the accuracy margin


def _effect(diff, half, n=5):
    return Effect("point", diff, diff - half, diff + half, n, M, se=half / 2)


# -- the rule ------------------------------------------------------------------------
def test_all_points_clear_above_is_supported():
    assert four_outcomes([_effect(0.05, 0.01), _effect(0.08, 0.02)]) == SUPPORTED


def test_one_inconclusive_point_does_not_turn_supported_into_depends():
    effects = [_effect(0.05, 0.01), _effect(0.06, 0.01), _effect(0.02, 0.03)]
    assert effects[2].outcome == "straddles"
    assert four_outcomes(effects) == SUPPORTED


def test_points_clear_of_the_margin_in_opposite_directions_depend():
    assert four_outcomes([_effect(0.05, 0.01), _effect(-0.05, 0.01)]) == DEPENDS
    assert four_outcomes([_effect(0.05, 0.01), _effect(0.0, 0.005)]) == DEPENDS  # an effect at one point, none at the other


def test_cis_straddling_the_margin_are_inconclusive():
    assert four_outcomes([_effect(0.01, 0.03), _effect(-0.005, 0.02)]) == INCONCLUSIVE


def test_no_point_in_the_claims_favour_is_not_supported():
    assert four_outcomes([_effect(-0.05, 0.01), _effect(0.0, 0.005)]) == NOT_SUPPORTED


def test_single_seed_points_have_no_ci_and_never_decide():
    single = difference("one seed", [0.9], [0.5], M)
    assert single.outcome == NO_CI and "no CI; n=1" in single.text()
    assert four_outcomes([single]) == INCONCLUSIVE
    assert four_outcomes([single, _effect(-0.05, 0.01)]) == NOT_SUPPORTED
    flat = difference("no spread", [0.9, 0.9, 0.9], [0.5, 0.5, 0.5], M)
    assert flat.outcome == NO_CI


POOL_FIXTURE = [  # (diff, standard error, runs read): the last reuses the first one's control
    (0.040, 0.010, {"conv/a", "dense/c"}),
    (0.010, 0.015, {"conv/b", "dense/d"}),
    (0.070, 0.020, {"conv/e", "dense/f"}),
    (-0.020, 0.012, {"conv/g", "dense/h"}),
    (0.050, 0.008, {"conv/i", "dense/c"}),
]


def _fixture_effects():
    return [
        Effect(f"p{i}", d, d - 2.5 * se, d + 2.5 * se, 5, M, se=se, runs=frozenset(r))
        for i, (d, se, r) in enumerate(POOL_FIXTURE)
    ]


def test_pooled_effect_is_statsmodels_random_effects_over_distinct_points():
    pool = pooled(_fixture_effects())
    assert pool.points == 4 and pool.shared == 1  # the point reusing run dense/c is counted once
    d = np.array([p[0] for p in POOL_FIXTURE[:4]])
    var = np.array([p[1] for p in POOL_FIXTURE[:4]]) ** 2
    res = combine_effects(d, var, method_re="dl", use_t=True)
    low, high = res.conf_int(alpha=0.05, use_t=True)[3]
    assert abs(pool.effect.diff - res.mean_effect_re) < 1e-9
    assert abs(pool.effect.low - low) < 1e-9 and abs(pool.effect.high - high) < 1e-9
    # the same numbers by the textbook formulas: DerSimonian-Laird tau^2, then the HKSJ t interval
    w = 1 / var
    q = (w * (d - (w * d).sum() / w.sum()) ** 2).sum()
    tau2 = max(0.0, (q - 3) / (w.sum() - (w**2).sum() / w.sum()))
    wr = 1 / (var + tau2)
    mu = (wr * d).sum() / wr.sum()
    half = stats.t.ppf(0.975, 3) * np.sqrt((wr * (d - mu) ** 2).sum() / (3 * wr.sum()))
    assert pool.effect.diff == pytest.approx(mu, abs=1e-12) and pool.tau2 == pytest.approx(tau2, abs=1e-12)
    assert pool.effect.low == pytest.approx(mu - half, abs=1e-12) and pool.effect.high == pytest.approx(mu + half, abs=1e-12)
    assert "4 distinct points" in pool.text() and "1 points left out" in pool.text() and "n=" not in pool.text()


def test_pooled_effect_flags_disagreement_and_never_decides():
    agree = pooled([_effect(0.05, 0.01), _effect(0.05, 0.02)])
    assert agree.effect.diff == pytest.approx(0.05) and not agree.heterogeneous and agree.tau2 == 0  # truncated at 0
    same = pooled([_effect(0.05, 0.01), _effect(0.05, 0.01)])
    assert same.i2 == 0 and same.tau2 == 0 and same.effect.diff == pytest.approx(0.05)  # Q = 0: no spread beyond the CIs
    disagree = pooled([_effect(0.10, 0.01), _effect(-0.10, 0.01)])
    assert disagree.heterogeneous and disagree.i2 > 0.9 and "disagree" in disagree.text()
    # one point clear above, one straddling: the points decide, whatever the pool says
    effects = [_effect(0.03, 0.01), _effect(-0.02, 0.04)]
    assert pooled(effects).effect.outcome != "above" and four_outcomes(effects) == SUPPORTED
    assert pooled([_effect(0.05, 0.01)]) is None  # one point: nothing to pool


def test_paired_replicas_get_a_paired_interval_and_others_welch():
    seeds = [0, 1, 2, 3, 4]
    base = np.array([0.80, 0.86, 0.90, 0.83, 0.95])  # the seed moves both runs alike
    a = pd.Series(base, index=pd.MultiIndex.from_product([["perm/unpermuted"], seeds], names=["run_key", "seed"]))
    b = pd.Series(
        base - 0.03 + np.array([0.002, -0.001, 0.0, 0.001, -0.002]),
        index=pd.MultiIndex.from_product([["perm/permuted"], seeds], names=["run_key", "seed"]),
    )
    welch_ = difference("loss", a, b, M)
    paired_ = difference("loss", a, b, M, pair=True)
    assert welch_.method == "Welch" and welch_.outcome == "straddles"
    assert paired_.method == "paired t" and paired_.outcome == "above" and "paired t" in paired_.text()
    assert paired_.diff == pytest.approx(welch_.diff) and paired_.runs == {"perm/unpermuted", "perm/permuted"}


# -- synthetic trees -------------------------------------------------------------------
def _config(family="conv", dataset="mnist1d", **extra) -> dict:
    return {
        "seed": 0,
        "seeds": 4,
        "tag": extra.pop("tag", ""),
        "model": {
            "name": "lattice",
            "family": family,
            "widths": list(extra.pop("widths", (8, 8, 8))),
            "kernel_sizes": list(extra.pop("kernel", (5, 3, 3))),
            "strides": extra.pop("strides", 2),
            "padding": extra.pop("padding", "SAME"),
            "pooling": extra.pop("pooling", "none"),
            "head": extra.pop("head", "flatten"),
        },
        "data": {"name": dataset, "n_per_class": extra.pop("n_per_class", 0), "permute_pixels": extra.pop("permute", False)},
        "train": {"augment_shift": 0, "embed_at_epoch": extra.pop("embed_at", 0), "epochs": 10, "batch_size": 100},
        "optimizer": {"learning_rate": 0.01, "learning_rates": [0.01]},
        "probes": {"track": []},
        **extra,
    }


class Tree:
    """Writes sweeps of runs whose per-seed accuracies are ``mean + small noise`` (each tree
    its own seeded generator: a test's numbers do not depend on which tests ran before it)."""

    def __init__(self, root: Path, seed: int = 1):
        self.root, self.index, self.rng = root, {}, np.random.default_rng(seed)

    def run(self, study, config, mean, *, seeds=4, probes=None, params=1000, diverged=(), test_curve=None, noise=0.003, gain=0.0):
        rid = f"run{len(self.index.setdefault(study, {}))}"
        self.index[study][rid] = {"status": "done"}
        accs = np.clip(mean + self.rng.normal(0, noise, seeds), 0, 1)
        replicas = [
            {
                "seed": s,
                "learning_rate": 0.01,
                "test_accuracy": float(0.1 if s in diverged else a),
                "val_accuracy": float(a),
                "diverged": s in diverged,
                "val_accuracy_gain_last_fifth": gain,  # > 0.005: still climbing at the end (unconverged)
            }
            for s, a in enumerate(accs)
        ]
        curve = [
            {"step": 10 * e, "split": "test", "epoch": e, "replica": r, "seed": r, "accuracy": acc}
            for e, acc in (test_curve or {}).items()
            for r in range(seeds)
        ]
        sweep = self.root / study
        write_run(
            sweep / "runs" / rid,
            {**config, "seeds": seeds},
            done_summary(replicas, num_params=params),
            probes=probes(seeds) if probes else None,
            metrics=curve,
        )
        write_sweep_index(sweep, f"x/{study}.py:quick", self.index[study])
        return self


def _claims(root):
    return {c.id: c for c in evaluate_claims(load_results([root]))}


def _weight_sharing(tree, gaps: dict[str, float], lc=0.75):
    for dataset, gap in gaps.items():
        for family, acc in (("conv", lc + gap), ("locally_connected", lc), ("dense", lc - 0.05)):
            tree.run("weight_sharing", _config(family, dataset, tag="matched_shape"), acc)


def test_c1_per_data_set_and_overall(tmp_path):
    _weight_sharing(Tree(tmp_path), {"mnist1d": 0.08, "fashion_mnist": 0.05, "tfds:cifar10": -0.06})
    c1 = _claims(tmp_path)["C1"]
    assert c1.per_dataset == {"fashion_mnist": SUPPORTED, "mnist1d": SUPPORTED, "tfds:cifar10": NOT_SUPPORTED}
    assert c1.verdict == DEPENDS and c1.pool.heterogeneous


def test_c1_inconclusive_when_seeds_cannot_tell(tmp_path):
    tree = Tree(tmp_path)
    for family, acc in (("conv", 0.76), ("locally_connected", 0.75)):
        tree.run("weight_sharing", _config(family, tag="matched_shape"), acc, noise=0.03)
    assert _claims(tmp_path)["C1"].verdict == INCONCLUSIVE


def test_a_diverged_replica_is_left_out_and_counted(tmp_path):
    tree = Tree(tmp_path)
    _weight_sharing(tree, {"mnist1d": 0.08})
    tree.run("weight_sharing", _config("conv", "fashion_mnist", tag="matched_shape"), 0.85, diverged=(0,))
    tree.run("weight_sharing", _config("locally_connected", "fashion_mnist", tag="matched_shape"), 0.80)
    c1 = _claims(tmp_path)["C1"]
    assert c1.verdict == SUPPORTED  # the diverged seed's 10% would have made it depend
    out = report_only([tmp_path], tmp_path / "report")  # the report's text: no figure needed
    assert "1 replicas diverged" in out.report_md.read_text()


def _shift_probe(accuracies, consistency, spread=0.5):
    rng = np.random.default_rng(2)

    def probes(seeds):
        return {
            "shift": {
                "magnitudes": [0, 1, 2],
                "accuracy_circular": [[a + rng.normal(0, 0.003) for a in accuracies] for _ in range(seeds)],
            },
            "consistency": {"consistency_circular": [min(100.0, consistency + rng.normal(0, spread)) for _ in range(seeds)]},
        }

    return probes


def test_c5_is_decided_by_pooling_against_plain_striding_relative_to_clean_accuracy(tmp_path):
    for max_curve, expected in (([0.9, 0.88, 0.86], SUPPORTED), ([0.9, 0.7, 0.5], NOT_SUPPORTED)):
        root = tmp_path / str(max_curve[-1])
        tree = Tree(root)
        tree.run("pooling", _config(pooling="none"), 0.9, probes=_shift_probe([0.9, 0.8, 0.7], 60))
        tree.run("pooling", _config(pooling="stride"), 0.9, probes=_shift_probe([0.9, 0.8, 0.7], 60))
        tree.run("pooling", _config(pooling="max"), 0.9, probes=_shift_probe(max_curve, 70))
        # Global pooling: invariant, but at half the clean accuracy; shown, never deciding alone.
        tree.run("pooling", _config(pooling="none", head="global_avg"), 0.5, probes=_shift_probe([0.5, 0.5, 0.5], 100))
        c5 = _claims(root)["C5"]
        assert c5.verdict == expected, [e.text() for e in c5.deciding]
        assert [e.label for e in c5.deciding] == [
            "mnist1d: accuracy under shifts minus clean accuracy, max - plain strided downsampling"
        ]
        assert any("unshifted accuracy, global_avg - no pooling" in e.label and e.outcome == "below" for e in c5.shown)


def test_c6_is_decided_on_the_interaction(tmp_path):
    for dense_drop, expected in ((0.0, SUPPORTED), (0.06, SUPPORTED), (0.3, NOT_SUPPORTED)):
        root = tmp_path / str(dense_drop)
        tree = Tree(root)
        for permute in (False, True):
            tree.run("permuted_pixels", _config("conv", permute=permute), 0.9 - 0.3 * permute, noise=0.001)
            tree.run("permuted_pixels", _config("dense", permute=permute), 0.66 - dense_drop * permute, noise=0.001)
        c6 = _claims(root)["C6"]
        assert c6.verdict == expected, (dense_drop, c6.verdict)
        assert any("permuted pixels: conv - dense" in e.label for e in c6.shown)
        assert "interaction" in c6.deciding[0].label and c6.deciding[0].method == "Welch of per-seed differences"


def test_c7_compares_with_the_conv_at_the_switch_and_trained_to_the_end(tmp_path):
    """Above the conv at the switch but below the conv trained to the end: the two references
    disagree, so it depends. The conv at the switch is the eFCN run's own curve where it has one."""
    for final, expected in ((0.80, DEPENDS), (0.95, SUPPORTED), (0.60, NOT_SUPPORTED)):
        root = tmp_path / str(final)
        tree = Tree(root)
        tree.run("embedding", _config("conv"), 0.9, test_curve={2: 0.50, 5: 0.50, 10: 0.9})
        tree.run("embedding", _config("dense"), 0.6)
        for t in (2, 5):
            tree.run("embedding", _config("conv", embed_at=t), final, test_curve={t: 0.70})
        c7 = _claims(root)["C7"]
        assert c7.verdict == expected, (final, [e.text() for e in c7.deciding])
        at_switch = [e for e in c7.deciding if "conv at the switch" in e.label]
        assert len(at_switch) == 2 and all(e.diff == pytest.approx(final - 0.70, abs=0.01) for e in at_switch)
        assert sum("conv trained to the end" in e.label for e in c7.deciding) == 2


def test_c3_is_judged_against_invariance_component_by_component(tmp_path):
    """The stride-1 circular global-average conv, at 100% consistency on every seed, passes the
    invariance check; strided nets (62%, 90%) fail it: the claim depends on the components."""
    tree = Tree(tmp_path)
    tree.run(
        "translation",
        _config("conv", strides=1, head="global_avg", padding="CIRCULAR"),
        0.9,
        probes=_shift_probe([0.9] * 3, 100, 0),
    )
    for head, consistency in (("flatten", 62), ("global_avg", 90)):
        tree.run("translation", _config("conv", head=head, padding="CIRCULAR"), 0.9, probes=_shift_probe([0.9] * 3, consistency))
        tree.run("translation", _config("dense", head=head, padding="CIRCULAR"), 0.7, probes=_shift_probe([0.6] * 3, 60))
    c3 = _claims(tmp_path)["C3"]
    outcomes = {e.label.split(": ")[0]: e.outcome for e in c3.deciding}
    assert outcomes == {
        "mnist1d, conv, stride 1, circular padding, global_avg head": "within",
        "mnist1d, conv, stride 2, circular padding, flatten head": "below",
        "mnist1d, conv, stride 2, circular padding, global_avg head": "below",
    }
    assert c3.verdict == DEPENDS
    shown = [e.label for e in c3.shown]
    assert any("stride 1 - 2" in s or "strides 1 - 2" in s for s in shown)  # one factor: the stride
    assert any("head flatten - global_avg" in s for s in shown)  # one factor: the head
    assert any("conv - dense" in s for s in shown)


def test_c4_is_judged_on_throughput_at_matched_flops_per_dataset_and_device(tmp_path):
    tree = Tree(tmp_path)

    def cost(eps, frac):
        return lambda seeds: {
            "cost": {
                "examples_per_s": [eps] * seeds,
                "fraction_of_peak": [frac] * seeds,
                "step_flops": [1e7] * seeds,
                "device": "cpu",
            }
        }

    for dataset in ("mnist1d", "fashion_mnist"):
        tree.run("compute", _config("conv", dataset, tag="matched_shape"), 0.9, probes=cost(1e5, 0.05))
        tree.run("compute", _config("dense", dataset, tag="matched_shape"), 0.7, probes=cost(5e4, 0.3))
        tree.run("compute", _config("dense", dataset, tag="matched_flops", widths=(3, 3, 3)), 0.7, probes=cost(2e5, 0.1))
    c4 = _claims(tmp_path)["C4"]
    assert c4.verdict == NOT_SUPPORTED  # the dense net doing conv's FLOPs trains 2x the examples/s
    assert sum("matched_flops" in n for n in c4.notes) == 2


def test_every_profile_layout_reports_without_crashing(tmp_path):
    """Three data sets; the last lacks the pooling and embedding studies; one point has one seed."""
    tree = Tree(tmp_path)
    _weight_sharing(tree, {d: 0.05 for d in DATASETS})
    tree.run("weight_sharing", _config("conv", "mnist1d", widths=(4, 4, 4), tag="matched_shape"), 0.8, seeds=1)
    tree.run("weight_sharing", _config("locally_connected", "mnist1d", widths=(4, 4, 4), tag="matched_shape"), 0.7, seeds=1)
    for dataset in DATASETS:
        for permute in (False, True):
            for family in ("conv", "locally_connected", "full_kernel_conv", "dense"):
                tree.run("permuted_pixels", _config(family, dataset, permute=permute), 0.8 - 0.2 * permute * (family != "dense"))
        for family in ("conv", "full_kernel_conv", "locally_connected", "dense"):
            tree.run(
                "compute",
                _config(family, dataset, tag="matched_shape"),
                0.8,
                probes=lambda s: {
                    "cost": {"examples_per_s": [1e4] * s, "fraction_of_peak": [0.1] * s, "step_flops": [1e6] * s, "device": "cpu"}
                },
            )
    for dataset in DATASETS[:2]:
        tree.run("pooling", _config(dataset=dataset), 0.9, probes=_shift_probe([0.9, 0.8, 0.7], 60))
        tree.run("pooling", _config(dataset=dataset, pooling="max"), 0.9, probes=_shift_probe([0.9, 0.85, 0.8], 70))
        tree.run("embedding", _config("conv", dataset), 0.9, test_curve={2: 0.7})
        tree.run("embedding", _config("conv", dataset, embed_at=2), 0.8)
    out = report_only([tmp_path], tmp_path / "report", build_all=True)  # every figure built on this layout, none saved
    assert "F1_accuracy_vs_params" in out.built and "F8_permuted_pixels" in out.built
    claims = {c.id: c for c in out.claims}
    assert set(claims["C1"].per_dataset) == set(DATASETS)
    assert claims["C1"].verdict == SUPPORTED  # the single-seed point (n=1) does not decide
    assert any(e.outcome == NO_CI for e in claims["C1"].deciding)
    assert claims["C6"].verdict == SUPPORTED and set(claims["C6"].per_dataset) == set(DATASETS)
    md = out.report_md.read_text()
    assert "distinct points" in md and "n=1" in md and "inconclusive (CIs straddle the margin)" in md
    # Audit: every CI was called Student-t; each now says how it was made.
    assert "Welch interval" in md and "paired t interval" in md and "Hartung-Knapp-Sidik-Jonkman" in md
    assert ", Welch;" in md and ", paired t;" in md  # on the effects themselves


def test_figures_and_claims_count_the_same_replicas(tmp_path):
    """A diverged replica (test accuracy 10%) is out of the claim and out of F8's bar alike;
    an unconverged run is in neither."""
    tree = Tree(tmp_path)
    for permute in (False, True):
        tree.run("permuted_pixels", _config("conv", permute=permute), 0.9 - 0.3 * permute, diverged=() if permute else (0,))
        tree.run("permuted_pixels", _config("dense", permute=permute), 0.66)
    tree.run("permuted_pixels", _config("locally_connected"), 0.8, gain=0.05)  # still climbing by 5 points
    results = load_results([tmp_path])
    counted = live(results.study("permuted_pixels"))
    assert len(counted) == 4 * 4 - 1 and "locally_connected" not in set(counted["family"])
    fig = FIGURES.get("F8_permuted_pixels")(results)
    conv = counted[(counted["family"] == "conv") & ~counted["permute_pixels"].astype(bool)]["test_accuracy"]
    assert fig.axes[0].patches[0].get_height() == pytest.approx(100 * conv.mean())  # the first bar: conv, original pixels
    plt.close(fig)
    c6 = _claims(tmp_path)["C6"]
    loss = next(e for e in c6.deciding + c6.shown if "conv accuracy lost" in e.label)
    assert loss.n == 3
    assert not any("locally_connected" in e.label for e in c6.deciding + c6.shown)


def test_c5_keeps_a_run_with_one_diverged_replica(tmp_path):
    """Audit: the shift probe still held the diverged replica's row, the filter had dropped
    it, the shapes disagreed, and the whole run's accuracy under shifts became NaN."""
    tree = Tree(tmp_path)
    tree.run("pooling", _config(pooling="stride"), 0.9, probes=_shift_probe([0.9, 0.8, 0.7], 60))
    tree.run("pooling", _config(pooling="max"), 0.9, probes=_shift_probe([0.9, 0.88, 0.86], 70), diverged=(1,))
    c5 = _claims(tmp_path)["C5"]
    under_shifts = next(e for e in c5.deciding if "max - plain strided downsampling" in e.label)
    assert under_shifts.n == 3 and under_shifts.outcome == "above"


def test_c1_frontier_gives_the_parameters_each_family_needs_and_every_data_size_decides(tmp_path):
    tree = Tree(tmp_path)
    for i, w in enumerate((2, 4, 8, 16, 32)):  # conv: 70-86% on 100-1600 parameters; locally connected: 60-76% on 8x
        tree.run(
            "weight_sharing", _config("conv", widths=(w,) * 3, tag="matched_shape"), 0.70 + 0.04 * i, params=100 * 2**i, noise=0
        )
        tree.run(
            "weight_sharing",
            _config("locally_connected", widths=(w,) * 3, tag="matched_shape"),
            0.60 + 0.04 * i,
            params=800 * 2**i,
            noise=0,
        )
    for n, gap in ((4, 0.0), (100, 0.15)):
        tree.run("sample_efficiency", _config("conv", n_per_class=n), 0.5 + gap)
        tree.run("sample_efficiency", _config("locally_connected", n_per_class=n), 0.5)
    c1 = _claims(tmp_path)["C1"]
    lc_best = next(n for n in c1.notes if "locally_connected's best" in n)
    # locally connected's best, 76% at 12,800 parameters: conv reaches it halfway (log scale) from 200 to 400 parameters
    assert "76.0% at 12,800 parameters" in lc_best and "conv needs 283 (x0.022)" in lc_best
    assert "locally_connected never does (best 76.0%)" in next(n for n in c1.notes if "conv's best" in n)
    sizes = [e for e in c1.deciding if "examples per class" in e.label]
    assert [e.outcome for e in sizes] == ["within", "above"]  # the floor at 4 per class and the 15-point lead at 100
    assert c1.verdict == DEPENDS
