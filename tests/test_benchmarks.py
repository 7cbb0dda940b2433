"""The benchmarks compare like with like: the PyTorch reference models are ours, parameter for parameter."""

from __future__ import annotations

from collections import Counter

import pytest
from flax import nnx

from research.models import count_params, get_model

torch_reference = pytest.importorskip("benchmarks.torch_reference")
pytest.importorskip("torch")


@pytest.mark.parametrize("name,shape", [("mnist1d_mlp", (40, 1)), ("mnist1d_cnn", (40, 1)), ("fashion_cnn", (28, 28, 1))])
def test_torch_reference_models_match_ours(name, shape):
    ours = nnx.eval_shape(lambda: get_model(name, shape, 10, nnx.Rngs(0)))
    assert torch_reference.count_params(name) == count_params(ours)


def test_torch_reference_output_shapes():
    import numpy as np

    for name, shape in [("mnist1d_cnn", (40, 1)), ("fashion_cnn", (28, 28, 1))]:
        x = np.zeros((2, *shape), np.float32)
        import torch

        out = torch_reference.build(name)(torch.from_numpy(torch_reference.channels_first(name, x).copy()))
        assert tuple(out.shape) == (2, 10)


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


def test_conv2d_stride1_section_reports_both_conv_forms_against_torch(monkeypatch):
    """The CIFAR-shape section, tiny: each padding's conv in auto's form and as lax.conv,
    timed in interleaved rounds against the same PyTorch net."""
    import time

    from benchmarks import suite

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
