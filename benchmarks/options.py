"""The options table behind ``cvd bench --section options``: is every option of the lattice
on a fast path?

For each shape of :data:`OPTION_SHAPES` (MNIST-1D, 28x28x1 and 32x32x3) and each family, a
base net (two stride-1 layers, ``SAME`` padding, no pooling, a flatten head) and every
option changed one at a time from it: the padding (``VALID``, ``CIRCULAR``, integer 2), the
pooling after each layer (``max``, ``avg``, ``blur``, ``stride``) and the head
(``global_avg``, ``global_max``): one factor at a time, 10 forms per family and shape
rather than the full product's 60; 70 forms in all (the families per shape: :data:`OPTION_SHAPES`). Each form trains as a study would run it:
``conv_impl=auto`` and ``train.strategy=auto`` (the row says what ``auto`` chose).

Options change the work, not only its form (``VALID`` shrinks every layer, padding 2 grows
it, pooling shrinks the next layer), so each row's step time is read against
``expected_ms``: the larger of the family's fastest step at that shape and this row's
forward multiply-accumulates at the family's best rate (ms per MAC). ``vs_expected`` =
ms / expected_ms is 1.0 for the rows that set it, and large for an option off the fast
path (a slow kernel, a needless copy, a wrong ``auto`` pick); ``vs_fastest`` is the plain
ratio to the family's fastest row. ``worst_vs_expected`` names the worst row.

Timed as the CIFAR-shape section is: every form compiled first, then ``rounds`` rounds each
timing one segment of a few steps of every form of the family and shape in turn (the order
rotated each round), each form's best segment reported.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from benchmarks.suite import _best_interleaved, _step_timer
from research.models import conv_impls, count_macs, count_params, get_model
from research.train.engine import choose_strategy

# Two stride-1 layers of kernel 3 per shape (pooling after each still leaves a feature
# map); the dense family narrower in 2D (a 32x32x16 dense map has 268M parameters).
# ``steps``: a timed segment's steps, so that one lasts tens of milliseconds (a 1D step takes a
# few, and a shorter segment is at the mercy of the scheduler on a shared machine).
# ``families``: every family in 1D; in 2D the conv at both shapes and the locally connected net
# at 32x32x3. The full-kernel conv is left out in 2D (about 1 s a step and a minute to compile per
# form at 28x28: benchmarks/README.md, "Per family at one matched shape"), and so is the dense
# family (a dense layer is one matmul whatever the padding, pooling or head; 0.35-0.95 s a
# step at width 4, and the section's cost is its forms' compiles: "Options" there).
OPTION_SHAPES = {
    "mnist1d_40x1": dict(
        input_shape=(40, 1),
        batch=100,
        steps=12,
        widths=(25, 25),
        dense_widths=(25, 25),
        families=("conv", "full_kernel_conv", "locally_connected", "dense"),
    ),
    "mnist_28x28x1": dict(input_shape=(28, 28, 1), batch=50, steps=3, widths=(16, 16), dense_widths=(4, 4), families=("conv",)),
    "cifar_32x32x3": dict(
        input_shape=(32, 32, 3), batch=50, steps=3, widths=(16, 16), dense_widths=(4, 4), families=("conv", "locally_connected")
    ),
}
BASE = {"padding": "SAME", "pooling": "none", "head": "flatten"}
OPTIONS = {
    # The integer 1 around a 3-tap kernel is SAME's very program (same pads; the structural test
    # in tests/test_benchmarks.py checks it); 2 is the integer padding that grows the layers.
    "padding": ("SAME", "VALID", "CIRCULAR", 2),
    "pooling": ("none", "max", "avg", "blur", "stride"),
    "head": ("flatten", "global_avg", "global_max"),
}


def option_forms() -> list[dict]:
    """The base form, then each option changed one at a time from it (no repeats)."""
    forms = [dict(BASE)]
    for axis, values in OPTIONS.items():
        forms += [{**BASE, axis: value} for value in values if value != BASE[axis]]
    return forms


def families_for(shape_name: str) -> tuple[str, ...]:
    """The families timed at ``shape_name`` (:data:`OPTION_SHAPES`)."""
    return tuple(OPTION_SHAPES[shape_name]["families"])


def _form_fields(shape: dict, family: str, form: dict) -> dict:
    widths = shape["dense_widths"] if family == "dense" else shape["widths"]
    return dict(family=family, widths=widths, kernel_sizes=3, strides=1, **form)


def _expected(rows: list[dict]) -> None:
    """Set each row's ``expected_ms``, ``vs_expected`` and ``vs_fastest`` (rows of one family and shape)."""
    fastest = min(r["ms_per_step"] for r in rows)
    best_rate = min(r["ms_per_step"] / r["macs"] for r in rows)
    for r in rows:
        r["expected_ms"] = max(fastest, best_rate * r["macs"])
        r["vs_expected"] = r["ms_per_step"] / r["expected_ms"]
        r["vs_fastest"] = r["ms_per_step"] / fastest


def _form_timer(shape_name: str, family: str, form: dict) -> tuple[dict, Callable[[], float]]:
    """``(row, segment timer)`` of one form, compiled (:func:`benchmarks.suite._step_timer`)."""
    shape = OPTION_SHAPES[shape_name]
    fields = _form_fields(shape, family, form)
    model = nnx.eval_shape(lambda: get_model("lattice", shape["input_shape"], 10, nnx.Rngs(0), **fields))
    strategy = choose_strategy("auto", model, jax.default_backend())
    first_call, timer = _step_timer("lattice", shape["input_shape"], 1, strategy, shape["batch"], shape["steps"], **fields)
    row = {
        "shape": shape_name,
        "family": family,
        **form,
        "conv_impl": ",".join(sorted(conv_impls(model))) or "-",
        "strategy": strategy,
        "params": count_params(model),
        "macs": count_macs(model),
        "first_call_s": first_call,
    }
    return row, timer


def family_rows(shape_name: str, family: str, rounds: int = 3) -> list[dict]:
    """Every form of ``family`` at ``shape_name``: all compiled first, then timed in interleaved rounds."""
    built = [_form_timer(shape_name, family, form) for form in option_forms()]
    rows = [row for row, _ in built]
    # No pause between segments: PyTorch, whose idle threads it waits out, is not timed here.
    best = _best_interleaved({i: timer for i, (_, timer) in enumerate(built)}, rounds, settle=0.0)
    for i, row in enumerate(rows):
        row["ms_per_step"] = best[i]
    _expected(rows)
    return rows


def options_table(shapes=tuple(OPTION_SHAPES), rounds: int = 3) -> dict:
    """``{"rows": [...], "worst_vs_expected": row}`` over every shape and family."""
    rows = []
    for shape_name in shapes:
        for family in families_for(shape_name):
            rows += family_rows(shape_name, family, rounds)
    worst = max(rows, key=lambda r: r["vs_expected"])
    return {"rows": rows, "worst_vs_expected": worst}
