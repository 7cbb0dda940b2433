"""Data scaling (C8, F14): the power-law fits recover known exponents, the gap's slope is the
exponent difference exactly, C8's four outcomes on synthetic curves (decided scale-free, never
on the gap in points), and the study's data: one generated pool, a fixed test set."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import load_results
from analysis.claims import CLAIMS
from analysis.scaling import crossing, crossing_text, curve_band, exponent, fit_power_law, ratio_slopes, seed_fits
from analysis.verdicts import DEPENDS, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from tests.helpers import done_summary, report_only, write_run, write_sweep_index

SIZES = (1000, 2000, 4000, 8000, 16000)


def _curves(a: float, b: float, seeds: int = 5, noise: float = 0.0, rng=None) -> pd.DataFrame:
    """Per seed and size, ``a n^-b`` times log-normal noise of sd ``noise``."""
    rng = rng or np.random.default_rng(0)
    rows = [
        {"seed": s, "train_examples": n, "test_error": a * n**-b * np.exp(rng.normal(0, noise)) if noise else a * n**-b}
        for s in range(seeds)
        for n in SIZES
    ]
    return pd.DataFrame(rows)


def test_the_fit_recovers_an_exact_power_law():
    law = fit_power_law(SIZES, [3.0 * n**-0.45 for n in SIZES])
    assert law.b == pytest.approx(0.45) and law.a == pytest.approx(3.0) and law.r2 == pytest.approx(1.0)
    assert law(4000) == pytest.approx(3.0 * 4000**-0.45)


def test_the_exponents_ci_over_seeds_covers_the_true_exponent_at_its_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        e = exponent(_curves(2.0, 0.4, noise=0.05, rng=rng))
        covered += e.low <= 0.4 <= e.high
    assert 0.90 <= covered / 200 <= 0.99  # a 95% interval, 200 draws
    assert exponent(_curves(2.0, 0.4, noise=0.05, rng=rng)).n == 5


def test_a_zero_error_or_one_size_is_not_fitted():
    with pytest.raises(ValueError, match="two distinct sizes"):
        fit_power_law([1000, 1000], [0.1, 0.2])
    with pytest.raises(ValueError, match="> 0"):
        fit_power_law([1000, 2000], [0.1, 0.0])
    frame = _curves(1.0, 0.5)
    frame.loc[0, "test_error"] = 0.0  # seed 0 keeps 4 sizes
    assert seed_fits(frame)["sizes"].tolist() == [4, 5, 5, 5, 5]


def test_the_log_ratio_slope_is_exactly_the_exponent_difference_per_seed():
    rng = np.random.default_rng(2)
    dense, conv = _curves(5.0, 0.6, noise=0.1, rng=rng), _curves(1.0, 0.3, noise=0.1, rng=rng)
    slopes = ratio_slopes(dense, conv).slopes
    b_dense, b_conv = seed_fits(dense)["b"].to_numpy(), seed_fits(conv)["b"].to_numpy()
    np.testing.assert_allclose(slopes, b_conv - b_dense, atol=1e-12)


def test_the_fitted_curves_cross_where_the_ratio_reaches_one():
    # 10 n^-0.6 = 1 n^-0.35 at n^0.25 = 10: n = 10^4, 10000 / 16000 inside the range
    ratios = ratio_slopes(_curves(10.0, 0.6), _curves(1.0, 0.35))
    assert crossing(ratios) == pytest.approx(1e4)
    assert "inside the measured range" in crossing_text(ratios, "dense", "conv")
    far = ratio_slopes(_curves(100.0, 0.6), _curves(1.0, 0.35))  # n = 100^4 = 1e8: 6250x beyond 16000
    assert "6.25e+03x beyond the largest measured size (16000)" in crossing_text(far, "dense", "conv")
    assert crossing(ratio_slopes(_curves(2.0, 0.3), _curves(1.0, 0.3))) is None  # parallel: never


def test_the_fit_band_brackets_the_mean_fit():
    band = curve_band(seed_fits(_curves(2.0, 0.4, noise=0.05)), [1000, 4000])
    assert (band["low"] < band["mean"]).all() and (band["mean"] < band["high"]).all()
    assert band["mean"].iloc[0] == pytest.approx(2.0 * 1000**-0.4, rel=0.05)


# -- C8 on synthetic sweeps ----------------------------------------------------------------
def _config(family: str, n: int, augment: int) -> dict:
    model = (
        {"name": "mnist1d_mlp"}
        if family == "mlp"
        else {"name": "lattice", "family": family, "widths": [16, 16, 16], "kernel_sizes": [5, 3, 3], "strides": 2}
    )
    return {
        "seed": 0,
        "seeds": 4,
        "model": model,
        "data": {"name": "mnist1d_scaling", "n_per_class": n // 10},
        "train": {"augment_shift": augment, "epochs": 10, "batch_size": 100},
        "optimizer": {"learning_rate": 0.01, "learning_rates": [0.01]},
    }


def _sweep(root: Path, laws: dict[tuple[str, int], tuple[float, float]], noise: float = 0.02, seeds: int = 4) -> dict:
    """A data_scaling sweep whose per-seed errors follow ``laws[(family, augment)] = (a, b)``."""
    rng = np.random.default_rng(3)
    index = {}
    for (family, augment), (a, b) in laws.items():
        for n in SIZES:
            rid = f"{family}-{augment}-{n}"
            errors = np.clip(a * n**-b * np.exp(rng.normal(0, noise, seeds)), 0, 1)
            replicas = [
                {"seed": s, "learning_rate": 0.01, "test_accuracy": 1 - e, "val_accuracy": 1 - e, "diverged": False}
                for s, e in enumerate(errors)
            ]
            write_run(
                root / "data_scaling" / "runs" / rid,
                {**_config(family, n, augment), "seeds": seeds},
                done_summary(replicas, train_examples=n),
            )
            index[rid] = {"status": "done"}
    write_sweep_index(root / "data_scaling", "x/data_scaling.py:paper", index)
    return {c.id: c for c in [CLAIMS["C8"](load_results([root]))]}


STEEP, FLAT = (20.0, 0.6), (2.0, 0.35)  # dense falling faster than conv; conv's law


@pytest.mark.parametrize(
    ("dense", "noise", "verdict"),
    [
        ({0: STEEP, 4: STEEP}, 0.005, SUPPORTED),  # dense's exponent steeper in both arms
        ({0: (4.0, 0.35), 4: (4.0, 0.35)}, 0.005, NOT_SUPPORTED),  # equal exponents: the ratio stays 2
        ({0: STEEP, 4: (1.0, 0.2)}, 0.005, DEPENDS),  # steeper without augmentation, flatter with it
        ({0: (4.0, 0.38), 4: (4.0, 0.38)}, 0.3, INCONCLUSIVE),  # a small difference the seeds cannot tell
    ],
)
def test_c8_four_outcomes_on_the_exponent_difference(tmp_path, dense, noise, verdict):
    laws = {("conv", aug): FLAT for aug in (0, 4)} | {("dense", aug): law for aug, law in dense.items()}
    c8 = _sweep(tmp_path, laws, noise)["C8"]
    assert c8.verdict == verdict, [e.text() for e in c8.deciding]
    assert len(c8.deciding) == 2 and all("b_dense - b_conv" in e.label for e in c8.deciding)


def test_c8_is_not_decided_by_a_gap_in_points_that_shrinks_by_arithmetic(tmp_path):
    """Dense's error is twice conv's at every size: the gap in points falls from 4.4 to 0.8,
    the ratio does not move, so the advantage does not shrink in scale-free terms."""
    laws = {("conv", 0): (4.4 * 1000**0.6 / 100, 0.6), ("dense", 0): (8.8 * 1000**0.6 / 100, 0.6)}
    laws |= {("locally_connected", 0): (6.0 * 1000**0.6 / 100, 0.5), ("mlp", 0): (0.5, 0.2)}
    c8 = _sweep(tmp_path, laws, noise=0.01)["C8"]
    assert c8.verdict == NOT_SUPPORTED
    gaps = [e for e in c8.shown if "gap in points" in e.label]
    assert [round(100 * e.diff, 1) for e in gaps] == pytest.approx([4.4, 0.8], abs=0.2)
    assert any("b_locally_connected - b_conv" in e.label and e.diff < 0 for e in c8.shown)  # LC flatter: shown only
    assert any("dense and conv: no fitted crossing" in n and "not told apart from 0" in n for n in c8.notes), c8.notes
    assert any("locally connected and conv: the fitted error ratio" in n for n in c8.notes), c8.notes
    exponents = next(n for n in c8.notes if n.startswith("mnist1d_scaling, no augmentation: test error = a n^-b"))
    assert re.search(r"conv b = 0\.(59|60)", exponents) and re.search(r"mlp b = 0\.(19|20)", exponents), exponents
    # every figure builds on a study with a model outside the lattice (the MLP: its family is its name)
    out = report_only([tmp_path], tmp_path / "report", save=("F14_data_scaling",), build_all=True)
    assert "F14_data_scaling" in out.figures and "C8" in out.report_md.read_text()
    assert "mnist1d_mlp" in set(load_results([tmp_path]).runs["family"])


# -- the study's data ---------------------------------------------------------------------------
def test_every_size_of_a_pool_shares_its_test_and_validation_sets():
    from research.config import load_config
    from research.data import dataset_shape, load_dataset

    root = Path(__file__).resolve().parents[1] / "experiments" / "data_scaling.py"
    small, large = (load_config(f"{root}:quick", {"data.n_per_class": k}).data for k in (100, 400))
    a, b = load_dataset(small), load_dataset(large)
    assert a.info["generator"] == "mnist1d.make_dataset" and a.info["num_samples"] == 8000
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert a.splits == {"train": 1000, "val": 600, "test": 2000} and b.splits["train"] == 4000
    assert dataset_shape(large).splits == b.splits


def test_the_paper_study_spans_1k_to_64k_in_steps_of_4x_each_family_at_its_own_rate_grid():
    from research.config import load_config
    from research.sweep import study_runs

    spec = str(Path(__file__).resolve().parents[1] / "experiments" / "data_scaling.py") + ":paper"
    configs = [load_config(spec, overrides) for _, overrides in study_runs(spec)]
    arm = lambda c: c.model.get("family", c.model.name)
    sizes = sorted({10 * c.data.n_per_class for c in configs})
    assert sizes == [1000 * 4**k for k in range(4)]
    assert {(arm(c), c.train.augment_shift) for c in configs} == {
        *(("conv", 4), ("dense", 4)),
        *((f, 0) for f in ("conv", "locally_connected", "dense", "mnist1d_mlp")),
    }
    assert all(len(c.optimizer.learning_rates) >= 4 and c.data.name == "mnist1d_scaling" for c in configs)
    assert all(c.train.epochs * -(-10 * c.data.n_per_class // c.train.batch_size) >= 700 for c in configs)


def test_the_weight_sharing_study_reaches_width_256_on_mnist1d_dense_to_its_parameter_limit_on_gpu():
    from experiments.common import FULL_MAX_PARAMS, lattice_size
    from research.models import count_params
    from research.sweep import study_runs

    spec = str(Path(__file__).resolve().parents[1] / "experiments" / "weight_sharing.py")
    for variant in ("paper", "full"):
        runs = [o for _, o in study_runs(f"{spec}:{variant}") if o["data.name"] == "mnist1d" and o["tag"] == "matched_shape"]
        widths = {
            f: sorted(o["model.widths"][0] for o in runs if o["model.family"] == f)
            for f in ("conv", "locally_connected", "dense")
        }
        assert widths["conv"][0] == 4 and widths["conv"][-1] == widths["locally_connected"][-1] == 256, (variant, widths)
        # on GPU dense to 128 (the next width, 256, is over the limit); on CPU to 64 (time)
        assert widths["dense"][-1] == (128 if variant == "full" else 64), (variant, widths)
    bundle = {"data.name": "mnist1d", "model.kernel_sizes": (5, 3, 3)}
    assert lattice_size(bundle, "dense", 256, count_params) > FULL_MAX_PARAMS >= lattice_size(bundle, "dense", 128, count_params)
