"""Verdict rules: four outcomes from constructed effects, and every claim on synthetic
result trees with three data sets (one missing a study, a diverged replica, a
single-seed point), for effects built to be supported, not supported, depending
on the point, or inconclusive. No profile's layout may crash the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis import load_results
from analysis.claims import evaluate_claims
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
    return Effect("point", diff, diff - half, diff + half, n, M)


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


def test_pooled_effect_is_inverse_variance_weighted_and_flags_disagreement():
    agree = pooled([_effect(0.05, 0.01), _effect(0.05, 0.02)])
    assert agree.effect.diff == pytest.approx(0.05) and not agree.heterogeneous
    assert agree.effect.high - agree.effect.low < 0.02  # narrower than either point
    disagree = pooled([_effect(0.10, 0.01), _effect(-0.10, 0.01)])
    assert disagree.heterogeneous and disagree.i2 > 0.9 and "disagree" in disagree.text()


# -- synthetic trees -------------------------------------------------------------------
RNG = np.random.default_rng(1)


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
            "strides": 2,
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
    """Writes sweeps of runs whose per-seed accuracies are ``mean + small noise``."""

    def __init__(self, root: Path):
        self.root, self.index = root, {}

    def run(self, study, config, mean, *, seeds=4, probes=None, params=1000, diverged=(), test_curve=None, noise=0.003):
        rid = f"run{len(self.index.setdefault(study, {}))}"
        self.index[study][rid] = {"status": "done"}
        accs = np.clip(mean + RNG.normal(0, noise, seeds), 0, 1)
        replicas = [
            {
                "seed": s,
                "learning_rate": 0.01,
                "test_accuracy": float(0.1 if s in diverged else a),
                "val_accuracy": float(a),
                "diverged": s in diverged,
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


def _shift_probe(accuracies, consistency):
    def probes(seeds):
        return {
            "shift": {
                "magnitudes": [0, 1, 2],
                "accuracy_circular": [[a + RNG.normal(0, 0.003) for a in accuracies] for _ in range(seeds)],
            },
            "consistency": {"consistency_circular": [consistency + RNG.normal(0, 0.5) for _ in range(seeds)]},
        }

    return probes


def test_c5_robustness_is_accuracy_under_shift_not_agreement(tmp_path):
    tree = Tree(tmp_path)
    # Global pooling: perfectly consistent, but wrong under shifts more often than no pooling.
    tree.run("pooling", _config(pooling="none"), 0.9, probes=_shift_probe([0.9, 0.8, 0.7], 60))
    tree.run("pooling", _config(pooling="none", head="global_avg"), 0.5, probes=_shift_probe([0.5, 0.5, 0.5], 100))
    c5 = _claims(tmp_path)["C5"]
    assert c5.verdict == NOT_SUPPORTED
    assert any("accuracy under shifts, global_avg - no pooling" in e.label for e in c5.deciding)


def test_c6_needs_an_equivalent_dense_control(tmp_path):
    for dense_drop, expected in ((0.0, SUPPORTED), (0.06, INCONCLUSIVE)):
        root = tmp_path / str(dense_drop)
        tree = Tree(root)
        for permute in (False, True):
            tree.run("permuted_pixels", _config("conv", permute=permute), 0.9 - 0.3 * permute)
            tree.run("permuted_pixels", _config("dense", permute=permute), 0.66 - dense_drop * permute)
        c6 = _claims(root)["C6"]
        assert c6.verdict == expected, (dense_drop, c6.verdict)
        assert any("permuted pixels: conv - dense" in e.label for e in c6.shown)


def test_c7_compares_with_the_conv_at_the_switch(tmp_path):
    for final, expected in ((0.80, SUPPORTED), (0.60, NOT_SUPPORTED)):
        root = tmp_path / str(final)
        tree = Tree(root)
        tree.run("embedding", _config("conv"), 0.9, test_curve={2: 0.70, 5: 0.75, 10: 0.9})
        tree.run("embedding", _config("dense"), 0.6)
        for t in (2, 5):
            tree.run("embedding", _config("conv", embed_at=t), final)
        c7 = _claims(root)["C7"]
        assert c7.verdict == expected, (final, [e.text() for e in c7.deciding])


def test_c3_compares_conv_with_dense_one_factor_at_a_time(tmp_path):
    tree = Tree(tmp_path)
    for head in ("flatten", "global_avg"):
        for padding in ("SAME", "CIRCULAR"):
            pooled_ = head != "flatten"
            tree.run(
                "translation",
                _config("conv", head=head, padding=padding),
                0.9,
                probes=_shift_probe([0.9] * 3, 95 if pooled_ else 62),
            )
            tree.run("translation", _config("dense", head=head, padding=padding), 0.7, probes=_shift_probe([0.6] * 3, 60))
    c3 = _claims(tmp_path)["C3"]
    assert len(c3.deciding) == 4 and c3.verdict == DEPENDS  # conv helps only with a global-pooling head
    assert any("global_avg - flatten head" in e.label for e in c3.shown)


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
    assert "pooled over" in md and "n=1" in md and "inconclusive (CIs straddle the margin)" in md
