"""The claims registry: every claim registered with its statement, figures and study;
rule text that follows THRESHOLDS; verdicts only from the decision rules."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import load_results
from analysis.claims import CLAIMS, THRESHOLDS, claim_order, evaluate_claims
from analysis.claims.c9_learned_locality import chosen_l1, gap_closed
from analysis.figures import FIGURES
from analysis.verdicts import (
    DEPENDS,
    INCONCLUSIVE,
    NO_DATA,
    NOT_SUPPORTED,
    SUPPORTED,
    Effect,
    conjunction,
    controlled,
    joint,
    ratio_outcome,
)
from tests.test_verdicts import Tree, _claims, _config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_every_claim_is_registered_with_its_statement_figures_and_study():
    assert sorted(CLAIMS) == [f"C{i}" for i in range(1, 10)]
    for claim_id, spec in CLAIMS.items():
        assert spec.id == claim_id and spec.statement.strip() and spec.rule_text().strip(), claim_id
        assert spec.figures and set(spec.figures) <= set(FIGURES.names()), (claim_id, spec.figures)
        assert (EXPERIMENTS / f"{spec.study}.py").exists(), (claim_id, spec.study)


def test_claims_are_evaluated_in_order_with_their_registration(tmp_path):
    Tree(tmp_path).run("weight_sharing", _config("conv"), 0.9)  # one run: nothing to compare
    claims = evaluate_claims(load_results([tmp_path]))
    assert [c.id for c in claims] == [f"C{i}" for i in range(1, 10)]
    assert sorted(["C10", "C2", "C1", "C9"], key=claim_order) == ["C1", "C2", "C9", "C10"]
    for c in claims:
        spec = CLAIMS[c.id]
        assert (c.statement, tuple(c.figures), c.study) == (spec.statement, spec.figures, spec.study)
        assert c.verdict == NO_DATA


@pytest.mark.parametrize(
    ("claim_id", "key", "value", "expected"),
    [
        ("C4", "throughput_ratio", 1.5, ">= 1.5x"),
        ("C4", "throughput_ratio", 2, "<= 1/2 "),
    ],
)
def test_rule_text_follows_the_thresholds(monkeypatch, claim_id, key, value, expected):
    before = CLAIMS[claim_id].rule_text()
    monkeypatch.setitem(THRESHOLDS, key, value)
    after = CLAIMS[claim_id].rule_text()
    assert after != before and expected in after


def test_only_claims_whose_rule_names_a_threshold_change_with_it(monkeypatch):
    before = {cid: spec.rule_text() for cid, spec in CLAIMS.items()}
    for key in THRESHOLDS:
        with monkeypatch.context() as m:
            m.setitem(THRESHOLDS, key, 123.0)
            for cid, spec in CLAIMS.items():
                uses = "{" + key in spec.rule
                assert (spec.rule_text() != before[cid]) == uses, (cid, key)
                assert "{" not in spec.rule_text()


def test_c6_has_no_control_band_a_judged_rule_states_its_margin(tmp_path, monkeypatch):
    """C6 with a dense net that loses 6 points and a conv that loses 30: decided on the interaction
    (+24 points), with no band for the dense net to sit in."""
    tree = Tree(tmp_path)
    for permute in (False, True):
        tree.run("permuted_pixels", _config("conv", permute=permute), 0.9 - 0.3 * permute)
        tree.run("permuted_pixels", _config("dense", permute=permute), 0.66 - 0.06 * permute)
    results = load_results([tmp_path])
    c6 = CLAIMS["C6"](results)
    assert c6.verdict == SUPPORTED and "interaction" in c6.rule and "band" not in " ".join(c6.notes)
    assert c6.deciding[0].diff == pytest.approx(0.24, abs=0.01)
    monkeypatch.setitem(THRESHOLDS, "accuracy_points", 30.0)
    assert CLAIMS["C6"](results).verdict == NOT_SUPPORTED  # 24 points inside a 30-point margin: no effect worth the name


def test_no_claim_sets_its_verdict_by_hand():
    for spec in CLAIMS.values():
        source = inspect.getsource(inspect.getmodule(spec.evaluate))
        assert ".verdict =" not in source and ".verdict=" not in source, spec.id


def test_ratio_and_control_rules():
    assert ratio_outcome([], 1.25) == NO_DATA
    assert ratio_outcome([1.3, 2.0], 1.25) == SUPPORTED
    assert ratio_outcome([0.5, 0.8], 1.25) == NOT_SUPPORTED
    assert ratio_outcome([2.0, 0.5], 1.25) == DEPENDS
    assert ratio_outcome([2.0, 1.0], 1.25) == INCONCLUSIVE
    within = Effect("control", 0.0, -0.005, 0.005, 4, 0.02)
    outside = Effect("control", 0.05, 0.03, 0.07, 4, 0.02)
    assert controlled(SUPPORTED, []) == SUPPORTED
    assert controlled(SUPPORTED, [within]) == SUPPORTED
    assert controlled(NOT_SUPPORTED, [within, outside]) == INCONCLUSIVE
    assert controlled(NO_DATA, [outside]) == NO_DATA


# -- C9: beta-LASSO dense nets against the same SGD ------------------------------------------
def _locality_probes(index: float, shuffled: float, nonzero: float):
    rng = np.random.default_rng(int(1000 * index + 7))

    def probes(seeds: int) -> dict:
        return {
            "locality": {
                "locality_index": list(index + rng.normal(0, 0.005, seeds)),
                "shuffled": list(shuffled + rng.normal(0, 0.005, seeds)),
            },
            "sparsity": {"nonzero_first_layer": [nonzero] * seeds, "nonzero_all": [nonzero] * seeds},
        }

    return probes


def _learned_locality(tmp_path, lasso_index: float, lasso_accuracy: float, noise: float = 0.003) -> dict:
    """A learned_locality tree: dense SGD (60%, index 0.30 = its shuffled baseline), dense Adam,
    dense beta-LASSO at two l1 (the smaller one better on validation), locally connected, conv."""
    tree = Tree(tmp_path)

    def run(family, optimizer, accuracy, l1=0.0, probes=None):
        config = _config(family, optimizer={"name": optimizer, "l1": l1, "learning_rate": 0.01, "learning_rates": [0.01]})
        tree.run("learned_locality", config, accuracy, probes=probes, noise=noise)

    run("dense", "sgd", 0.60, probes=_locality_probes(0.30, 0.30, 1.0))
    run("dense", "adam", 0.62, probes=_locality_probes(0.32, 0.30, 1.0))
    run("dense", "beta_lasso", lasso_accuracy, 1e-4, probes=_locality_probes(lasso_index, 0.30, 0.1))
    run("dense", "beta_lasso", lasso_accuracy - 0.2, 3e-4, probes=_locality_probes(0.9, 0.30, 0.02))
    run("locally_connected", "sgd", 0.75)
    run("locally_connected", "beta_lasso", 0.76, 1e-4)
    run("conv", "sgd", 0.85)
    return _claims(tmp_path)["C9"]


@pytest.mark.parametrize(
    ("lasso_index", "lasso_accuracy", "noise", "verdict"),
    [
        (0.60, 0.70, 0.003, SUPPORTED),  # local and more accurate
        (0.30, 0.60, 0.003, NOT_SUPPORTED),  # neither
        (0.60, 0.60, 0.003, DEPENDS),  # local, no accuracy gained
        (0.30, 0.70, 0.003, DEPENDS),  # more accurate, not local
        (0.60, 0.605, 0.05, INCONCLUSIVE),  # local, but the seeds cannot tell the accuracy
    ],
)
def test_c9_is_decided_on_locality_and_accuracy_against_the_sgd_control(tmp_path, lasso_index, lasso_accuracy, noise, verdict):
    c9 = _learned_locality(tmp_path, lasso_index, lasso_accuracy, noise)
    assert c9.verdict == verdict, [e.text() for e in c9.deciding]
    assert len(c9.deciding) == 3  # above the shuffled baseline, above the SGD net's index, accuracy gained
    # one accuracy point (one data set): no pooled line (a pool needs two points); with more, accuracy only, never mixed units
    assert c9.pool is None or c9.pool.effect.unit == "points"
    assert any("l1=0.0001 (chosen on validation)" in n for n in c9.notes)  # l1 chosen on validation
    assert any("SGD - Adam" in e.label for e in c9.shown)  # the optimizer's own effect: shown, not counted
    levels = "mnist1d: first-layer locality index: dense sgd 0.3"  # the levels, not only their differences
    assert any(n.startswith(levels) for n in c9.notes)


def test_c9_gap_closed_and_l1_chosen_on_validation_never_on_test():
    runs = pd.DataFrame(
        {"l1": [1e-4, 1e-4, 3e-4, 3e-4], "val_accuracy": [0.8, 0.8, 0.7, 0.7], "test_accuracy": [0.6, 0.6, 0.9, 0.9]}
    )
    assert set(chosen_l1(runs)["l1"]) == {1e-4}
    dense = {"sgd": pd.DataFrame({"test_accuracy": [0.6]}), "beta_lasso": pd.DataFrame({"test_accuracy": [0.7]})}
    assert gap_closed(dense, pd.Series([0.85])) == pytest.approx(0.4)


def test_two_effect_and_two_reference_rules():
    assert joint(SUPPORTED, SUPPORTED) == SUPPORTED and joint(NOT_SUPPORTED, NOT_SUPPORTED) == NOT_SUPPORTED
    assert joint(SUPPORTED, NOT_SUPPORTED) == DEPENDS and joint(SUPPORTED, INCONCLUSIVE) == INCONCLUSIVE
    assert joint(NO_DATA, NO_DATA) == NO_DATA and joint(SUPPORTED, NO_DATA) == INCONCLUSIVE
    assert conjunction(SUPPORTED, SUPPORTED) == SUPPORTED and conjunction(SUPPORTED, NOT_SUPPORTED) == NOT_SUPPORTED
    assert conjunction(SUPPORTED, INCONCLUSIVE) == INCONCLUSIVE and conjunction(NO_DATA) == NO_DATA
