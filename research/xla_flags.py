"""XLA flags this package sets before JAX starts its CPU backend.

One flag, for XLA:CPU only: convolutions (``lax.conv_general_dilated``) run on
XLA's own Eigen kernels instead of YNNPACK library fusions; YNNPACK keeps the
dots, elementwise ops and reductions it takes by default::

    --xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION

Why, measured on the 2-core development machine with jaxlib 0.10.2
(benchmarks/README.md, "Conv speed at CIFAR shapes"): one 3x3 conv layer on a
batch of 50 32x32x64 images, forward and both gradients, took 134-137 ms as a
YNNPACK fusion and 80-94 ms on Eigen (PyTorch's oneDNN: 73 ms); whole stride-1
CIFAR-shaped nets with ``conv_impl=lax`` went from 0.29-0.82x PyTorch's images/s
to 0.79-1.21x. The matmul form of convs (CPU's default) and the MNIST-1D nets
are dots, which this flag leaves alone.

The flag is read once, when JAX creates its CPU client, so :func:`configure`
runs when ``research`` is imported (``research/__init__.py``), before any
computation. It is added only when

- jaxlib is a version it was measured on (:data:`MEASURED_JAXLIB`): XLA aborts
  the process on a flag it does not know, and the ``-`` (remove from the
  default list) syntax is recent;
- ``XLA_FLAGS`` does not already set ``xla_cpu_experimental_ynn_fusion_type``
  (the user's choice wins);
- ``CVD_XLA_DEFAULTS`` is not ``0`` (the way to measure without it).

If JAX's backend already started before ``research`` was imported, the flag
has no effect (and does no harm).
"""

from __future__ import annotations

import os
from importlib import metadata

YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
CPU_FLAG = f"--{YNN_OPTION}=-LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
# (major, minor) versions of jaxlib on which CPU_FLAG was measured and parses.
MEASURED_JAXLIB = ((0, 10),)
OPT_OUT = "CVD_XLA_DEFAULTS"


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def flags_with_defaults(env: dict[str, str], jaxlib_version: str) -> str | None:
    """The ``XLA_FLAGS`` value to set, or None to leave ``env`` as it is."""
    if env.get(OPT_OUT, "1") == "0" or _major_minor(jaxlib_version) not in MEASURED_JAXLIB:
        return None
    current = env.get("XLA_FLAGS", "")
    if YNN_OPTION in current:
        return None
    return f"{current} {CPU_FLAG}".strip()


def configure() -> None:
    """Add :data:`CPU_FLAG` to this process's ``XLA_FLAGS`` (and its children's) where it applies."""
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return
    flags = flags_with_defaults(dict(os.environ), version)
    if flags is not None:
        os.environ["XLA_FLAGS"] = flags
