"""Training-step time of each layer family at one matched shape.

    python -m benchmarks.step_time [--json] [--steps 200]

For every family of the lattice, the same network geometry (so every hidden
activation has the same shape) trains one replica with the engine's
dispatched step and with ``lax.scan``; reports parameters, first-call
(compile) latency and ms/step, and each family's step time as a ratio to the
conv's, all measured in this one process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
from flax import nnx

from research.config import default_config
from research.models import FAMILIES, conv_impls, count_params, get_model
from research.train.engine import Engine
from research.train.optim import build_optimizer

SHAPES = {
    # MNIST-1D CNN geometry with circular padding, so that full_kernel_conv matches too.
    "mnist1d_cnn_1d": dict(
        input_shape=(40, 1), batch=100, fields=dict(widths=(25, 25, 25), kernel_sizes=(5, 3, 3), strides=2, padding="CIRCULAR")
    ),
    # A Fashion-MNIST-sized 2D net.
    "fashion_2d": dict(
        input_shape=(28, 28, 1), batch=128, fields=dict(widths=(32, 64), kernel_sizes=3, strides=2, padding="CIRCULAR")
    ),
}


def measure(shape_name: str, family: str, steps: int) -> dict:
    spec = SHAPES[shape_name]
    model = get_model("lattice", spec["input_shape"], 10, nnx.Rngs(0), family=family, **spec["fields"])
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = default_config().optimizer
    engine = Engine(graphdef, build_optimizer(optimizer, steps), spec["batch"], chunk=steps)
    n = spec["batch"] * steps
    x = jax.random.normal(jax.random.PRNGKey(0), (n, *spec["input_shape"]))
    y = jax.random.randint(jax.random.PRNGKey(1), (n,), 0, 10)
    state = jax.tree.map(lambda a: a[None], engine.init_replica(params, 0, 1e-3))
    perms = engine.permutations(state, 0, n)
    result = {
        "shape": shape_name,
        "family": family,
        "conv_impl": ",".join(sorted(conv_impls(model))) or "-",
        "params": count_params(model),
    }
    for strategy in ("dispatch", "scan"):
        current = jax.tree.map(jnp.copy, state)  # run_steps donates its input
        start = time.perf_counter()
        current = jax.block_until_ready(engine.run_steps(current, x, y, perms, 0, steps, strategy))
        result[f"{strategy}_first_call_s"] = time.perf_counter() - start
        best = math.inf
        for _ in range(2):
            start = time.perf_counter()
            current = jax.block_until_ready(engine.run_steps(current, x, y, perms, 0, steps, strategy))
            best = min(best, time.perf_counter() - start)
        result[f"{strategy}_ms_per_step"] = 1e3 * best / steps
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timed call (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = [measure(shape, family, args.steps) for shape in SHAPES for family in FAMILIES]
    for row in rows:
        conv = next(r for r in rows if r["shape"] == row["shape"] and r["family"] == "conv")
        best = min(row["dispatch_ms_per_step"], row["scan_ms_per_step"])
        row["best_vs_conv"] = best / min(conv["dispatch_ms_per_step"], conv["scan_ms_per_step"])
    machine = {
        "backend": jax.default_backend(),
        "devices": str(jax.devices()),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
    }
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(f"# {machine}")
    print(
        "| shape | family | conv_impl | params | dispatch ms/step | scan ms/step | best / conv best | compile+first call s (dispatch, scan) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['family']} | {r['conv_impl']} | {r['params']} | {r['dispatch_ms_per_step']:.2f} | {r['scan_ms_per_step']:.2f} | "
            f"{r['best_vs_conv']:.2f} | {r['dispatch_first_call_s']:.2f}, {r['scan_first_call_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
