"""The claims registry: every claim registered with its statement, figures and study;
rule text that follows THRESHOLDS; verdicts only from the decision rules."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from analysis import load_results
from analysis.claims import CLAIMS, THRESHOLDS, evaluate_claims
from analysis.figures import FIGURES
from analysis.verdicts import DEPENDS, INCONCLUSIVE, NO_DATA, NOT_SUPPORTED, SUPPORTED, Effect, controlled, ratio_outcome
from tests.test_verdicts import Tree, _config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def test_every_claim_is_registered_with_its_statement_figures_and_study():
    assert sorted(CLAIMS) == [f"C{i}" for i in range(1, 8)]
    for claim_id, spec in CLAIMS.items():
        assert spec.id == claim_id and spec.statement.strip() and spec.rule_text().strip(), claim_id
        assert spec.figures and set(spec.figures) <= set(FIGURES.names()), (claim_id, spec.figures)
        assert (EXPERIMENTS / f"{spec.study}.py").exists(), (claim_id, spec.study)


def test_claims_are_evaluated_in_order_with_their_registration(tmp_path):
    Tree(tmp_path).run("weight_sharing", _config("conv"), 0.9)  # one run: nothing to compare
    claims = evaluate_claims(load_results([tmp_path]))
    assert [c.id for c in claims] == sorted(CLAIMS)
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
