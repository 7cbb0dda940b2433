"""The benchmarks compare like with like: the PyTorch reference models are ours, parameter for parameter."""

from __future__ import annotations

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
