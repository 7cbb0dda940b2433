"""The benchmarks compare like with like: the PyTorch reference models are ours, parameter for parameter."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

from benchmarks import options, suite, torch_reference
from research.models import count_params, get_model

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the torch extra")


@needs_torch
@pytest.mark.parametrize("name,shape", [("mnist1d_mlp", (40, 1)), ("mnist1d_cnn", (40, 1)), ("fashion_cnn", (28, 28, 1))])
def test_torch_reference_models_match_ours(name, shape):
    ours = nnx.eval_shape(lambda: get_model(name, shape, 10, nnx.Rngs(0)))
    assert torch_reference.count_params(name) == count_params(ours)


@needs_torch
def test_torch_reference_output_shapes():
    import numpy as np

    for name, shape in [("mnist1d_cnn", (40, 1)), ("fashion_cnn", (28, 28, 1))]:
        x = np.zeros((2, *shape), np.float32)
        import torch

        out = torch_reference.build(name)(torch.from_numpy(torch_reference.channels_first(name, x).copy()))
        assert tuple(out.shape) == (2, 10)


@needs_torch
@pytest.mark.parametrize("family", ["conv", "locally_connected", "dense"])
@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR"])
def test_torch_lattice_matches_ours(family, padding):
    """The 2D stride-1 benchmark's PyTorch nets: our parameter count, and logits of the right shape."""
    import numpy as np
    import torch

    fields = dict(family=family, widths=(4, 5), kernel_sizes=3, strides=1, padding=padding, head="global_max")
    ours = nnx.eval_shape(lambda: get_model("lattice", (6, 6, 3), 10, nnx.Rngs(0), **fields))
    theirs = torch_reference.build_lattice(family, (6, 6, 3), (4, 5), 3, padding)
    assert sum(p.numel() for p in theirs.parameters()) == count_params(ours)
    assert tuple(theirs(torch.zeros(2, 3, 6, 6)).shape) == (2, 10)
    x = np.zeros((2, 6, 6, 3), np.float32)
    assert torch_reference.lattice_step_timer(theirs, x, np.zeros(2, np.int64), steps=1)() > 0


@needs_torch
def test_torch_func_ensemble_trains_as_the_plain_loop_does():
    """The ``torch.func`` peer is the plain loop's training, batched: each seed's
    parameters after a few steps equal that seed's plain-loop model (Adam written out
    equals ``torch.optim.Adam``)."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 40, 1)).astype(np.float32), rng.integers(0, 10, 200)
    xt, yt = torch_reference._tensors("mnist1d_cnn", x, y)
    stacked = torch_reference.train_ensemble("mnist1d_cnn", xt, yt, seeds=2, steps=6, batch=50)
    for seed in range(2):
        plain = torch_reference.train_one("mnist1d_cnn", xt, yt, seed=seed, steps=6, batch=50)
        for key, value in plain.state_dict().items():
            np.testing.assert_allclose(stacked[key][seed].numpy(), value.numpy(), rtol=1e-4, atol=1e-5)


@needs_torch
def test_conv2d_stride1_section_reports_both_conv_forms_against_torch(monkeypatch):
    """The CIFAR-shape section, tiny: each padding's conv in auto's form and as lax.conv,
    timed in interleaved rounds against the same PyTorch net."""
    import time

    sections = []  # per padding, every timer call: (key, the ms per step it returned, the call's wall-clock ms)
    original = suite._best_interleaved

    def spied(timers, rounds):
        calls = []
        sections.append(calls)

        def timed(key, timer):
            def call():
                start = time.perf_counter()
                ms_per_step = timer()
                calls.append((key, ms_per_step, 1e3 * (time.perf_counter() - start)))
                return ms_per_step

            return call

        return original({key: timed(key, timer) for key, timer in timers.items()}, rounds)

    monkeypatch.setattr(suite, "_best_interleaved", spied)
    monkeypatch.setattr(suite, "SETTLE_S", 0.0)  # the pause steadies the timings; nothing here reads them
    batch, steps = 4, 3  # the section times segments of 3 steps
    rows = suite.conv2d_stride1(widths=(2,), seeds=(1,), batch=batch, rounds=2, families=("conv",))
    assert [(r["padding"], r["conv_impl_asked"]) for r in rows] == [
        ("SAME", "auto"),
        ("SAME", "lax"),
        ("CIRCULAR", "auto"),
        ("CIRCULAR", "lax"),
    ]
    assert all(r["conv_impl"] == "lax" and r["strategy"] == "dispatch" for r in rows if r["conv_impl_asked"] == "lax")
    # Interleaved: per padding, PyTorch and both JAX forms, each timed once a round.
    assert [sorted(Counter(str(key) for key, _, _ in calls).items()) for calls in sections] == [
        [("0", 2), ("1", 2), ("torch", 2)]
    ] * 2
    for calls in sections:
        # Every timer returns ms per step: its 3 steps take at most the call's wall-clock time,
        # and not a thousandth of it (as seconds would). No bound on how fast this machine is.
        for key, ms_per_step, wall_ms in calls:
            assert wall_ms / 100 < steps * ms_per_step <= wall_ms, (key, ms_per_step, wall_ms)
    for i, r in enumerate(rows):
        best = {key: min(ms for k, ms, _ in sections[i // 2] if k == key) for key in ("torch", 0, 1)}
        assert (
            r["images_per_s_vs_torch"] == pytest.approx(r["jax_images_per_s"] / r["torch_images_per_s"])
            and r["jax_ms_per_step"] > 0
        )
        # both sides in images per second, from their timers' best ms per step
        assert r["jax_ms_per_step"] == best[i % 2]
        assert r["jax_images_per_s"] == pytest.approx(1e3 * r["seeds"] * batch / r["jax_ms_per_step"])
        assert r["torch_images_per_s"] == pytest.approx(1e3 * batch / best["torch"])


def _conv_kinds(nets: dict[str, tuple[tuple[int, ...], dict]]) -> set[tuple[str, bool]]:
    """Every convolution of the compiled training gradients of lattice nets (``name: (input
    shape, fields)``; forward, input and kernel gradients; one program, so one compile) as
    ``(dim_labels, window reversed)``: what decides whether XLA CPU runs it on its Eigen
    kernels or as a naive loop."""
    models = {
        name: nnx.eval_shape(lambda s=shape, f=f: get_model("lattice", s, 5, nnx.Rngs(0), conv_impl="lax", **f))
        for name, (shape, f) in nets.items()
    }
    graphdefs, params = {}, {}
    for name, model in models.items():
        graphdefs[name], params[name] = nnx.split(model)

    def loss(params):
        total = 0.0
        for name, (shape, _) in nets.items():
            logits = nnx.merge(graphdefs[name], params[name])(jnp.ones((4, *shape)))
            total += optax.softmax_cross_entropy_with_integer_labels(logits, jnp.zeros((4,), jnp.int32)).mean()
        return total

    text = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
    convs = [line for line in text.splitlines() if re.search(r"= \S+ convolution\(", line)]
    # forward and kernel gradient of each layer, the input gradient of all but the first
    assert len(convs) == sum(3 * len(f["widths"]) - 1 for _, f in nets.values()), text
    return {(re.search(r"dim_labels=([^,\s]+)", line).group(1), "rhs_reversal" in line) for line in convs}


@pytest.mark.parametrize("input_shape", [(12, 2), (8, 8, 2)], ids=["1d", "2d"])
def test_every_option_compiles_to_the_same_kind_of_conv_as_same_padding(input_shape):
    """Issue 30: each padding, pooling and head of the options table (and a padding of 3)
    compiles its convs as SAME does: channels-last, window not reversed (Eigen's kind). An
    integer padding of 2 around a 3-tap kernel grew the output past the input, and XLA
    swapped the kernel gradient's operands into a reversed-window conv that ran as a naive
    loop, 20x slower."""
    base = dict(family="conv", widths=(3, 3), kernel_sizes=3, strides=1)
    spatial = "".join(str(i) for i in range(len(input_shape) - 1))
    eigen = {(f"b{spatial}f_{spatial}io->b{spatial}f", False)}
    assert _conv_kinds({"SAME": (input_shape, {**base, **options.BASE})}) == eigen
    forms = options.option_forms()[1:] + [{**options.BASE, "padding": p} for p in (1, 3)]
    assert _conv_kinds({str(form): (input_shape, {**base, **form}) for form in forms}) == eigen


def test_options_expected_time_allows_for_each_forms_work():
    """A row is read against the larger of its family's fastest step and its own MACs at the
    family's best rate: more work is not a slow path, a slow kernel is."""
    rows = [
        {"ms_per_step": 10.0, "macs": 100},  # the base
        {"ms_per_step": 10.0, "macs": 25},  # pooled: a quarter of the work, no faster (overheads)
        {"ms_per_step": 30.0, "macs": 400},  # no pooling, 4x the work at a better rate
        {"ms_per_step": 200.0, "macs": 200},  # off the fast path: twice the base's work, 20x its time
    ]
    options._expected(rows)
    assert [r["expected_ms"] for r in rows] == pytest.approx([10.0, 10.0, 30.0, 15.0])
    assert [r["vs_expected"] for r in rows] == pytest.approx([1.0, 1.0, 1.0, 200.0 / 15.0])
    assert [r["vs_fastest"] for r in rows] == pytest.approx([1.0, 1.0, 3.0, 20.0])


def test_options_section_times_every_form_of_a_family_in_interleaved_rounds(monkeypatch):
    """The options section, tiny: one row per form (the base, then each option changed alone),
    each with auto's conv form and strategy, timed in rounds over all the family's forms;
    the summary prints the worst ratio."""
    calls = []
    original = suite._best_interleaved

    def spied(timers, rounds, settle):
        calls.append((len(timers), rounds, settle))
        return original(timers, rounds, settle)

    monkeypatch.setattr(options, "_best_interleaved", spied)
    monkeypatch.setitem(
        options.OPTION_SHAPES,
        "tiny_1d",
        dict(input_shape=(12, 1), batch=4, steps=3, widths=(2, 2), dense_widths=(2, 2), families=("conv",)),
    )
    monkeypatch.setattr(
        options, "OPTIONS", {"padding": ("SAME", 2), "pooling": ("none", "max"), "head": ("flatten", "global_max")}
    )
    table = options.options_table(shapes=("tiny_1d",), rounds=1)
    forms = options.option_forms()
    assert forms == [options.BASE] + [
        {**options.BASE, **change} for change in ({"padding": 2}, {"pooling": "max"}, {"head": "global_max"})
    ]
    assert calls == [(4, 1, 0.0)]
    assert [{k: r[k] for k in options.BASE} for r in table["rows"]] == forms
    assert all(r["conv_impl"] == "matmul" and r["strategy"] == "scan" and r["ms_per_step"] > 0 for r in table["rows"])
    assert min(r["vs_expected"] for r in table["rows"]) == 1.0
    assert table["worst_vs_expected"] == max(table["rows"], key=lambda r: r["vs_expected"])
    lines = suite.summary_lines({"machine": {}, "options": table})
    assert lines[-1].startswith(f"options worst ratio: {table['worst_vs_expected']['vs_expected']:.2f}x expected (tiny_1d conv")
