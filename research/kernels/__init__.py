"""Infinite-width kernels of the lattice: NNGP and NTK (Novak et al. 2019, "Bayesian deep
convolutional networks with many channels are Gaussian processes",
https://arxiv.org/abs/1810.05148; Lee et al. 2018; Matthews et al. 2018; Jacot et al. 2018,
https://arxiv.org/abs/1806.07572; Arora et al. 2019, https://arxiv.org/abs/1904.11955).

``nngp_fn(model_config, input_shape)`` returns ``k(x1, x2) -> (n1, n2)``: the
covariance of one output unit of the configured network (a ``lattice`` net or an
``mlp``) over random initialisations, as every hidden width goes to infinity.
``ntk_fn`` (same arguments) returns its neural tangent kernel: the limit of the
Jacobian inner product ``J(x1) J(x2)^T`` of that output unit, to which gradient
descent on the MSE is kernel regression (the NTK parameterisation's, see
:mod:`research.kernels.walk`). ``kernels_fn`` returns both from one walk. All walk the
same abstract model the trainer builds, layer by layer (:mod:`research.kernels.walk`):

* a lattice layer maps the per-channel covariance ``K[a, b, p, q]`` (examples a, b
  at positions p, q) to its pre-activations: a conv sums ``K`` over its taps at
  both positions (shared weights correlate every pair of positions); a locally
  connected layer gives the same on the diagonal ``p == q`` and zero elsewhere
  (each position has its own weights); a dense map gives every output position the
  mean of the diagonal, independently; a full-kernel conv is a conv whose taps
  cover the whole input. Weights have variance ``weight_var / fan_in`` (the
  project's LeCun init: ``weight_var = 1``), biases ``bias_var`` (zeros at init: 0);
  the NTK goes through the same map as ``K + NTK``;
* ReLU is the arc-cosine kernel of degree 1 (Cho & Saul 2009), in closed form, and
  multiplies the NTK by the degree-0 one;
* average, blur and strided pooling are linear maps of the positions; max pooling
  and a global-max head have no closed form and are refused;
* a flatten head reads only the diagonal ``p == q``; a global-average head reads
  every pair.

Hence the exact anchor, for both kernels: without pooling (flatten head), conv and
locally connected nets have the same kernel, because every map on the way to the
head needs only the diagonal; a global-average head reads the off-diagonal, where
sharing correlates positions and local connectivity does not.

Memory is bounded: pairs of examples are processed in blocks of :data:`BLOCK`, and
the covariance between different positions is kept only when the architecture
reads it (average or blur pooling, a global-average head); otherwise only the
diagonal ``(n1, n2, *positions)``. Everything is float64 numpy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from research.errors import UserError
from research.kernels.walk import abstract_model, needs_full, walk

BLOCK = 256  # examples per block of pairs
KernelFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PairFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _blocked(one_block, input_shape: Sequence[int], block: int, outputs: int):
    """``kernel(x1, x2=None) -> outputs`` ``(n1, n2)`` arrays from ``one_block`` on blocks of
    pairs; ``kernel(x)`` is the symmetric ``kernel(x, x)``, each block pair computed once."""

    def kernel(x1: np.ndarray, x2: np.ndarray | None = None) -> list[np.ndarray]:
        symmetric = x2 is None
        x1 = np.asarray(x1, np.float64)
        x2 = x1 if symmetric else np.asarray(x2, np.float64)
        if x1.shape[1:] != tuple(input_shape) or x2.shape[1:] != tuple(input_shape):
            raise UserError(f"inputs must have shape (n, {', '.join(map(str, input_shape))}), got {x1.shape} and {x2.shape}")
        out = [np.empty((len(x1), len(x2))) for _ in range(outputs)]
        for i in range(0, len(x1), block):
            for j in range(i if symmetric else 0, len(x2), block):
                for o, value in zip(out, one_block(x1[i : i + block], x2[j : j + block])):
                    o[i : i + block, j : j + block] = value
                    if symmetric and j != i:
                        o[j : j + block, i : i + block] = value.T
        return out

    return kernel


def _build(model_config, input_shape: Sequence[int], weight_var: float, bias_var: float, ntk: bool):
    model = abstract_model(model_config, input_shape)
    block = BLOCK
    if needs_full(model):  # keep a block's (n1, n2, S, S) covariance near 2e7 entries (two of them with the NTK)
        positions = math.prod(model.layers[0].out_spatial)
        block = int(max(8, min(BLOCK, math.sqrt(2e7 / (2 if ntk else 1)) / positions)))

    def one_block(x1, x2):
        cov = walk(model, x1, x2, weight_var, bias_var, ntk)
        return (cov.cross, cov.ntk) if ntk else (cov.cross,)

    return _blocked(one_block, input_shape, block, 2 if ntk else 1)


# CPU seconds per pair of examples per first-layer position (flatten head: the diagonal) or
# per pair of positions (every pair kept), both kernels; measured on the 2-core development
# machine for the MNIST-1D lattice (benchmarks/README.md, "NTK kernels"): 2.5 us / 20 and 75 us / 400.
SECONDS_PER_POSITION = 0.125e-6
SECONDS_PER_POSITION_PAIR = 0.19e-6


def pair_seconds(model_config, input_shape: Sequence[int]) -> float:
    """Planning estimate: CPU seconds :func:`kernels_fn` takes per pair of examples."""
    model = abstract_model(model_config, input_shape)
    if not hasattr(model, "layers"):
        return SECONDS_PER_POSITION
    positions = math.prod(model.layers[0].out_spatial)
    return positions**2 * SECONDS_PER_POSITION_PAIR if needs_full(model) else positions * SECONDS_PER_POSITION


def nngp_fn(model_config, input_shape: Sequence[int], *, weight_var: float = 1.0, bias_var: float = 0.0) -> KernelFn:
    """``k(x1, x2) -> (n1, n2)``: the NNGP kernel of ``model_config`` (a config's ``model``
    section: ``name`` plus fields) on inputs of ``input_shape`` ``(*spatial, channels)``.

    Refuses (one-line UserError) architectures without a closed form: max pooling, a
    global-max head."""
    kernel = _build(model_config, input_shape, weight_var, bias_var, ntk=False)
    return lambda x1, x2=None: kernel(x1, x2)[0]


def ntk_fn(model_config, input_shape: Sequence[int], *, weight_var: float = 1.0, bias_var: float = 0.0) -> KernelFn:
    """``k(x1, x2) -> (n1, n2)``: the NTK of ``model_config``, as :func:`nngp_fn` (same
    arguments, conventions and refusals) gives its NNGP."""
    kernel = _build(model_config, input_shape, weight_var, bias_var, ntk=True)
    return lambda x1, x2=None: kernel(x1, x2)[1]


def kernels_fn(model_config, input_shape: Sequence[int], *, weight_var: float = 1.0, bias_var: float = 0.0) -> PairFn:
    """``k(x1, x2) -> (nngp, ntk)``, both ``(n1, n2)``, from one walk (the NTK's costs the NNGP)."""
    kernel = _build(model_config, input_shape, weight_var, bias_var, ntk=True)
    return lambda x1, x2=None: tuple(kernel(x1, x2))


__all__ = ["BLOCK", "KernelFn", "PairFn", "kernels_fn", "nngp_fn", "ntk_fn", "pair_seconds"]
