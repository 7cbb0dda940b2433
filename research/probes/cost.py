"""Cost profile (C4): parameters, FLOPs, measured speed and fraction of peak.

For the run's model at its training batch size: FLOPs of the compiled forward
pass and of one Adam training step from XLA's cost analysis; the measured
step time and examples/s; and the achieved FLOP/s as a fraction of the FLOP/s
of a large float32 matmul measured in the same process on the same device.
Timings are medians over 5 repeats (their spread reported beside them), so one
noisy burst does not decide them. ``scaling`` measures how the
training step's throughput scales with the batch size (1 to 1024): what
parallelism buys, as opposed to how efficient each kernel is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from research.models import count_macs, count_params, im2col
from research.probes.base import ProbeOptions, register_probe
from research.train.trained import TrainedRun

PEAK_MATMUL_SIZE = 1024
SCALING_BATCHES = (1, 16, 256, 1024)


def xla_flops(compiled) -> float:
    """FLOPs that XLA's cost analysis reports for a compiled function."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", float("nan")))


@contextmanager
def whole_batch_patches() -> Iterator[None]:
    """Trace im2col convs without slicing the batch. XLA's cost analysis counts the body of a
    ``lax.map`` / ``scan`` once, so a conv computed a slice of examples at a time would count as
    one slice. Traces are dropped on both sides, so the timed program slices as training does."""
    saved = im2col.PATCH_CHUNK_BYTES
    im2col.PATCH_CHUNK_BYTES = 2**62
    jax.clear_caches()
    try:
        yield
    finally:
        im2col.PATCH_CHUNK_BYTES = saved
        jax.clear_caches()


def counted_flops(jitted, *args) -> float:
    """FLOPs of ``jitted(*args)`` by XLA's cost analysis, every batch slice counted."""
    with whole_batch_patches():
        return xla_flops(jitted.lower(*args).compile())


def median_seconds(fn: Callable[[], object], *, min_time: float = 0.2, repeats: int = 5) -> float:
    """Median seconds per call of ``fn`` (which must block until done)."""
    return float(np.median(timing_samples(fn, min_time=min_time, repeats=repeats)))


def timing_samples(fn: Callable[[], object], *, min_time: float = 0.2, repeats: int = 5) -> list[float]:
    """``repeats`` measurements of seconds per call of ``fn``, each over enough calls to last ``min_time``."""
    fn()
    fn()  # compile and warm up
    calls = 1
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return samples


def peak_matmul_flops(size: int = PEAK_MATMUL_SIZE) -> float:
    """FLOP/s of a ``size`` x ``size`` float32 matmul on the default device."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul)
    seconds = median_seconds(lambda: matmul(a, b).block_until_ready())
    return 2.0 * size**3 / seconds


def training_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation):
    def loss_fn(params, x, y):
        logits = nnx.merge(graphdef, params)(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(params, opt_state, x, y):
        grads = jax.grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step


def profile_model(model: nnx.Module, params: nnx.State, x: jax.Array, y: jax.Array, peak: float | None = None) -> dict:
    """Cost numbers of one model (one replica's ``params``) on one batch."""
    graphdef = nnx.graphdef(model)
    forward = jax.jit(lambda p, x: nnx.merge(graphdef, p)(x))
    tx = optax.adam(1e-3)
    opt_state = tx.init(params)
    step = jax.jit(training_step(graphdef, tx))
    forward_flops = counted_flops(forward, params, x)
    step_flops = counted_flops(step, params, opt_state, x, y)
    forward_s = median_seconds(lambda: forward(params, x).block_until_ready())
    samples = timing_samples(lambda: jax.block_until_ready(step(params, opt_state, x, y)))
    step_s = float(np.median(samples))
    peak = peak or peak_matmul_flops()
    return {
        "family": getattr(model, "family", "mlp"),
        "batch_size": int(x.shape[0]),
        "num_params": count_params(model),
        "macs_per_example": count_macs(model),
        "forward_flops": forward_flops,
        "step_flops": step_flops,
        "forward_s": forward_s,
        "step_s": step_s,
        "step_s_min": float(np.min(samples)),
        "step_s_max": float(np.max(samples)),
        "examples_per_s": x.shape[0] / step_s,
        "step_flops_per_s": step_flops / step_s,
        "peak_flops_per_s": peak,
        "fraction_of_peak": step_flops / step_s / peak,
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
    }


def throughput_by_batch(model: nnx.Module, params: nnx.State, x: jax.Array, y: jax.Array, batches=SCALING_BATCHES) -> dict:
    """Training-step examples/s (median of 5) at each batch size, the examples tiled to fill it."""
    graphdef, tx = nnx.graphdef(model), optax.adam(1e-3)
    step = jax.jit(training_step(graphdef, tx))
    opt_state = tx.init(params)
    rates = []
    for batch in batches:
        reps = -(-batch // x.shape[0])
        xb, yb = jnp.concatenate([x] * reps)[:batch], jnp.concatenate([y] * reps)[:batch]
        seconds = median_seconds(lambda xb=xb, yb=yb: jax.block_until_ready(step(params, opt_state, xb, yb)), min_time=0.05)
        rates.append(batch / seconds)
    # A dict, not lists beside the scalars: lists in a probe result are read as one value per replica.
    return {"scaling": {"batch_sizes": list(batches), "examples_per_s": rates}}


@register_probe("cost")
def cost(run: TrainedRun, options: ProbeOptions) -> dict:
    """FLOPs and parameters per example, train-step time (5 timings), throughput from batch 1 to 1024, fraction of a measured matmul peak (C4)."""
    batch = int(run.config.train.batch_size) if run.config is not None else 100
    reps = -(-batch // len(run.x_test))
    x = jnp.asarray(run.normalize(np.concatenate([run.x_test] * reps)[:batch]))
    y = jnp.asarray(np.concatenate([run.y_test] * reps)[:batch])
    params = jax.tree.map(lambda a: a[0], run.params)
    return {**profile_model(run.model, params, x, y), **throughput_by_batch(run.model, params, x, y)}
