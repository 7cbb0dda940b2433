"""The PyTorch reference: the same models trained by a straightforward loop.

What a researcher would write without JAX: one model per seed, Adam, a
Python loop over minibatches, on the same CPU threads. Architectures match
``research.models``' ``mnist1d_mlp``, ``mnist1d_cnn`` and ``fashion_cnn``
exactly, and :func:`build_lattice` builds the lattice nets of the 2D stride-1
benchmark (conv, locally connected, dense; the parameter counts are compared in
tests/test_benchmarks.py). :func:`train_runs` is the plain loop, one seed after
another; :func:`train_runs_func` is PyTorch's own ensembling (``torch.func``:
the seeds' parameters stacked, ``vmap`` of ``grad``, Adam written out), the
stronger peer for a sweep of many seeds. Needs the optional extra: ``pip install -e .[torch]`` (torch 2.13, CPU).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def _torch():
    try:
        import torch
    except ImportError:
        raise SystemExit("the PyTorch reference needs torch: pip install -e '.[torch]'") from None
    return torch


def build(name: str, seed: int = 0):
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    if name == "mnist1d_mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "mnist1d_cnn":
        return nn.Sequential(
            nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(25 * 5, 10),
        )  # fmt: skip
    if name == "fashion_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
    raise ValueError(f"no PyTorch reference for {name!r}")


def build_lattice(family: str, in_shape, widths, kernel: int, padding: str, seed: int = 0):
    """A 2D :class:`research.models.LatticeNet` with stride 1, ReLU, no pooling and a
    ``global_max`` head, in PyTorch: ``family`` conv, locally_connected or dense,
    ``padding`` SAME (zeros) or CIRCULAR. Channels first, like PyTorch's convs."""
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(seed)
    height, width, channels = in_shape
    if padding not in ("SAME", "CIRCULAR") or kernel % 2 == 0:
        raise ValueError(f"the PyTorch lattice takes an odd kernel and SAME or CIRCULAR padding, got {kernel}, {padding!r}")

    class LocallyConnected2d(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            fan_in = c_in * kernel * kernel
            self.weight = nn.Parameter(torch.randn(height * width, fan_in, c_out) / fan_in**0.5)
            self.bias = nn.Parameter(torch.zeros(c_out, height, width))

        def forward(self, x):
            if padding == "CIRCULAR":
                x = nn.functional.pad(x, (kernel // 2,) * 4, mode="circular")
            cols = nn.functional.unfold(x, kernel, padding=kernel // 2 if padding == "SAME" else 0)
            y = torch.einsum("ncl,lco->nol", cols, self.weight)
            return y.reshape(x.shape[0], -1, height, width) + self.bias

    class Dense2d(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.linear, self.c_out = nn.Linear(height * width * c_in, height * width * c_out), c_out

        def forward(self, x):
            return self.linear(x.flatten(1)).reshape(x.shape[0], self.c_out, height, width)

    def layer(c_in, c_out):
        if family == "conv":
            return nn.Conv2d(
                c_in, c_out, kernel, padding=kernel // 2, padding_mode="circular" if padding == "CIRCULAR" else "zeros"
            )
        if family == "locally_connected":
            return LocallyConnected2d(c_in, c_out)
        if family == "dense":
            return Dense2d(c_in, c_out)
        raise ValueError(f"no PyTorch lattice layer for family {family!r}")

    layers, c_in = [], channels
    for c_out in widths:
        layers += [layer(c_in, c_out), nn.ReLU()]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, 10))


def lattice_step_timer(model, x: np.ndarray, y: np.ndarray, *, steps: int = 3, lr: float = 1e-3) -> Callable[[], float]:
    """A function timing one segment of ``steps`` Adam steps of one lattice model on one
    batch (channels-last ``x``) and returning ms per step, after 2 warm-up steps, as the
    JAX side's segments (``benchmarks.suite._step_timer``)."""
    torch = _torch()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    _step_times(model, opt, xt, yt, steps=0, warmup=2)
    return lambda: 1e3 * sum(_step_times(model, opt, xt, yt, steps=steps, warmup=0)) / steps


def _step_times(model, opt, xt, yt, *, steps: int, warmup: int) -> list[float]:
    """Seconds of each of ``steps`` Adam steps of ``model`` on one batch, after ``warmup`` untimed ones."""
    torch = _torch()
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return times


def channels_first(name: str, x: np.ndarray) -> np.ndarray:
    """Our inputs are channels-last ``(N, *spatial, C)``; PyTorch wants ``(N, C, *spatial)``."""
    return np.moveaxis(x, -1, 1) if name != "mnist1d_mlp" else x


def count_params(name: str) -> int:
    return sum(p.numel() for p in build(name).parameters())


def train_one(name: str, xt, yt, *, seed: int, steps: int, batch: int, lr: float = 1e-2):
    """One seed's model after ``steps`` Adam steps of the plain loop (tensors ``xt``, ``yt``)."""
    torch = _torch()
    n = len(yt)
    model = build(name, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    for step in range(steps):
        i = (step * batch) % (n - batch + 1)
        idx = perm[i : i + batch]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    return model


def _tensors(name: str, x: np.ndarray, y: np.ndarray):
    torch = _torch()
    return torch.from_numpy(np.ascontiguousarray(channels_first(name, x)).astype(np.float32)), torch.from_numpy(
        y.astype(np.int64)
    )


def train_runs(name: str, x: np.ndarray, y: np.ndarray, *, seeds: int, steps: int, batch: int, lr: float = 1e-2) -> float:
    """Wall seconds to train ``seeds`` models one after another for ``steps`` Adam steps each."""
    xt, yt = _tensors(name, x, y)
    start = time.perf_counter()
    for seed in range(seeds):
        train_one(name, xt, yt, seed=seed, steps=steps, batch=batch, lr=lr)
    return time.perf_counter() - start


def train_ensemble(name: str, xt, yt, *, seeds: int, steps: int, batch: int, lr: float = 1e-2) -> dict:
    """``seeds`` models trained together with ``torch.func``: their parameters stacked
    (``stack_module_state``), one ``vmap(grad(...))`` a step over each seed's own batch,
    and Adam (PyTorch's defaults, no weight decay) written out on the stacked tensors.
    The same initial models, batches and optimizer as :func:`train_one`; returns the
    stacked parameters."""
    torch = _torch()
    from torch.func import functional_call, grad, stack_module_state, vmap

    n = len(yt)
    params, _ = stack_module_state([build(name, seed) for seed in range(seeds)])
    params = {k: v.detach() for k, v in params.items()}
    base = build(name, 0).to("meta")
    perms = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(seed)) for seed in range(seeds)])

    def loss(p, xb, yb):
        return torch.nn.functional.cross_entropy(functional_call(base, p, (xb,)), yb)

    grads_of = vmap(grad(loss))
    first = {k: torch.zeros_like(v) for k, v in params.items()}
    second = {k: torch.zeros_like(v) for k, v in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    with torch.no_grad():
        for step in range(steps):
            i = (step * batch) % (n - batch + 1)
            idx = perms[:, i : i + batch]
            t = step + 1
            for k, g in grads_of(params, xt[idx], yt[idx]).items():
                first[k].mul_(beta1).add_(g, alpha=1 - beta1)
                second[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (second[k] / (1 - beta2**t)).sqrt_().add_(eps)
                params[k].addcdiv_(first[k], denom, value=-lr / (1 - beta1**t))
    return params


def train_runs_func(name: str, x: np.ndarray, y: np.ndarray, *, seeds: int, steps: int, batch: int, lr: float = 1e-2) -> float:
    """Wall seconds of :func:`train_ensemble`: ``seeds`` models as one ``torch.func`` ensemble."""
    xt, yt = _tensors(name, x, y)
    start = time.perf_counter()
    train_ensemble(name, xt, yt, seeds=seeds, steps=steps, batch=batch, lr=lr)
    return time.perf_counter() - start


def step_seconds(name: str, x: np.ndarray, y: np.ndarray, *, batch: int, steps: int = 20, lr: float = 1e-3) -> float:
    """Median seconds per training step of one model (after 3 warm-up steps)."""
    torch = _torch()
    model = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt = torch.from_numpy(np.ascontiguousarray(channels_first(name, x[:batch])).astype(np.float32))
    yt = torch.from_numpy(y[:batch].astype(np.int64))
    return float(np.median(_step_times(model, opt, xt, yt, steps=steps, warmup=3)))
