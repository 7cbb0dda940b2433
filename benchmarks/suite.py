"""The benchmark suite behind ``cvd bench [--json]``: every figure as a ratio
measured in this one process (the machine is shared and noisy).

Sections:

* ``strategies``: ms/step of each way to train R replicas (vmap + scan, vmap +
  dispatch, sequential + dispatch) for the MNIST-1D
  reference MLP and CNN, and what ``train.strategy=auto`` picks.
* ``sweep``: 32 seeds x 500 Adam steps of each reference model, total wall
  time including compilation, against the same 32 runs as a plain PyTorch
  loop (``sweep_speedup_vs_torch``) and as one ``torch.func`` ensemble
  (``sweep_speedup_vs_torch_func``).
* ``conv2d_stride1``: lattice nets at CIFAR shapes (32x32x3, four stride-1
  layers of width 16 or 64, zero or circular padding, a global max head), each
  family's training images/s for 1 and 3 seeds against a plain PyTorch loop
  (``images_per_s_vs_torch``).
* ``conv_speed``: the Fashion-MNIST CNN's training images/s against PyTorch's.
* ``fraction_of_peak``: a wide dense net's training-step FLOP/s against a large
  matmul measured here.
* ``locally_connected``: each family's step time over the conv's at the same
  shapes (the full-kernel conv in 1D only), and how its convs compute.
* ``compile``: first-call latency per family, and the number of new entries a
  repeated sweep adds to the persistent compilation cache (0 = compiled nothing).
* ``options``: every padding, pooling and head of the lattice at three shapes, each
  family's step time against what its work costs on the fastest form (``benchmarks.options``).
* ``reproduce``: the stage timing of a ``cvd reproduce`` workdir, when given.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from research.config import default_config
from research.data import Dataset
from research.kernels import nngp_fn, ntk_fn
from research.models import FAMILIES, conv_impls, count_params, get_model
from research.train.engine import STEP_STRATEGIES, choose_strategy
from research.train.spec import RunSpec, segments

ROOT = Path(__file__).resolve().parent.parent
MNIST1D_SHAPE = (40, 1)


def _data(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int32)


def _spec(
    model_name: str, shape, replicas: int, batch: int, n: int, log_every: int, steps: int, lr: float = 1e-2, **fields
) -> RunSpec:
    """The run spec the trainer would build for ``replicas`` seeds of one model on ``n``
    synthetic examples of ``shape``, logging (and so scanning) every ``log_every`` steps,
    for at least ``steps`` steps: the same engine, chunking and initial state as a run."""
    config = default_config()
    config.model = ml_collections.ConfigDict({"name": model_name, **fields}, type_safe=False)
    config.seeds = replicas
    config.optimizer.learning_rate = lr
    config.optimizer.weight_decay = 0.0
    config.train.batch_size = batch
    config.train.log_every_steps = log_every
    config.train.epochs = max(1, math.ceil(steps / (n // batch)))
    x, y = _data(shape, n)
    data = Dataset("synthetic", x, y, x[:batch], y[:batch], num_classes=10)
    return RunSpec.build(config, data)


def _train(model_name, shape, replicas, steps, strategy, batch=100, n=4000):
    """Wall seconds of: init ``replicas`` replicas and train ``steps`` steps (compile included),
    in the run loop's segments (``lax.scan`` chunks that divide both the epoch and ``steps``)."""
    start = time.perf_counter()
    spec = _spec(model_name, shape, replicas, batch, n, log_every=steps, steps=steps)
    engine = spec.engines["initial"]
    state = spec.init_state()
    xs, ys = jax.device_put((spec.data.x_train, spec.data.y_train))
    perms_epoch = None
    for epoch, begin, end in segments(0, steps, spec.steps_per_epoch, spec.log_every):
        if perms_epoch != epoch:
            perms, perms_epoch = engine.permutations(state, epoch, n), epoch
        state = engine.run_steps(state, xs, ys, perms, begin, end, strategy)
    jax.block_until_ready(state)
    return time.perf_counter() - start


def _step_timer(model_name, shape, replicas, strategy, batch=100, steps=20, **fields) -> tuple[float, Callable[[], float]]:
    """``(first-call seconds, segment)`` for ``replicas`` replicas: the first call compiles
    (and runs one step when dispatched, one chunk of ``steps`` when scanned); each call of
    ``segment()`` then times ``steps`` more steps and returns ms per step."""
    n = 2 * batch * steps
    spec = _spec(model_name, shape, replicas, batch, n, log_every=steps, steps=10 * steps, **fields)
    engine = spec.engines["initial"]
    state = spec.init_state()
    xs, ys = jax.device_put((spec.data.x_train, spec.data.y_train))
    perms = engine.permutations(state, 0, n)
    start = time.perf_counter()
    first_steps = 1 if strategy.endswith("dispatch") else steps
    state = jax.block_until_ready(engine.run_steps(state, xs, ys, perms, 0, first_steps, strategy))
    first_call = time.perf_counter() - start

    def segment() -> float:
        nonlocal state
        start = time.perf_counter()
        state = jax.block_until_ready(engine.run_steps(state, xs, ys, perms, steps, 2 * steps, strategy))
        return 1e3 * (time.perf_counter() - start) / steps

    return first_call, segment


def _step_timing(model_name, shape, replicas, strategy, batch=100, steps=20, **fields) -> tuple[float, float]:
    """``(ms per step, first-call seconds)``: the best of 3 timed segments of ``steps`` (:func:`_step_timer`)."""
    first_call, segment = _step_timer(model_name, shape, replicas, strategy, batch, steps, **fields)
    return min(segment() for _ in range(3)), first_call


def strategies(replicas: int = 32) -> list[dict]:
    """ms/step of every strategy for R replicas (after compiling) and auto's pick."""
    rows = []
    for name in ("mnist1d_mlp", "mnist1d_cnn"):
        model = nnx.eval_shape(lambda name=name: get_model(name, MNIST1D_SHAPE, 10, nnx.Rngs(0)))
        auto = choose_strategy("auto", model, jax.default_backend(), replicas=replicas)
        row = {"model": name, "replicas": replicas, "auto": auto}
        for strategy in STEP_STRATEGIES:
            row[f"{strategy}_ms_per_step"] = _step_timing(name, MNIST1D_SHAPE, replicas, strategy)[0]
        best = min(STEP_STRATEGIES, key=lambda s: row[f"{s}_ms_per_step"])
        row["fastest"] = best
        row["auto_vs_fastest"] = row[f"{auto}_ms_per_step"] / row[f"{best}_ms_per_step"]
        rows.append(row)
    return rows


def sweep_vs_torch(seeds: int = 32, steps: int = 500) -> list[dict]:
    from benchmarks import torch_reference

    rows = []
    x, y = _data(MNIST1D_SHAPE, 4000)
    for name in ("mnist1d_mlp", "mnist1d_cnn"):
        model = nnx.eval_shape(lambda name=name: get_model(name, MNIST1D_SHAPE, 10, nnx.Rngs(0)))
        strategy = choose_strategy("auto", model, jax.default_backend(), replicas=seeds)
        jax_s = _train(name, MNIST1D_SHAPE, seeds, steps, strategy)
        torch_s = torch_reference.train_runs(name, x, y, seeds=seeds, steps=steps, batch=100)
        torch_func_s = torch_reference.train_runs_func(name, x, y, seeds=seeds, steps=steps, batch=100)
        rows.append(
            {
                "model": name,
                "seeds": seeds,
                "steps": steps,
                "strategy": strategy,
                "jax_s": jax_s,
                "torch_s": torch_s,
                "torch_func_s": torch_func_s,
                "sweep_speedup_vs_torch": torch_s / jax_s,
                "sweep_speedup_vs_torch_func": torch_func_s / jax_s,
            }
        )
    return rows


CIFAR_SHAPE = (32, 32, 3)
# Pause before each timed segment of the interleaved rounds: PyTorch's OpenMP threads spin
# for a while after a parallel region (GNU/Intel defaults: up to ~200 ms) on the same cores.
SETTLE_S = 0.25
# Nets with more parameters are reported as left out: the dense family at 32x32x16 has
# 855M (13 GB with Adam's moments and gradients), and at width 64 about 13G.
CIFAR_MAX_PARAMS = 200_000_000


def _best_interleaved(timers: dict, rounds: int, settle: float | None = None) -> dict:
    """Each timer's best of ``rounds`` calls, the timers called in turn (the order rotated each
    round, a pause of ``settle`` seconds, default :data:`SETTLE_S`, before each call), so that
    all see the same minutes."""
    best = dict.fromkeys(timers, math.inf)
    order = list(timers)
    for round_ in range(rounds):
        for key in order[round_ % len(order) :] + order[: round_ % len(order)]:
            time.sleep(SETTLE_S if settle is None else settle)
            best[key] = min(best[key], timers[key]())
    return best


def conv2d_stride1(
    widths=(16, 64), seeds=(1, 3), batch: int = 50, rounds: int = 3, families=("conv", "locally_connected", "dense")
) -> list[dict]:
    """Each family at CIFAR shapes: four stride-1 layers of ``width`` channels (kernel 3,
    ReLU), a global max head, Adam, batch 50. JAX's training images/s (``auto``'s
    strategy, ``seeds`` replicas; the conv in ``auto``'s form and as ``lax.conv``) over PyTorch's, whose
    plain loop trains the seeds one after another (``seeds`` x its step time). The
    conv at every width, padding and seed count; locally connected and dense with
    zero padding and one seed.

    Timed alike and interleaved, because this machine's speed drifts by up to 3x between
    minutes: every form is compiled first, then ``rounds`` rounds each time one segment of
    3 steps of PyTorch and of every JAX form in turn (the order rotated each round, and a
    pause before each segment so that no library's idle threads still spin on the cores);
    each reports its best segment. PyTorch trains on one batch, JAX's steps gather theirs
    through its permutation, as in training."""
    from benchmarks import torch_reference

    x, y = _data(CIFAR_SHAPE, batch)
    rows = []
    for width in widths:
        for padding in ("SAME", "CIRCULAR"):
            for family in families:
                if family != "conv" and padding != "SAME":
                    continue
                fields = dict(family=family, widths=(width,) * 4, kernel_sizes=3, strides=1, padding=padding, head="global_max")
                model = nnx.eval_shape(lambda fields=fields: get_model("lattice", CIFAR_SHAPE, 10, nnx.Rngs(0), **fields))
                base = {"family": family, "width": width, "padding": padding, "params": count_params(model)}
                if base["params"] > CIFAR_MAX_PARAMS:
                    rows.append({**base, "left_out": f"{base['params'] / 1e6:.0f}M parameters"})
                    continue
                reference = torch_reference.build_lattice(family, CIFAR_SHAPE, (width,) * 4, 3, padding)
                timers = {"torch": torch_reference.lattice_step_timer(reference, x, y, steps=3)}
                forms = []
                # The conv in both forms: auto's (matmul on CPU) and lax.conv, each with auto's strategy.
                for conv_impl in ("auto", "lax") if family == "conv" else ("auto",):
                    impl_fields = {**fields, "conv_impl": conv_impl}
                    impl_model = nnx.eval_shape(lambda f=impl_fields: get_model("lattice", CIFAR_SHAPE, 10, nnx.Rngs(0), **f))
                    for replicas in seeds if family == "conv" else seeds[:1]:
                        strategy = choose_strategy("auto", impl_model, jax.default_backend(), replicas=replicas)
                        _, timers[len(forms)] = _step_timer("lattice", CIFAR_SHAPE, replicas, strategy, batch, 3, **impl_fields)
                        forms.append((conv_impl, ",".join(sorted(conv_impls(impl_model))) or "-", replicas, strategy))
                best = _best_interleaved(timers, rounds)
                torch_images_per_s = 1e3 * batch / best["torch"]
                for i, (conv_impl, impl, replicas, strategy) in enumerate(forms):
                    jax_images_per_s = 1e3 * replicas * batch / best[i]
                    rows.append(
                        {
                            **base,
                            "seeds": replicas,
                            "conv_impl_asked": conv_impl,
                            "conv_impl": impl,
                            "strategy": strategy,
                            "jax_ms_per_step": best[i],
                            "jax_images_per_s": jax_images_per_s,
                            "torch_images_per_s": torch_images_per_s,
                            "images_per_s_vs_torch": jax_images_per_s / torch_images_per_s,
                        }
                    )
    return rows


def conv_speed(batch: int = 128) -> dict:
    from benchmarks import torch_reference

    shape = (28, 28, 1)
    model = nnx.eval_shape(lambda: get_model("fashion_cnn", shape, 10, nnx.Rngs(0)))
    strategy = choose_strategy("auto", model, jax.default_backend())
    jax_ms, _ = _step_timing("fashion_cnn", shape, 1, strategy, batch=batch)
    x, y = _data(shape, batch)
    torch_ms = 1e3 * torch_reference.step_seconds("fashion_cnn", x, y, batch=batch)
    return {
        "model": "fashion_cnn",
        "batch": batch,
        "jax_ms_per_step": jax_ms,
        "torch_ms_per_step": torch_ms,
        "jax_images_per_s": 1e3 * batch / jax_ms,
        "torch_images_per_s": 1e3 * batch / torch_ms,
        "images_per_s_vs_torch": torch_ms / jax_ms,
    }


def fraction_of_peak(width: int = 2048, batch: int = 512) -> dict:
    from research.probes.cost import peak_matmul_flops, profile_model

    model = get_model("mlp", (784, 1), 10, nnx.Rngs(0), hidden=(width, width))
    x, y = jnp.ones((batch, 784, 1)), jnp.zeros((batch,), jnp.int32)
    peak = peak_matmul_flops()
    cost = profile_model(model, nnx.state(model, nnx.Param), x, y, peak=peak)
    return {
        "model": f"dense 784-{width}-{width}-10",
        "batch": batch,
        **{k: cost[k] for k in ("step_flops", "step_s", "step_flops_per_s", "peak_flops_per_s", "fraction_of_peak")},
    }


# Every family at one geometry per shape (identical activation shapes; circular padding so
# the full-kernel conv matches too).
FAMILY_SHAPES = {
    "mnist1d_cnn_1d": dict(
        input_shape=(40, 1), batch=100, fields=dict(widths=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=2, padding="CIRCULAR")
    ),
    "fashion_2d": dict(
        input_shape=(28, 28, 1), batch=128, fields=dict(widths=(32, 64), kernel_sizes=3, strides=2, padding="CIRCULAR")
    ),
}


def locally_connected_and_compile() -> list[dict]:
    """Per family at :data:`FAMILY_SHAPES`: best ms/step and first-call latency, and the
    ratio to the conv's step."""
    rows = []
    for shape_name, spec in FAMILY_SHAPES.items():
        shape = spec["input_shape"]
        # The 2D full-kernel conv (about 1 s a step, 87x the conv: benchmarks/README.md) is left out.
        families = FAMILIES if len(shape) == 2 else tuple(f for f in FAMILIES if f != "full_kernel_conv")
        for family in families:
            fields = {"family": family, **spec["fields"]}
            model = nnx.eval_shape(lambda shape=shape, fields=fields: get_model("lattice", shape, 10, nnx.Rngs(0), **fields))
            strategy = choose_strategy("auto", model, jax.default_backend())
            ms, first = _step_timing("lattice", shape, 1, strategy, batch=spec["batch"], steps=10, **fields)
            rows.append(
                {
                    "shape": shape_name,
                    "family": family,
                    "conv_impl": ",".join(sorted(conv_impls(model))) or "-",
                    "params": count_params(model),
                    "strategy": strategy,
                    "ms_per_step": ms,
                    "first_call_s": first,
                }
            )
        conv = next(r for r in rows if r["shape"] == shape_name and r["family"] == "conv")["ms_per_step"]
        for r in rows:
            if r["shape"] == shape_name:
                r["vs_conv"] = r["ms_per_step"] / conv
    return rows


REPEAT_STUDY = """


def get_config(variant=None):
    c = default_config()
    c.seeds = 2
    c.model.name = "lattice"
    c.model.widths = (4, 4)
    c.model.strides = 2
    c.data.n_per_class = 10
    c.train.batch_size = 20
    c.train.epochs = 2
    return c


def get_sweep(variant=None):
    return product(axis("model.family", ["conv", "dense"]))
"""


def repeated_sweep_compiles() -> dict:
    """Run a 2-run sweep, delete its runs, run it again: count new compilation-cache entries."""
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "repeat_study.py"
        study.write_text(REPEAT_STUDY)
        cmd = [
            sys.executable,
            "-m",
            "research.cli",
            "sweep",
            "--config",
            str(study),
            "--workdir",
            f"{tmp}/sweep",
            "--no-progress",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        timings = []
        entries = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            timings.append(time.perf_counter() - start)
            entries.append(len(list((Path(tmp) / "sweep" / ".jax_cache").rglob("*"))))
            subprocess.run(["rm", "-rf", f"{tmp}/sweep/runs", f"{tmp}/sweep/sweep.json"], check=True)
        return {
            "first_sweep_s": timings[0],
            "repeat_sweep_s": timings[1],
            "cache_entries_first": entries[0],
            "new_cache_entries_on_repeat": entries[1] - entries[0],
        }


def machine() -> dict:
    return {
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "devices": jax.device_count(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # research.xla_flags: which conv kernels XLA CPU used
    }


def _kernel_seconds(kernel_fn, n: int) -> dict:
    """Seconds for the reference MNIST-1D CNN's n x n kernel (``nngp_fn`` or ``ntk_fn``)."""
    x = np.random.default_rng(0).normal(size=(n, 40, 1))
    kernel = kernel_fn({"name": "mnist1d_cnn"}, (40, 1))
    start = time.perf_counter()
    gram = kernel(x)
    return {
        "model": "mnist1d_cnn",
        "examples": n,
        "seconds": time.perf_counter() - start,
        "finite": bool(np.isfinite(gram).all()),
    }


def nngp_kernel(n: int = 5000) -> dict:
    """Seconds for the reference MNIST-1D CNN's n x n NNGP kernel (issue target: <= 60 s for 5000 on 2 cores)."""
    return _kernel_seconds(nngp_fn, n)


def ntk_kernel(n: int = 5000) -> dict:
    """Seconds for the reference MNIST-1D CNN's n x n NTK (issue 27's target: at most twice the
    NNGP's, :func:`nngp_kernel`); the walk yields the NNGP beside it."""
    return _kernel_seconds(ntk_fn, n)


def options() -> dict:
    """Every padding, pooling and head at three shapes (:mod:`benchmarks.options`)."""
    # Imported here: benchmarks.options builds on this module's timers.
    from benchmarks.options import options_table

    return options_table()


SECTIONS = {
    "strategies": strategies,
    "sweep": sweep_vs_torch,
    "conv2d_stride1": conv2d_stride1,
    "conv_speed": conv_speed,
    "fraction_of_peak": fraction_of_peak,
    "locally_connected": locally_connected_and_compile,
    "compile": repeated_sweep_compiles,
    "nngp_kernel": nngp_kernel,
    "ntk_kernel": ntk_kernel,
    "options": options,
}


def run_suite(sections=None, reproduce_dir: str | None = None, progress=print) -> dict:
    results = {"machine": machine()}
    for name in sections or SECTIONS:
        start = time.perf_counter()
        progress(f"bench: {name} ...")
        results[name] = SECTIONS[name]()
        progress(f"bench: {name} done in {time.perf_counter() - start:.0f} s")
    if reproduce_dir:
        path = Path(reproduce_dir) / "timing.json"
        results["reproduce"] = json.loads(path.read_text()) if path.exists() else {"error": f"no {path}"}
    return results


def summary_lines(results: dict) -> list[str]:
    lines = [f"machine: {results['machine']}"]
    for row in results.get("strategies", []):
        times = ", ".join(f"{s} {row[f'{s}_ms_per_step']:.2f}" for s in STEP_STRATEGIES)
        lines.append(
            f"strategy {row['model']} x{row['replicas']}: {times} ms/step; auto={row['auto']} ({row['auto_vs_fastest']:.2f}x the fastest)"
        )
    for row in results.get("sweep", []):
        lines.append(
            f"sweep {row['model']} {row['seeds']} seeds x {row['steps']} steps: jax {row['jax_s']:.1f} s ({row['strategy']}), "
            f"torch {row['torch_s']:.1f} s, torch.func {row['torch_func_s']:.1f} s; "
            f"sweep_speedup_vs_torch {row['sweep_speedup_vs_torch']:.2f}x, vs torch.func {row['sweep_speedup_vs_torch_func']:.2f}x"
        )
    for row in results.get("conv2d_stride1", []):
        where = f"2D stride-1 {row['family']} width {row['width']} {row['padding']}"
        if "left_out" in row:
            lines.append(f"{where}: left out ({row['left_out']})")
            continue
        lines.append(
            f"{where} x{row['seeds']}: jax {row['jax_images_per_s']:.0f} images/s ({row['strategy']}, conv_impl {row['conv_impl']}), "
            f"torch {row['torch_images_per_s']:.0f}; images_per_s_vs_torch {row['images_per_s_vs_torch']:.2f}x"
        )
    if "conv_speed" in results:
        c = results["conv_speed"]
        lines.append(
            f"fashion_cnn: jax {c['jax_ms_per_step']:.1f} ms/step, torch {c['torch_ms_per_step']:.1f}; "
            f"images/s vs torch {c['images_per_s_vs_torch']:.2f}x"
        )
    if "fraction_of_peak" in results:
        f = results["fraction_of_peak"]
        lines.append(
            f"{f['model']} batch {f['batch']}: {f['step_flops_per_s'] / 1e9:.1f} GFLOP/s, "
            f"{100 * f['fraction_of_peak']:.0f}% of matmul peak {f['peak_flops_per_s'] / 1e9:.1f} GFLOP/s"
        )
    for row in results.get("locally_connected", []):
        lines.append(
            f"{row['shape']} {row['family']}: {row['ms_per_step']:.2f} ms/step ({row['strategy']}, conv_impl {row['conv_impl']}), "
            f"{row['vs_conv']:.2f}x conv, "
            f"first call {row['first_call_s']:.2f} s"
        )
    if "nngp_kernel" in results:
        k = results["nngp_kernel"]
        lines.append(f"NNGP kernel {k['model']}: {k['examples']} x {k['examples']} in {k['seconds']:.1f} s")
    if "ntk_kernel" in results:
        k = results["ntk_kernel"]
        nngp = results.get("nngp_kernel", {})
        ratio = f" ({k['seconds'] / nngp['seconds']:.2f}x the NNGP's)" if nngp.get("examples") == k["examples"] else ""
        lines.append(f"NTK kernel {k['model']}: {k['examples']} x {k['examples']} in {k['seconds']:.1f} s{ratio}")
    if "compile" in results:
        c = results["compile"]
        lines.append(
            f"repeated sweep: {c['new_cache_entries_on_repeat']} new compilation-cache entries "
            f"({c['first_sweep_s']:.1f} s first, {c['repeat_sweep_s']:.1f} s repeat)"
        )
    if "options" in results:
        lines += _options_lines(results["options"])
    if "reproduce" in results:
        lines.append(f"reproduce: {results['reproduce']}")
    return lines


def _option_name(row: dict) -> str:
    return f"padding {row['padding']}, pooling {row['pooling']}, head {row['head']}"


def _options_lines(table: dict) -> list[str]:
    """One line per shape and family (its slowest row against what its work should cost), then the worst row."""
    lines = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in table["rows"]:
        groups.setdefault((row["shape"], row["family"]), []).append(row)
    for (shape, family), rows in groups.items():
        worst = max(rows, key=lambda r: r["vs_expected"])
        lines.append(
            f"options {shape} {family}: {min(r['ms_per_step'] for r in rows):.2f}-{max(r['ms_per_step'] for r in rows):.2f} "
            f"ms/step over {len(rows)} forms; worst {worst['vs_expected']:.2f}x expected ({_option_name(worst)}: "
            f"{worst['ms_per_step']:.2f} ms, conv_impl {worst['conv_impl']}, {worst['strategy']})"
        )
    w = table["worst_vs_expected"]
    lines.append(f"options worst ratio: {w['vs_expected']:.2f}x expected ({w['shape']} {w['family']}, {_option_name(w)})")
    return lines
