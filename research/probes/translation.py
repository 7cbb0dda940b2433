"""Translation probes (claims C3, C5): is the network invariant, equivariant, neither?

* ``shift``: accuracy against shift magnitude, averaged over every direction
  (1D: left/right; 2D: the 8 compass directions), circular and zero-fill.
* ``consistency``: % of examples whose top-1 class agrees between two copies
  shifted by independent random offsets (Zhang 2019, "Making convolutional
  networks shift-invariant again", https://arxiv.org/abs/1904.11486).
* ``one_pixel``: P(top-1 changes) under a 1-pixel shift and the mean absolute
  change of the top-1 class probability (Azulay & Weiss 2019, "Why do deep
  convolutional networks generalize so poorly to small image
  transformations?", https://arxiv.org/abs/1805.12177).
* ``equivariance``: for each hidden feature map with spatial axes, the
  relative error ``||f(shift x) - shift f(x)|| / ||f(x)||`` under a circular
  input shift of one output position (the layer's total stride).

Shifts act on stored examples, so zero-fill means background.
"""

from __future__ import annotations

import itertools

import numpy as np

from research.data import shift, shift_each
from research.data.transforms import SHIFT_MODES
from research.probes.base import ProbeOptions, accuracy, probe_examples, register_probe, spatial_shape
from research.train.trained import TrainedRun


def directions(ndim: int) -> list[tuple[int, ...]]:
    """Unit steps in every direction: 2 in 1D, 8 in 2D."""
    return [d for d in itertools.product((-1, 0, 1), repeat=ndim) if any(d)]


def max_shift(run: TrainedRun, options: ProbeOptions) -> int:
    return options.max_shift or max(1, min(spatial_shape(run)) // 4)


@register_probe("shift")
def shift_curves(run: TrainedRun, options: ProbeOptions) -> dict:
    """Test accuracy against the size of a circular or zero-filled shift of the inputs (C3, C5)."""
    x, y = probe_examples(run, options)
    steps = directions(len(spatial_shape(run)))
    magnitudes = list(range(max_shift(run, options) + 1))
    result: dict = {"run_level": ["magnitudes"], "magnitudes": magnitudes}
    base = accuracy(run, x, y)
    for mode in SHIFT_MODES:
        curve = [base] + [
            np.mean([accuracy(run, shift(x, np.multiply(d, m), mode), y) for d in steps], 0) for m in magnitudes[1:]
        ]
        result[f"accuracy_{mode}"] = np.stack(curve).T.tolist()  # (replicas, magnitudes)
    return result


@register_probe("consistency")
def consistency(run: TrainedRun, options: ProbeOptions) -> dict:
    """How often the prediction stays the same under random shifts, overall and on correctly classified examples (C3)."""
    x, y = probe_examples(run, options)
    rng = np.random.default_rng(0)
    m, ndim = max_shift(run, options), len(spatial_shape(run))
    result = {"max_shift": m}
    for mode in SHIFT_MODES:
        a, b = (rng.integers(-m, m + 1, size=(len(x), ndim)) for _ in range(2))
        top_a = run.logits(shift_each(x, a, mode)).argmax(-1)
        top_b = run.logits(shift_each(x, b, mode)).argmax(-1)
        result[f"consistency_{mode}"] = (100.0 * (top_a == top_b).mean(-1)).tolist()
        # Agreement alone rewards a net that is consistently wrong; among the copies it gets right:
        right = top_a == np.asarray(y)[None]
        same = (top_a == top_b) & right
        result[f"consistency_correct_{mode}"] = (100.0 * same.sum(-1) / np.maximum(right.sum(-1), 1)).tolist()
    return result


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@register_probe("one_pixel")
def one_pixel(run: TrainedRun, options: ProbeOptions) -> dict:
    """How often the top-1 prediction changes, and how far its probability moves, under a one-pixel shift (Azulay & Weiss 2019)."""
    x, _ = probe_examples(run, options)
    probs = _softmax(run.logits(x))
    top = probs.argmax(-1)
    top_prob = np.take_along_axis(probs, top[..., None], -1)[..., 0]
    result = {}
    for mode in SHIFT_MODES:
        changed, delta = [], []
        for d in directions(len(spatial_shape(run))):
            shifted = _softmax(run.logits(shift(x, d, mode)))
            changed.append((shifted.argmax(-1) != top).mean(-1))
            delta.append(np.abs(np.take_along_axis(shifted, top[..., None], -1)[..., 0] - top_prob).mean(-1))
        result[f"p_top1_change_{mode}"] = np.mean(changed, 0).tolist()
        result[f"mean_abs_top1_prob_change_{mode}"] = np.mean(delta, 0).tolist()
    return result


def _total_strides(input_spatial: tuple[int, ...], feature_spatial: tuple[int, ...]) -> tuple[int, ...] | None:
    """The stride as the ratio of input to feature size: only for a model without its own
    strides (with VALID padding the ratio is not the stride: 8 -> 4 under a 5-wide kernel)."""
    if len(input_spatial) != len(feature_spatial) or any(i % f for i, f in zip(input_spatial, feature_spatial)):
        return None
    return tuple(i // f for i, f in zip(input_spatial, feature_spatial))


def layer_strides(model, ndim: int) -> list[tuple[int, ...]] | None:
    """Each lattice layer's total stride (its own and every earlier layer's and pooling's
    strides multiplied), from the model; None for a model without lattice layers."""
    layers = getattr(model, "layers", None)
    if not layers:
        return None
    pool_stride = np.ones(ndim, int) if getattr(model, "pooling", "none") == "none" else np.broadcast_to(model.pool_stride, ndim)
    total, out = np.ones(ndim, int), []
    for layer in layers:
        total = total * np.asarray(layer.strides) * pool_stride
        out.append(tuple(int(s) for s in total))
    return out


@register_probe("equivariance")
def equivariance(run: TrainedRun, options: ProbeOptions) -> dict:
    """Per layer, how far the features of a shifted input are from the shifted features, by the layer's stride and by one pixel (C3)."""
    x, _ = probe_examples(run, options, cap=500)
    spatial = spatial_shape(run)
    features = run.features(x)
    unit_shifts = [
        run.features(shift(x, [int(a == axis) for a in range(len(spatial))], "circular")) for axis in range(len(spatial))
    ]
    errors, strides, one_pixel = [], [], []
    own = layer_strides(run.model, len(spatial))
    for layer, f in enumerate(features):
        f_spatial = f.shape[2:-1]
        total = None if not f_spatial else own[layer] if own and len(own) == len(features) else _total_strides(spatial, f_spatial)
        strides.append(list(total) if total else None)
        if total is None:  # no spatial axes, or a size that is not a whole multiple: undefined
            errors.append([float("nan")] * run.num_replicas)
            one_pixel.append([float("nan")] * run.num_replicas)
            continue
        norm = np.maximum(np.linalg.norm(f.reshape(run.num_replicas, -1), axis=-1), 1e-12)
        # A 1-pixel input shift, smaller than the layer's total stride when that is > 1 (Azulay & Weiss
        # 2019): the error against the nearer of the unshifted and the one-cell-rolled feature map.
        one_pixel.append(
            np.mean(
                [
                    np.min(
                        [
                            np.linalg.norm(
                                (unit_shifts[axis][layer] - np.roll(f, k, axis=2 + axis)).reshape(run.num_replicas, -1), axis=-1
                            )
                            / norm
                            for k in (0, 1)
                        ],
                        0,
                    )
                    for axis in range(len(spatial))
                ],
                0,
            ).tolist()
        )
        per_axis = []
        for axis, stride in enumerate(total):
            offset = [0] * len(spatial)
            offset[axis] = stride
            shifted = run.features(shift(x, offset, "circular"))[layer]
            expected = np.roll(f, 1, axis=2 + axis)
            diff = (shifted - expected).reshape(run.num_replicas, -1)
            norm = np.linalg.norm(f.reshape(run.num_replicas, -1), axis=-1)
            per_axis.append(np.linalg.norm(diff, axis=-1) / np.maximum(norm, 1e-12))
        errors.append(np.mean(per_axis, 0).tolist())
    return {
        "run_level": ["layers", "strides"],
        "layers": list(range(len(features))),
        "strides": strides,
        "error": np.asarray(errors).T.tolist(),  # (replicas, layers): shifts by the layer's total stride
        "error_one_pixel": np.asarray(one_pixel).T.tolist(),  # (replicas, layers): 1-pixel input shifts
    }
