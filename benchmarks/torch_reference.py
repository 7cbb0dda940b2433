"""The PyTorch reference: the same models trained by a straightforward loop.

What a researcher would write without JAX: one model per seed, Adam, a
Python loop over minibatches, on the same CPU threads. Architectures match
``research.models``' ``mnist1d_mlp``, ``mnist1d_cnn`` and ``fashion_cnn``
exactly (the parameter counts are compared in tests/test_benchmarks.py).
Needs the optional extra: ``pip install -e .[torch]`` (torch 2.13, CPU).
"""

from __future__ import annotations

import time

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


def channels_first(name: str, x: np.ndarray) -> np.ndarray:
    """Our inputs are channels-last ``(N, *spatial, C)``; PyTorch wants ``(N, C, *spatial)``."""
    return np.moveaxis(x, -1, 1) if name != "mnist1d_mlp" else x


def count_params(name: str) -> int:
    return sum(p.numel() for p in build(name).parameters())


def train_runs(name: str, x: np.ndarray, y: np.ndarray, *, seeds: int, steps: int, batch: int, lr: float = 1e-2) -> float:
    """Wall seconds to train ``seeds`` models one after another for ``steps`` Adam steps each."""
    torch = _torch()
    xt = torch.from_numpy(np.ascontiguousarray(channels_first(name, x)).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    n = len(yt)
    start = time.perf_counter()
    for seed in range(seeds):
        model = build(name, seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n, generator=generator)
        for step in range(steps):
            i = (step * batch) % (n - batch + 1)
            idx = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def step_seconds(name: str, x: np.ndarray, y: np.ndarray, *, batch: int, steps: int = 20, lr: float = 1e-3) -> float:
    """Median seconds per training step of one model (after 3 warm-up steps)."""
    torch = _torch()
    model = build(name)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt = torch.from_numpy(np.ascontiguousarray(channels_first(name, x[:batch])).astype(np.float32))
    yt = torch.from_numpy(y[:batch].astype(np.int64))
    times = []
    for step in range(steps + 3):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
        if step >= 3:
            times.append(time.perf_counter() - start)
    return float(np.median(times))
