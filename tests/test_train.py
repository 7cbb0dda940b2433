"""The training engine: bit-identical strategies and resume, per-replica isolation, one compile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from research.errors import UserError
from research.train import strip_timing, train_and_evaluate
from research.train.spec import RunSpec
from tests.helpers import read_lines, tiny_config

ROOT = Path(__file__).resolve().parent.parent


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-5, abs=1e-7)
    return a == b


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_every_strategy_gives_the_same_numbers(tmp_path, model):
    """Vmapped ``scan`` and ``dispatch`` are bit-identical. XLA CPU computes the
    CNN's batched matmuls (its convs' matmul form) differently one replica at a
    time, so one replica at a time agrees to float32 rounding, not bitwise."""
    runs = {}
    for strategy in ("scan", "dispatch", "sequential_dispatch"):
        cfg = tiny_config(model, strategy=strategy, log_every_steps=4)
        cfg.seeds = 3
        summary = train_and_evaluate(cfg, tmp_path / strategy, progress=False)
        assert summary["strategy"] == strategy
        summary = {k: v for k, v in strip_timing(summary).items() if k != "strategy"}
        runs[strategy] = (summary, read_lines(tmp_path / strategy / "metrics.jsonl"))
    assert runs["dispatch"] == runs["scan"]
    assert _close(runs["sequential_dispatch"], runs["scan"])


def test_a_replica_run_alone_or_with_others_one_at_a_time_is_bit_identical(tmp_path):
    together = tiny_config("cnn", strategy="sequential_dispatch")
    together.seeds = 3
    alone = tiny_config("cnn", strategy="sequential_dispatch")
    alone.seeds, alone.seed = 1, 1
    many = train_and_evaluate(together, tmp_path / "together", progress=False)
    one = train_and_evaluate(alone, tmp_path / "alone", progress=False)
    assert one["replicas"][0] == many["replicas"][1]


def test_same_config_same_numbers_and_one_compile(tmp_path):
    a = train_and_evaluate(tiny_config(), tmp_path / "a", progress=False)
    b = train_and_evaluate(tiny_config(), tmp_path / "b", progress=False)
    assert strip_timing(a) == strip_timing(b)
    assert read_lines(tmp_path / "a" / "metrics.jsonl") == read_lines(tmp_path / "b" / "metrics.jsonl")
    assert a["strategy"] == "scan"  # auto on CPU: the CNN's convs run as matmuls
    # Executables, not traces: one scan program and one evaluation program (val and test padded
    # to one batch), each compiled once however many epochs and chunks ran.
    assert a["timing"]["compiles"]["scan"] == 1 and "step" not in a["timing"]["compiles"]
    assert a["timing"]["compiles"]["eval"] == 1
    assert a["status"] == "done" and len(a["replicas"]) == 2
    assert (
        a["replicas"][0]["test_accuracy"] != a["replicas"][1]["test_accuracy"]
        or a["replicas"][0]["test_loss"] != a["replicas"][1]["test_loss"]
    )
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in a["replicas"])


def test_metrics_records_per_step_replica_and_split(tmp_path):
    summary = train_and_evaluate(tiny_config(log_every_steps=4), tmp_path, progress=False)
    assert summary["head_inputs"] == 10 * 4  # 40 positions, two stride-2 layers, 4 channels, flattened
    records = read_lines(tmp_path / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    test = [r for r in records if r["split"] == "test"]
    assert [r["step"] for r in train if r["replica"] == 0] == [4, 8, 12, 16, 20, 24]
    assert [r["step"] for r in test if r["replica"] == 1] == [8, 16, 24]
    assert {"loss", "accuracy", "grad_norm", "param_norm", "seed", "learning_rate"} <= set(train[0])
    assert json.loads((tmp_path / "config.json").read_text())["seeds"] == 2
    # The same numbers in one TensorBoard event file: per replica, their mean, and the config as hparams.
    from research.train.metrics import read_event_scalars, read_events

    (events,) = tmp_path.glob("events.out.tfevents*")
    scalars = read_event_scalars(events)
    assert [step for step, _ in scalars["test/accuracy"]] == [8, 16, 24]
    for replica in (0, 1):
        own = [r["accuracy"] for r in test if r["replica"] == replica]
        assert [v for _, v in scalars[f"test/accuracy/lr_0.01_seed_{replica}"]] == pytest.approx(own)
    mean = [(a["accuracy"] + b["accuracy"]) / 2 for a, b in zip(test[::2], test[1::2])]
    assert [v for _, v in scalars["test/accuracy"]] == pytest.approx(mean)
    assert len(scalars["train/loss/lr_0.01_seed_1"]) == 6
    plugins = {v.metadata.plugin_data.plugin_name for e in read_events(events) for v in e.summary.value}
    assert "hparams" in plugins


def test_resume_after_a_crash_is_bit_identical(tmp_path, monkeypatch):
    reference = train_and_evaluate(tiny_config(), tmp_path / "ref", progress=False)
    from research.train import engine as engine_module

    calls = {"n": 0}
    original = engine_module.Engine.run_steps

    def crash_on_third_segment(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(engine_module.Engine, "run_steps", crash_on_third_segment)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_and_evaluate(tiny_config(), tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"
    monkeypatch.setattr(engine_module.Engine, "run_steps", original)
    resumed = train_and_evaluate(tiny_config(), tmp_path / "run", progress=False)
    assert strip_timing(resumed) == strip_timing(reference)
    assert read_lines(tmp_path / "run" / "metrics.jsonl") == read_lines(tmp_path / "ref" / "metrics.jsonl")


def test_workdir_rules(tmp_path):
    first = train_and_evaluate(tiny_config(epochs=1), tmp_path, progress=False)
    again = train_and_evaluate(tiny_config(epochs=1), tmp_path, progress=False)
    assert again == first  # a finished run is reused, not retrained
    with pytest.raises(UserError, match=r"different config \(differs in: train.epochs\)"):
        train_and_evaluate(tiny_config(epochs=2), tmp_path, progress=False)
    replaced = train_and_evaluate(tiny_config(epochs=2), tmp_path, overwrite=True, progress=False)
    assert replaced["epochs"] == 2


def test_replicas_sharded_over_four_devices_give_the_same_numbers(tmp_path):
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        import jax
        from tests.helpers import tiny_config
        from research.train import train_and_evaluate, strip_timing
        cfg = tiny_config(strategy="dispatch"); cfg.seeds = 4  # vmapped on 1 device and sharded on 4
        s = train_and_evaluate(cfg, sys.argv[1], progress=False)
        print(json.dumps({{"devices": jax.device_count(), "summary": strip_timing(s)}}))
        """
    )
    results = {}
    for n in (1, 4):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}", "JAX_PLATFORMS": "cpu"}
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / str(n))], env=env, capture_output=True, text=True, check=True
        )
        results[n] = json.loads(out.stdout.strip().splitlines()[-1])
    one, four = results[1]["summary"], results[4]["summary"]
    assert results[4]["devices"] == 4 and four.pop("replica_devices") == 4 and one.pop("replica_devices") == 1
    # Per-device batched matmuls of 1 replica vs 4 round differently in the last
    # bit, so losses agree to float rounding; every prediction is the same.
    for a, b in zip(one.pop("replicas"), four.pop("replicas")):
        assert a["test_accuracy"] == b["test_accuracy"]
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-5)
    assert one == four


def _efcn_config():
    c = tiny_config(epochs=3, log_every_steps=4, checkpoint_every_steps=4)
    c.train.embed_at_epoch = 1
    c.train.embed_into = "dense"
    return c


@pytest.fixture(scope="module")
def efcn_reference(tmp_path_factory) -> dict:
    """The uninterrupted eFCN run both crash points compare with, trained once."""
    return train_and_evaluate(_efcn_config(), tmp_path_factory.mktemp("efcn_ref"), progress=False)


@pytest.mark.parametrize("crash_at_call", [3, 5])  # 3: just after the switch, from the checkpoint at it
def test_efcn_switches_family_and_resumes_across_the_switch(tmp_path, monkeypatch, crash_at_call, efcn_reference):
    cfg = _efcn_config
    reference = efcn_reference
    assert reference["embedding"] == {
        "from": "conv",
        "into": "dense",
        "at_epoch": 1,
        "num_params_before": reference["embedding"]["num_params_before"],
    }
    assert reference["num_params"] > reference["embedding"]["num_params_before"]
    from research.train import engine as engine_module

    original = engine_module.Engine.run_steps
    calls = {"n": 0}

    def crash_after_the_switch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == crash_at_call:  # segments of 4 steps, 8 per epoch, the switch at step 8
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(engine_module.Engine, "run_steps", crash_after_the_switch)
    with pytest.raises(RuntimeError):
        train_and_evaluate(cfg(), tmp_path / "run", progress=False)
    monkeypatch.setattr(engine_module.Engine, "run_steps", original)
    assert strip_timing(train_and_evaluate(cfg(), tmp_path / "run", progress=False)) == strip_timing(reference)
    assert not (tmp_path / "run" / "checkpoints.unreadable").exists(), "the checkpoint at the switch restores"


def test_learning_rate_grid_trains_every_rate_with_every_seed_and_reports_val_and_train(tmp_path):
    config = tiny_config("mlp", epochs=5)
    config.optimizer.learning_rates = (1e-3, 1e-2)
    summary = train_and_evaluate(config, tmp_path, progress=False)
    replicas = summary["replicas"]
    assert [(r["learning_rate"], r["seed"]) for r in replicas] == [(1e-3, 0), (1e-3, 1), (1e-2, 0), (1e-2, 1)]
    for r in replicas:
        assert {"val_accuracy", "val_loss", "train_accuracy", "train_loss", "test_accuracy"} <= set(r)
        assert 0 <= r["val_accuracy"] <= 1 and r["val_accuracy_gain_last_fifth"] is not None
    assert summary["dataset"]["splits"] == {"train": 80, "val": 400, "test": 1000}
    records = read_lines(tmp_path / "metrics.jsonl")
    val = [r for r in records if r["split"] == "val" and r["replica"] == 3]
    assert [r["step"] for r in val] == [8, 16, 24, 32, 40]
    # The last fifth's gain is the end minus the last evaluation at or before 80% of training.
    assert replicas[3]["val_accuracy_gain_last_fifth"] == pytest.approx(val[-1]["accuracy"] - val[-2]["accuracy"])
    first_train = {(r["replica"]): r for r in records if r["split"] == "train" and r["step"] == 8}
    assert first_train[0]["learning_rate"] == pytest.approx(1e-3) and first_train[2]["learning_rate"] == pytest.approx(1e-2)
    # Replicas with the same seed start from the same initialisation whatever their rate: the
    # initial state this run trained from (replicas 0 and 2 are seed 0, 1 and 3 seed 1).
    initial = [np.asarray(leaf) for leaf in jax.tree.leaves(RunSpec.build(config).init_state()["params"])]
    assert all(np.array_equal(p[0], p[2]) and np.array_equal(p[1], p[3]) for p in initial)
    assert not all(np.array_equal(p[0], p[1]) for p in initial)  # and seeds differ


def test_shift_augmentation_changes_training_deterministically(tmp_path):
    plain = train_and_evaluate(tiny_config(epochs=1), tmp_path / "plain", progress=False)
    runs = [train_and_evaluate(tiny_config(epochs=1, augment_shift=3), tmp_path / f"aug{i}", progress=False) for i in range(2)]
    assert strip_timing(runs[0]) == strip_timing(runs[1])
    assert runs[0]["replicas"] != plain["replicas"]


def test_config_json_stores_the_resolved_model_and_old_runs_still_resume_and_load(tmp_path):
    from analysis import load_results

    config = tiny_config("cnn", epochs=1)
    config.model.name = "mnist1d_cnn"  # family, widths... left at the variant's defaults
    for key in ("family", "widths", "kernel_sizes", "strides"):
        del config.model[key]
    summary = train_and_evaluate(config, tmp_path / "run", progress=False)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["model"]
    assert stored["family"] == "conv" and stored["widths"] == [25, 25, 25] and stored["padding"] == 1
    # What produced it: this checkout's commit, the packages, the machine.
    produced = json.loads((tmp_path / "run" / "config.json").read_text())["provenance"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert produced["commit"] == head.stdout.strip() and isinstance(produced["dirty"], bool)
    assert "jax" in produced["versions"] and produced["machine"]["backend"] == "cpu"
    # A run written before defaults were stored: same run, resumes as finished, and loads with its family.
    old = json.loads((tmp_path / "run" / "config.json").read_text())
    old["model"] = {"name": "mnist1d_cnn"}
    old.pop("provenance")  # nor did it record its provenance
    (tmp_path / "run" / "config.json").write_text(json.dumps(old))
    assert strip_timing(train_and_evaluate(config, tmp_path / "run", progress=False)) == strip_timing(summary)
    (tmp_path / "run" / "config.json").write_text(json.dumps(old))
    assert set(load_results([tmp_path]).runs["family"]) == {"conv"}


def test_a_dense_run_on_permuted_pixels_from_w0_pt_mirrors_the_unpermuted_run(tmp_path):
    """C6's exact fact: a dense net trained by Adam on permuted pixels from W0 P^T is the run on
    the original pixels from W0, to float32 rounding (the order of the first matmul's sums)."""

    def config(permuted: bool):
        c = tiny_config("mlp", epochs=2)
        c.data.permute_pixels = c.data.permute_init = permuted
        c.data.permutation_seed = 3
        return c

    plain = train_and_evaluate(config(False), tmp_path / "plain", progress=False)
    mirrored = train_and_evaluate(config(True), tmp_path / "mirrored", progress=False)
    for a, b in zip(plain["replicas"], mirrored["replicas"]):
        assert a["test_accuracy"] == b["test_accuracy"] and a["val_accuracy"] == b["val_accuracy"]
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-5, abs=1e-6)
    wrong = config(False)
    wrong.data.permute_init = True
    with pytest.raises(UserError, match="permute_init needs data.permute_pixels"):
        train_and_evaluate(wrong, tmp_path / "wrong", progress=False)


def test_the_efcn_switch_carries_the_learning_rate_schedule_and_restarts_adam():
    """At the switch a decaying schedule goes on from the switch step (it used to restart at its
    base rate); Adam's moments and step count restart (they do not map through the embedding)."""
    import optax

    from research.train.loop import embed_state

    config = _efcn_config()
    config.optimizer.schedule = "cosine"
    spec = RunSpec.build(config)
    state = spec.init_state()
    kinds = (optax.ScaleByScheduleState, optax.ScaleByAdamState)
    is_kind = lambda node: isinstance(node, kinds)
    seven = jax.tree.map(lambda n: n._replace(count=n.count + 7) if is_kind(n) else n, state["opt_state"], is_leaf=is_kind)
    switched = embed_state(spec, {**state, "opt_state": seven})["opt_state"]
    nodes = [n for n in jax.tree.leaves(switched, is_leaf=is_kind) if is_kind(n)]
    assert {type(n) for n in nodes} == set(kinds)
    for node in nodes:
        expected = 7 if isinstance(node, optax.ScaleByScheduleState) else 0
        np.testing.assert_array_equal(node.count, expected)
