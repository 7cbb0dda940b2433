"""Analysis: every figure from a small synthetic results tree, verdicts that follow
the numbers, tolerance of unfinished runs, and one-line errors on empty input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis import analyze, load_results, tidy
from analysis.claims import evaluate_claims
from analysis.figures import FIGURES
from analysis.stats import diff_ci, mean_ci
from research.errors import UserError
from research.rundir import RunDir
from tests.helpers import SYNTHETIC_PROVENANCE, done_summary, report_only, write_run, write_sweep_index

SEEDS = 3
PROVENANCE = {**SYNTHETIC_PROVENANCE, "dirty": True}
RNG = np.random.default_rng(0)


def _config(family="conv", dataset="mnist1d", widths=(4, 4, 4), kernel=(5, 3, 3), **extra) -> dict:
    config = {
        "seed": 0,
        "seeds": SEEDS,
        "tag": extra.pop("tag", ""),
        "model": {
            "name": "lattice",
            "family": family,
            "widths": list(widths),
            "kernel_sizes": list(kernel),
            "strides": 2,
            "padding": extra.pop("padding", "SAME"),
            "pooling": extra.pop("pooling", "none"),
            "head": extra.pop("head", "flatten"),
        },
        "data": {
            "name": dataset,
            "n_per_class": extra.pop("n_per_class", 0),
            "permute_pixels": extra.pop("permute", False),
            "canvas_size": extra.pop("canvas", 0),
        },
        "train": {
            "augment_shift": extra.pop("augment", 0),
            "embed_at_epoch": extra.pop("embed_at", 0),
            "epochs": 20,
            "batch_size": 100,
        },
        "optimizer": {"learning_rate": 0.01},
        "probes": {"track": list(extra.pop("track", []))},
    }
    assert not extra, extra
    return config


def _write_run(
    sweep: Path,
    rid: str,
    config: dict,
    accuracy: float,
    params: int,
    probes: dict | None = None,
    curves: bool = True,
    status: str = "done",
    rates: tuple[float, ...] = (0.01, 0.003),
) -> None:
    """A run whose learning-rate grid is ``rates``: the first rate reaches ``accuracy``
    (val and test), each later one 5 points less."""
    config["optimizer"]["learning_rates"] = list(rates)
    summary = None
    if status == "done":
        replicas = []
        for i, rate in enumerate(rates):
            for s, a in enumerate(np.clip(accuracy - 0.05 * i + RNG.normal(0, 0.005, SEEDS), 0, 1)):
                replicas.append(
                    {
                        "seed": s,
                        "learning_rate": rate,
                        "test_accuracy": float(a),
                        "test_loss": 1 - float(a),
                        "val_accuracy": float(a) + 0.01,
                        "train_accuracy": 1.0,
                        "val_accuracy_gain_last_fifth": 0.0,
                        "diverged": False,
                    }
                )
        train_examples = 10 * config["data"]["n_per_class"] or 4000
        summary = done_summary(replicas, num_params=params, train_examples=train_examples, wall_time_s=1.0)
    lines = []
    for step in (10, 20, 30) if curves else ():
        for r in range(SEEDS):
            curve = {"step": step, "replica": r, "seed": r, "loss": 2.0 / step, "accuracy": accuracy * step / 30}
            lines += [{**curve, "split": "train"}, {**curve, "split": "test"}]
            if config["probes"]["track"]:
                lines.append(
                    {
                        "step": step,
                        "split": "track",
                        "replica": r,
                        "seed": r,
                        "locality_index": 0.2 + step / 100,
                        "locality_uniform": 0.2,
                    }
                )
    write_run(sweep / "runs" / rid, config, summary, probes=probes, metrics=lines, provenance=PROVENANCE)


def _sweep(root: Path, study: str, runs: list[tuple]) -> None:
    sweep = root / study
    for i, (config, accuracy, params, *rest) in enumerate(runs):
        _write_run(sweep, f"run{i}", config, accuracy, params, *rest)
    write_sweep_index(sweep, f"/x/experiments/{study}.py:quick", {f"run{i}": {"status": "done"} for i in range(len(runs))})


def _shift_probes(accuracy: float, invariant: bool, equivariant: bool) -> dict:
    curve = [[accuracy] * 5 if invariant else [accuracy - 0.05 * m for m in range(5)] for _ in range(SEEDS)]
    return {
        "shift": {"magnitudes": list(range(5)), "accuracy_circular": curve, "accuracy_zero": curve},
        "consistency": {"consistency_circular": [100.0 if invariant else 60.0] * SEEDS, "consistency_zero": [99.0] * SEEDS},
        "one_pixel": {"p_top1_change_circular": [0.0 if invariant else 0.2] * SEEDS},
        "equivariance": {"error": [[0.0, 0.0] if equivariant else [1.2, 1.3]] * SEEDS, "strides": [[2], [4]], "layers": [0, 1]},
    }


# (family, optimizer, l1, accuracy, locality index): the learned_locality study's arms
LEARNED_LOCALITY = [
    ("dense", "sgd", 0.0, 0.6, 0.3),
    ("dense", "adam", 0.0, 0.62, 0.32),
    ("dense", "beta_lasso", 1e-4, 0.7, 0.6),
    ("dense", "beta_lasso", 3e-4, 0.65, 0.7),
    ("locally_connected", "sgd", 0.0, 0.75, None),
    ("locally_connected", "beta_lasso", 1e-4, 0.76, None),
    ("conv", "sgd", 0.0, 0.85, None),
]


def _learned_locality_run(family: str, optimizer: str, l1: float, accuracy: float, index: float | None) -> tuple:
    """A run of the learned_locality study with its sparsity probe (weight maps: 4 units x 40 inputs)
    and, for dense, its locality probe."""
    config = _config(family)
    config["optimizer"].update(name=optimizer, l1=l1)
    maps = RNG.random((SEEDS, 4, 40)) * (np.abs(np.arange(40) - 20) < 4 if index and index > 0.5 else 1)
    probes = {"sparsity": {"nonzero_first_layer": [0.2 if l1 else 1.0] * SEEDS, "weight_maps": maps.tolist()}}
    if index is not None:
        probes["locality"] = {"locality_index": list(index + RNG.normal(0, 0.01, SEEDS)), "shuffled": [0.3] * SEEDS}
    return config, accuracy, 1000, probes


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    fams = ["conv", "locally_connected", "dense"]
    fams_kernel = [("conv", 0.88), ("locally_connected", 0.88), ("dense", 0.6)]
    _sweep(
        root,
        "weight_sharing",
        [
            (_config(f, widths=(w,) * 3), acc + 0.01 * w, p * w)
            for f, acc, p in zip(fams, (0.85, 0.75, 0.65), (100, 1000, 10000))
            for w in (4, 16)
        ],
    )
    _sweep(
        root,
        "sample_efficiency",
        [(_config(f, n_per_class=n), acc * (1 - 1 / n), 1000) for f, acc in zip(fams, (0.9, 0.8, 0.7)) for n in (4, 40, 400)],
    )
    _sweep(
        root,
        "locality",
        [
            (_config(f, kernel=(k, 3, 3)), acc - k / 200, 1000)
            for f, acc in (("conv", 0.88), ("locally_connected", 0.78))
            for k in (3, 9, 21)
        ]
        + [(_config("full_kernel_conv"), 0.7, 500), (_config("dense", track=["locality"]), 0.66, 9000)],
    )
    _sweep(
        root,
        "permuted_pixels",
        [
            (_config(f, permute=p), acc - (0.3 if p and f == "conv" else 0.0), 1000)
            for f, acc in (("conv", 0.9), ("full_kernel_conv", 0.7), ("locally_connected", 0.75), ("dense", 0.66))
            for p in (False, True)
        ],
    )
    _sweep(
        root,
        "pooling",
        [
            (_config("conv", pooling=pool, head=head), 0.9, 1000, _shift_probes(0.9, pool != "none" or head != "flatten", True))
            for pool, head in (("none", "flatten"), ("max", "flatten"), ("avg", "flatten"), ("none", "global_avg"))
        ],
    )
    _sweep(
        root,
        "translation",
        [
            (
                _config(f, head=head, padding=pad, augment=aug),
                0.85,
                1000,
                _shift_probes(0.85, f == "conv" and head != "flatten", f == "conv" and pad == "CIRCULAR"),
            )
            for f in fams
            for head, pad in (("flatten", "SAME"), ("global_avg", "CIRCULAR"))
            for aug in (0, 4)
        ],
    )
    position = {"axes": [[0, 4, 8], [0, 4, 8]], "region": 4, "corners": [], "accuracy_map": None}
    _sweep(
        root,
        "position",
        [
            (
                _config(f, head=head, canvas=56),
                0.8,
                1000,
                {
                    "position": {
                        **position,
                        "accuracy_map": [[[0.8, 0.8, inside], [0.8, 0.8, inside], [inside] * 3]] * SEEDS,
                        "accuracy_in_region": [0.8] * SEEDS,
                        "accuracy_off_region": [inside] * SEEDS,
                    }
                },
            )
            for f, head, inside in (("conv", "global_avg", 0.78), ("dense", "flatten", 0.1))
        ],
    )
    cost = lambda frac, eps: {"cost": {"examples_per_s": [eps], "fraction_of_peak": [frac], "step_flops": [1e7], "device": "cpu"}}  # noqa: E731
    _sweep(
        root,
        "compute",
        [
            (_config(f, tag=tag), 0.8, 1000, cost(frac, eps))
            for f, frac, eps in (
                ("conv", 0.05, 5e4),
                ("full_kernel_conv", 0.02, 1e4),
                ("locally_connected", 0.03, 2e4),
                ("dense", 0.3, 8e4),
            )
            for tag in ("matched_shape", "matched_flops")
        ],
    )
    _sweep(
        root,
        "embedding",
        [(_config("conv"), 0.88, 1000), (_config("dense"), 0.66, 9000)]
        + [(_config("conv", embed_at=t), 0.7 + t / 100, 9000) for t in (2, 5, 10)],
    )
    _sweep(
        root,
        "infinite_width",
        [
            (_config(f, head=head), acc, 0, None, False, "done", (0.01,))
            for f, acc in fams_kernel
            for head in ("flatten", "global_avg")
        ],
    )
    _sweep(root, "learned_locality", [_learned_locality_run(*arm) for arm in LEARNED_LOCALITY])
    _sweep(  # test error 2 n^-0.3 (conv) and 6 n^-0.4 (dense): dense's exponent the steeper
        root,
        "data_scaling",
        [
            (_config(f, n_per_class=n, augment=aug), 1 - a * (10 * n) ** -b, 1000)
            for f, a, b in (("conv", 2.0, 0.3), ("dense", 6.0, 0.4))
            for n in (100, 400, 1600)
            for aug in (0, 4)
        ],
    )
    # An unfinished run: shown, not crashing.
    _write_run(root / "weight_sharing", "unfinished", _config("dense", widths=(64,) * 3), 0.0, 0, status="running", curves=False)
    index = json.loads((root / "weight_sharing" / "sweep.json").read_text())
    index["runs"]["unfinished"] = {"status": "running"}
    for i in range(2):  # runs whose data set is not on this machine: recorded invalid, never launched
        index["runs"][f"cifar{i}"] = {
            "status": "invalid",
            "overrides": {"data.name": "tfds:cifar10"},
            "error": "TFDS data set 'cifar10' is not available offline",
        }
    write_sweep_index(root / "weight_sharing", index["study"], index["runs"])
    timing = {
        "profile": "quick",
        "launcher": "local",
        "seconds": {"weight_sharing": 60.0, "reference": 10.0, "total": 70.0},
        "invocations": 2,
    }
    (root / "timing.json").write_text(json.dumps(timing))
    return root


def test_every_figure_is_drawn_from_synthetic_results(results_dir, tmp_path):
    result = analyze([results_dir], tmp_path, progress=False)
    assert result.skipped == []
    assert sorted(result.figures) == FIGURES.names() and len(FIGURES.names()) == 15
    for name in FIGURES.names():
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000 and (tmp_path / f"{name}.pdf").exists()
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 13  # self-contained
    md = (tmp_path / "report.md").read_text()
    assert "## Learning rates chosen on validation" in md and "| 0.003, 0.01 | 0.01 (edge of grid) |" in md
    assert "the training subset (`data.subset_seed`)" in md  # which variance the CIs cover
    # It opens with what produced it: profile, commit (dirty), packages, machine, date, stage times.
    header = md.split("| claim |")[0]
    runs = len(list(results_dir.rglob("config.json")))  # runs that started (the invalid ones never did)
    assert f"- **code**: commit 0123456789ab (uncommitted changes) ({runs} runs)" in header
    assert "- **profile**: cvd reproduce --profile quick (launcher local)" in header
    assert "flax 0.12.0, jax 0.10.2" in header and "cpu backend, 1 x cpu, 2 CPU cores" in header
    assert "- **wall time**: 70 s in all over 2 invocations: weight_sharing 60 s, reference 10 s" in header
    assert "<th>code</th><td>commit 0123456789ab" in html
    # A data set that was not here is said, with the points each claim lost.
    assert (
        "**Data missing.** tfds:cifar10 was not found on this machine, so its points are missing: 2 runs of weight_sharing (C1)."
        in md
    )


def test_verdicts_follow_the_numbers(results_dir):
    """Claims on the synthetic tree (tests/test_verdicts.py constructs each outcome)."""
    claims = {c.id: c for c in evaluate_claims(load_results([results_dir]))}
    assert claims["C1"].verdict == "supported"  # conv beats locally connected everywhere
    assert claims["C4"].verdict == "not supported"  # dense at conv's FLOPs trains more examples/s
    assert claims["C6"].verdict == "supported"  # conv loses 30 points, dense nothing
    vocabulary = {"supported", "not supported", "depends", "inconclusive", "no data"}
    assert all(c.verdict in vocabulary and (c.deciding or c.shown or c.notes) for c in claims.values())


def test_learning_rate_is_chosen_on_validation_never_on_test(tmp_path):
    from analysis.report import unconverged

    config = _config("conv")
    _write_run(tmp_path / "s", "run", config, 0.8, 100, curves=False, rates=(0.001, 0.01, 0.1))
    write_sweep_index(tmp_path / "s", "s.py:quick", {"run": {}})
    run = RunDir(tmp_path / "s" / "runs" / "run")
    summary = run.summary()
    for replica in summary["replicas"]:  # validation prefers 0.01, test would prefer 0.1
        replica["val_accuracy"] = {0.001: 0.5, 0.01: 0.9, 0.1: 0.7}[replica["learning_rate"]]
        replica["test_accuracy"] = {0.001: 0.5, 0.01: 0.6, 0.1: 0.95}[replica["learning_rate"]]
        replica["val_accuracy_gain_last_fifth"] = 0.02  # still climbing: 2 points
    summary["replicas"][-1]["diverged"] = True
    run.write_summary(summary)
    results = load_results([tmp_path])
    assert set(results.runs["learning_rate"]) == {0.01} and len(results.runs) == SEEDS
    assert not results.runs["lr_at_edge"].any() and len(results.grid) == 3 * SEEDS
    assert results.runs["test_accuracy"].mean() == pytest.approx(0.6)
    assert unconverged(results.runs).all()


def _rerate(tmp_path, val: dict, diverged=lambda replica: False) -> RunDir:
    """A run of three rates whose replicas' validation accuracy is ``val[(rate, seed)]`` (or ``val[rate]``)."""
    _write_run(tmp_path / "s", "run", _config("conv"), 0.8, 100, curves=False, rates=(0.001, 0.01, 0.1))
    write_sweep_index(tmp_path / "s", "s.py:quick", {"run": {}})
    run = RunDir(tmp_path / "s" / "runs" / "run")
    summary = run.summary()
    for replica in summary["replicas"]:
        replica["val_accuracy"] = val.get((replica["learning_rate"], replica["seed"]), val.get(replica["learning_rate"]))
        replica["diverged"] = diverged(replica)
    run.write_summary(summary)
    return run


def test_a_diverged_seed_counts_against_its_learning_rate(tmp_path):
    """Audit: the rate where 2 of 3 seeds diverged and the survivor reached 0.99 beat a rate with mean 0.85."""
    run = _rerate(tmp_path, {0.001: 0.5, 0.01: 0.85, 0.1: 0.99}, diverged=lambda r: r["learning_rate"] == 0.1 and r["seed"] > 0)
    assert set(load_results([tmp_path]).runs["learning_rate"]) == {0.01}
    assert run.summary()["replicas"][-1]["diverged"]


def test_a_run_of_several_rates_without_validation_keeps_none_as_seeds(tmp_path):
    """Audit: without validation numbers every rate's replicas were kept, as if they were seeds."""
    _rerate(tmp_path, {0.001: None, 0.01: None, 0.1: None})
    results = load_results([tmp_path])
    assert results.runs.empty and len(results.grid) == 3 * SEEDS
    report = report_only([tmp_path], tmp_path / "report").report_md.read_text()
    assert "1 runs of several learning rates without validation numbers are left out" in report


def test_run_level_lists_are_not_spread_over_replicas(tmp_path):
    probes = {"shift": {"run_level": ["magnitudes"], "magnitudes": [0, 1, 2], "accuracy_circular": [[0.9, 0.8, 0.7]] * SEEDS}}
    _write_run(tmp_path / "s", "run", _config("conv"), 0.8, 100, probes=probes, curves=False, rates=(0.01,))
    write_sweep_index(tmp_path / "s", "s.py:quick", {"run": {}})
    runs = load_results([tmp_path]).runs
    assert len(runs) == SEEDS == 3  # as many replicas as shift sizes: the case that used to be misread
    assert "probe.shift.magnitudes" not in runs and "probe.shift.run_level" not in runs


def test_failed_or_running_runs_are_rows_not_crashes(results_dir):
    runs = load_results([results_dir]).runs
    unfinished = runs[runs["run"] == "unfinished"]
    assert len(unfinished) == 1 and unfinished["status"].iloc[0] == "pending" and np.isnan(unfinished["test_accuracy"].iloc[0])
    long = tidy(runs)
    assert {"metric", "value"} <= set(long.columns) and (long["metric"] == "test_accuracy").sum() == runs[
        "test_accuracy"
    ].notna().sum()


def test_confidence_intervals():
    mean, low, high, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and low == pytest.approx(2 - 4.303 * 1 / np.sqrt(3), rel=1e-3) and high == pytest.approx(4 - low)
    assert mean_ci([5.0])[1:3] == (5.0, 5.0)
    diff, low, high = diff_ci([1.0, 1.1, 0.9], [0.0, 0.1, -0.1])
    assert diff == pytest.approx(1.0) and low > 0.7 and high < 1.3


def test_analyze_on_empty_or_unrelated_directories_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no runs found"):
        analyze([tmp_path], progress=False)
    with pytest.raises(UserError, match="is not a directory"):
        analyze([tmp_path / "missing"], progress=False)
