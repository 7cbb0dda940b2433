"""Probes: exact invariance where theory says so, correct maps and indices, files on disk."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from flax import nnx

from research.cli import main
from research.errors import UserError
from research.models import LatticeNet, get_model
from research.pipeline import train_and_probe
from research.probes import ProbeOptions, run_probes
from research.probes.cost import profile_model
from research.probes.locality import locality_index
from research.probes.translation import consistency, equivariance, one_pixel, shift_curves
from research.train.trained import TrainedRun, load_trained
from tests.helpers import read_lines, tiny_config

OPTIONS = ProbeOptions(examples=64, max_shift=3)


def _replicas(ndim: int, **fields) -> TrainedRun:
    spatial = (12,) * ndim
    models = [LatticeNet((*spatial, 2), 5, rngs=nnx.Rngs(seed), **fields) for seed in range(2)]
    x = np.asarray(jax.random.normal(jax.random.key(9), (64, *spatial, 2)))
    return TrainedRun.from_models(models, x, np.zeros(64, np.int32))


@pytest.mark.parametrize("ndim", [1, 2])
def test_circular_conv_with_global_average_pooling_is_exactly_invariant(ndim):
    run = _replicas(ndim, family="conv", widths=(4, 4), kernel_sizes=3, padding="CIRCULAR", head="global_avg")
    result = consistency(run, OPTIONS)
    assert result["consistency_circular"] == [100.0, 100.0]
    assert np.max(equivariance(run, OPTIONS)["error"]) < 1e-5
    assert max(one_pixel(run, OPTIONS)["p_top1_change_circular"]) == 0.0
    curve = np.asarray(shift_curves(run, OPTIONS)["accuracy_circular"])
    np.testing.assert_array_equal(curve, curve[:, :1] * np.ones_like(curve))


def test_strided_circular_conv_is_equivariant_to_shifts_by_its_stride():
    run = _replicas(2, family="conv", widths=(3, 3), kernel_sizes=3, strides=2, padding="CIRCULAR")
    result = equivariance(run, OPTIONS)
    assert result["strides"] == [[2, 2], [4, 4]]
    assert np.max(result["error"]) < 1e-5
    # A 1-pixel shift, below the stride, breaks it (Azulay & Weiss 2019); a stride-1 net keeps it.
    assert np.min(result["error_one_pixel"]) > 0.1
    stride_one = _replicas(2, family="conv", widths=(3, 3), kernel_sizes=3, strides=1, padding="CIRCULAR")
    assert np.max(equivariance(stride_one, OPTIONS)["error_one_pixel"]) < 1e-5


@pytest.mark.parametrize("family", ["locally_connected", "dense"])
def test_families_without_sharing_are_not_equivariant(family):
    run = _replicas(1, family=family, widths=(4,), kernel_sizes=3, padding="CIRCULAR")
    assert np.min(equivariance(run, OPTIONS)["error"]) > 0.1


def test_locality_index_of_local_and_uniform_weights():
    shape = (10, 10, 1)
    local = np.zeros((1, 100, 3))
    for unit, corner in enumerate((11, 44, 77)):  # each unit: three neighbouring pixels, in its own place
        local[0, [corner, corner + 1, corner + 10], unit] = 1.0
    result = locality_index(local, shape, radius=1.5)
    assert result["index"][0] == pytest.approx(1.0) and result["unit_spread"][0] == pytest.approx(0.0)
    # With the units' masses permuted at each position, a unit's weights are no longer neighbours.
    assert result["shuffled"][0] < 0.8
    flat = locality_index(np.ones((1, 100, 3)), shape, radius=1.5)
    assert flat["index"][0] == pytest.approx(flat["uniform"], abs=0.02)
    assert flat["shuffled"][0] == pytest.approx(flat["index"][0])  # nothing to shuffle away
    # Random i.i.d. weights score their shuffled baseline, above the uniform value.
    noise = np.random.default_rng(0).normal(size=(4, 100, 32))
    random = locality_index(noise, shape, radius=1.5)
    np.testing.assert_allclose(random["index"], random["shuffled"], atol=0.02)
    assert np.all(random["index"] > random["uniform"])


def test_cost_probe_counts_the_flops_of_a_dense_net():
    model = get_model("mlp", (40, 1), 10, nnx.Rngs(0), hidden=(64, 64))
    x, y = jax.numpy.ones((32, 40, 1)), jax.numpy.zeros((32,), jax.numpy.int32)
    cost = profile_model(model, nnx.state(model, nnx.Param), x, y, peak=1e9)
    matmul_flops = 2 * 32 * (40 * 64 + 64 * 64 + 64 * 10)
    assert matmul_flops <= cost["forward_flops"] < 1.2 * matmul_flops
    assert 2 * cost["forward_flops"] < cost["step_flops"] < 5 * cost["forward_flops"]
    assert cost["fraction_of_peak"] == pytest.approx(cost["step_flops"] / cost["step_s"] / 1e9)


def test_position_probe_maps_accuracy_over_the_canvas(tmp_path):
    config = tiny_config("mlp", epochs=2)
    config.data.canvas_size = 48
    config.data.canvas_region = 2
    config.probes.final = ("position",)
    config.probes.examples = 50
    summary = train_and_probe(config, tmp_path, progress=False)
    probes = json.loads((tmp_path / "probes.json").read_text())["position"]
    assert probes["axes"] == [[0, 2, 4, 6, 8]]
    assert np.asarray(probes["accuracy_map"]).shape == (2, 5)
    # Corner 0 is inside the training region: the probe agrees with the model there.
    run = load_trained(tmp_path)
    from research.data import load_dataset, place_on_canvas

    plain = config.data.copy_and_resolve_references()
    plain.canvas_size = 0
    x = load_dataset(plain).x_test[:50]
    expected = (run.logits(place_on_canvas(x, (48,), position=(0,))[0]).argmax(-1) == run.y_test[:50]).mean(-1)
    np.testing.assert_allclose(np.asarray(probes["accuracy_map"])[:, 0], expected)
    assert summary["status"] == "done"


def test_tracked_locality_is_recorded_at_step_zero_and_every_evaluation(tmp_path):
    config = tiny_config("mlp", epochs=2)
    config.probes.track = ("locality",)
    train_and_probe(config, tmp_path, progress=False)
    tracked = [r for r in read_lines(tmp_path / "metrics.jsonl") if r["split"] == "track"]
    assert sorted({r["step"] for r in tracked}) == [0, 8, 16]
    assert len(tracked) == 3 * 2 and all(0 < r["locality_index"] <= 1 for r in tracked)


def test_tracking_locality_of_a_conv_is_refused_before_anything_is_written(tmp_path):
    config = tiny_config("cnn")
    config.probes.track = ("locality",)
    with pytest.raises(UserError, match="dense first layer"):
        train_and_probe(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_cvd_probe_writes_probes_json_and_rejects_unknown_probes(tmp_path, capsys):
    config = tiny_config("cnn", epochs=1)
    train_and_probe(config, tmp_path, progress=False)
    assert main(["probe", str(tmp_path), "--probe", "translaton"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Did you mean 'translation'" in err[0]
    assert not (tmp_path / "probes.json").exists()
    assert main(["probe", str(tmp_path), "--probe", "translation", "--examples", "40"]) == 0
    probes = json.loads((tmp_path / "probes.json").read_text())
    assert set(probes) == {"shift", "consistency", "one_pixel", "equivariance"}
    assert len(probes["consistency"]["consistency_circular"]) == 2  # one per replica
    assert main(["probe", str(tmp_path / "nothing_here")]) == 2


def test_run_probes_merges_results(tmp_path):
    config = tiny_config("mlp", epochs=1)
    train_and_probe(config, tmp_path, progress=False)
    run_probes(tmp_path, ["shift"], options=OPTIONS)
    run_probes(tmp_path, ["locality"], options=OPTIONS)
    assert set(json.loads((tmp_path / "probes.json").read_text())) == {"shift", "locality"}


def test_outside_receptive_field_mass_is_zero_at_the_switch_and_counts_what_leaves():
    from research.models.embed import embed_network_params
    from research.probes.receptive_field import track_outside_mass

    fields = dict(widths=(3, 4), kernel_sizes=3, strides=(2, 1), padding="SAME")
    conv = get_model("lattice", (16, 2), 4, nnx.Rngs(0), family="conv", **fields)
    dense = get_model("lattice", (16, 2), 4, nnx.Rngs(1), family="dense", **fields)
    pure = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(conv, nnx.Param)))
    embedded = embed_network_params(conv, pure, "dense")
    stacked = nnx.state(dense, nnx.Param)
    nnx.replace_by_pure_dict(stacked, jax.tree.map(lambda a: jax.numpy.asarray(np.stack([a, a])), embedded))
    assert np.all(track_outside_mass(dense, stacked)["outside_receptive_field"] == 0.0)
    assert np.all(
        track_outside_mass(conv, jax.tree.map(lambda a: a[None], nnx.state(conv, nnx.Param)))["outside_receptive_field"] == 0
    )
    # Fresh dense weights spread everywhere: most of their mass is outside the conv's fields.
    fresh = jax.tree.map(lambda a: a[None], nnx.state(dense, nnx.Param))
    assert track_outside_mass(dense, fresh)["outside_receptive_field"][0] > 0.5


@pytest.mark.parametrize("name", ["mlp", "lattice", "mnist1d_mlp", "mnist1d_cnn", "fashion_mlp", "fashion_cnn"])
def test_every_applicable_probe_runs_through_run_probes_on_every_registered_model(name, tmp_path):
    from research.models import MODELS
    from research.probes import applicable_probes

    assert name in MODELS.names()
    shape = (28, 28, 1) if name.startswith("fashion") else (40, 1)
    fields = {"family": "locally_connected"} if name == "mnist1d_cnn" else {}  # the LC twin, as a user probes it
    models = [get_model(name, shape, 10, nnx.Rngs(seed), **fields) for seed in range(2)]
    x = np.random.default_rng(0).integers(0, 255, (16, *shape)).astype(np.uint8)
    run = TrainedRun.from_models(models, x, np.arange(16, dtype=np.int32) % 10)
    names = [n for n in applicable_probes(run) if n != "cost" or name == "mlp"]  # cost compiles 6 programs: once
    results = run_probes(tmp_path, names, options=ProbeOptions(examples=16, max_shift=2), run=run)
    assert set(names) <= set(results)
    on_disk = json.loads((tmp_path / "probes.json").read_text())
    assert set(on_disk) == set(results)
    if name == "mnist1d_cnn":  # int padding: the stride is read from the model, not from the ratio of sizes
        assert on_disk["equivariance"]["strides"][0] == [2]


def test_each_probe_result_is_on_disk_before_the_next_probe_runs(tmp_path, monkeypatch):
    from research.probes import PROBES

    run = _replicas(1, family="conv", widths=(3,), kernel_sizes=3)

    def broken(run, options):
        raise RuntimeError("a probe that fails")

    monkeypatch.setitem(PROBES._items, "broken", broken)
    with pytest.raises(RuntimeError):
        run_probes(tmp_path, ["shift", "consistency", "broken"], options=OPTIONS, run=run)
    assert set(json.loads((tmp_path / "probes.json").read_text())) == {"shift", "consistency"}


def test_locality_baseline_keeps_an_envelope_the_whole_population_shares():
    """Audit: 320 units of i.i.d. weights under one shared centre envelope (no unit local)
    scored above a baseline that shuffled each unit over positions (+0.03 in the audit's
    case); the baseline keeps the envelope, so they score it."""
    rng = np.random.default_rng(0)
    envelope = np.exp(-((np.arange(40) - 19.5) ** 2) / (2 * 6.0**2))
    shared = rng.normal(size=(8, 40, 320)) * envelope[None, :, None]
    result = locality_index(shared, (40, 1), radius=4.0)
    above = result["index"] - result["shuffled"]  # a baseline shuffling each unit over positions: +0.42 to +0.45 here
    assert abs(above.mean()) < 0.005 and np.all(np.abs(above) < 0.02)
    assert np.all(result["index"] > result["uniform"] + 0.05)  # the envelope alone lifts it above uniform
    # Units each local around their own centre still clear the baseline by far.
    centres = rng.integers(4, 36, size=320)
    local = rng.normal(size=(3, 40, 320)) * np.exp(-((np.arange(40)[:, None] - centres[None]) ** 2) / 4.0)[None]
    local_result = locality_index(local, (40, 1), radius=4.0)
    assert np.all(local_result["index"] - local_result["shuffled"] > 0.3)


def test_equivariance_reads_each_layers_stride_from_the_model_not_from_its_size():
    """Audit: with VALID padding a stride-1 layer maps 12 positions to 6 under a 7-wide kernel,
    which the ratio of input to output size read as stride 2."""
    run = _replicas(1, family="conv", widths=(3,), kernel_sizes=7, strides=1, padding="VALID")
    assert equivariance(run, OPTIONS)["strides"] == [[1]]
    pooled = _replicas(1, family="conv", widths=(3, 3), kernel_sizes=3, strides=(1, 2), padding="CIRCULAR", pooling="max")
    assert equivariance(pooled, OPTIONS)["strides"] == [[2], [8]]  # pooling by 2 after each layer counts too


def test_the_flop_count_includes_every_batch_slice_of_the_im2col_conv(monkeypatch):
    """Audit: XLA's cost analysis counts a ``lax.map`` body once, so a conv computed a slice of
    examples at a time was counted as one slice (4x under at 4 slices)."""
    from research.models import im2col
    from research.probes.cost import counted_flops, xla_flops

    model = LatticeNet((16, 3), 5, rngs=nnx.Rngs(0), family="conv", widths=(8,), kernel_sizes=3, conv_impl="matmul")
    graphdef, params = nnx.split(model)
    forward = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
    x = jax.numpy.ones((16, 16, 3))
    whole = counted_flops(forward, params, x)
    monkeypatch.setattr(im2col, "PATCH_CHUNK_BYTES", 4 * 16 * 9 * 4)  # 4 examples' patches: 4 slices
    assert counted_flops(forward, params, x) == pytest.approx(whole, rel=1e-6)
    jax.clear_caches()
    assert xla_flops(forward.lower(params, x).compile()) < 0.7 * whole  # the count the probe used to report
    jax.clear_caches()


def test_a_run_is_probed_at_its_chosen_rate_only_and_the_analysis_reads_the_same_numbers(tmp_path):
    """The analysis reads probes at each run's chosen learning rate, so the pipeline probes only
    those replicas (a fourth of them in the paper profile's grids): the other replicas' values
    are NaN, and the analysis reads the same numbers as from probing every replica."""
    from analysis.load import load_results
    from research.rundir import RunDir
    from research.train.rate_choice import chosen_replicas
    from tests.helpers import write_sweep_index

    config = tiny_config("cnn")
    config.optimizer.learning_rates = (1e-3, 3e-2)
    config.probes.final = ("translation",)
    run_dir = tmp_path / "translation" / "runs" / "conv"
    summary = train_and_probe(config, run_dir, progress=False)
    write_sweep_index(tmp_path / "translation", "translation.py:quick", {"conv": {"status": "done"}})
    chosen = chosen_replicas(summary["replicas"])
    assert chosen is not None and len(chosen) == 2 and len(summary["replicas"]) == 4
    others = [i for i in range(4) if i not in chosen]
    part = RunDir(run_dir).probes()
    read_part = load_results([tmp_path]).runs
    full = run_probes(run_dir, ["translation"])  # every replica, rewritten in place
    read_full = load_results([tmp_path]).runs
    for probe in ("shift", "consistency", "one_pixel", "equivariance"):
        assert part[probe]["replicas"] == chosen and "replicas" in part[probe]["run_level"]
        for key, value in full[probe].items():
            if isinstance(value, list) and key not in ("run_level", *full[probe].get("run_level", ())):
                ours, theirs = np.asarray(part[probe][key], float), np.asarray(value, float)
                assert ours.shape == theirs.shape, (probe, key)
                np.testing.assert_allclose(ours[chosen], theirs[chosen], rtol=1e-6, atol=1e-6, err_msg=f"{probe}.{key}")
                assert np.isnan(ours[others]).all(), (probe, key)
    columns = [c for c in read_full if c.startswith("probe.")]
    assert len(read_part) == len(read_full) == 2 and columns
    np.testing.assert_allclose(read_part[columns].to_numpy(float), read_full[columns].to_numpy(float), rtol=1e-6, atol=1e-6)


def test_a_replicas_locality_baseline_is_the_same_probed_alone_or_beside_the_others():
    """The shuffled baseline is random: each replica draws its own, keyed by its index in the
    run, so probing a run's chosen replicas gives them the numbers probing all of them does."""
    from research.probes.locality import locality

    models = [get_model("mlp", (40, 1), 10, nnx.Rngs(seed), hidden=(16,)) for seed in range(4)]
    run = TrainedRun.from_models(models, np.zeros((4, 40, 1), np.float32), np.zeros(4, int))
    every, some = locality(run, ProbeOptions()), locality(run.select([3, 1]), ProbeOptions())
    for key in ("locality_index", "shuffled", "unit_spread"):
        assert some[key] == [every[key][3], every[key][1]], key
    assert run.select([3, 1]).select([1]).replica_indices == (1,)
