"""XLA flags this package sets before JAX starts its CPU backend.

One flag, for XLA:CPU only: convolutions (``lax.conv_general_dilated``) run on
XLA's own Eigen kernels instead of YNNPACK library fusions; YNNPACK keeps the
dots, elementwise ops and reductions it takes by default::

    --xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION

Why: with jaxlib 0.10 a conv layer, forward and both gradients, runs faster on
Eigen than as a YNNPACK fusion, and so do stride-1 CIFAR-shaped nets with
``lax.conv`` (measured: benchmarks/README.md, "Measurements behind rules in the
code"). The matmul form of convs (CPU's default for small ones) and the
MNIST-1D nets are dots, which this flag leaves alone.

The flag is read once, when JAX creates its backend, so :func:`configure` runs
when ``research`` is imported (``research/__init__.py``), before any
computation, and the sweep's worker processes inherit it. It is added only when

- jaxlib, and any CUDA plugin, is a version it was measured on
  (:data:`MEASURED_JAXLIB`), and no ``libtpu`` is installed: XLA aborts the
  process on a flag it does not know, and the ``-`` (remove from the default
  list) syntax is recent;
- ``XLA_FLAGS`` does not already set ``xla_cpu_experimental_ynn_fusion_type``
  (the user's choice wins);
- ``CVD_XLA_DEFAULTS`` is not ``0`` (the way to measure without it);
- JAX's backend has not started yet (then the flag could not apply: a warning
  says so, and ``XLA_FLAGS``, which run provenance records, is left as it is).

:func:`convs_on_eigen` says whether this process's flags put convs on Eigen;
``Conv.impl`` (``research.models.layers``) uses it: the large-patch rule that
prefers ``lax.conv`` holds only there.
"""

from __future__ import annotations

import os
import sys
import warnings
from importlib import metadata

YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
CONVOLUTION = "LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
CPU_FLAG = f"--{YNN_OPTION}=-{CONVOLUTION}"
# (major, minor) versions of jaxlib on which CPU_FLAG was measured and parses.
MEASURED_JAXLIB = ((0, 10),)
# Other XLA builds in the same process that read XLA_FLAGS: each must be a measured version.
XLA_PLUGINS = ("jax-cuda12-plugin", "jax-cuda13-plugin")
OPT_OUT = "CVD_XLA_DEFAULTS"


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def flags_with_defaults(env: dict[str, str], versions: dict[str, str]) -> str | None:
    """The ``XLA_FLAGS`` value to set, or None to leave ``env`` as it is.

    ``versions``: installed package versions (``jaxlib``, the CUDA plugins, ``libtpu``)."""
    if env.get(OPT_OUT, "1") == "0" or "libtpu" in versions:
        return None
    xla_builds = [versions.get("jaxlib", "none")] + [versions[p] for p in XLA_PLUGINS if p in versions]
    if any(_major_minor(v) not in MEASURED_JAXLIB for v in xla_builds):
        return None
    current = env.get("XLA_FLAGS", "")
    if YNN_OPTION in current:
        return None
    return f"{current} {CPU_FLAG}".strip()


def convs_on_eigen(xla_flags: str | None = None) -> bool:
    """Whether ``xla_flags`` (default: this process's ``XLA_FLAGS``) take convolutions
    away from YNNPACK: :data:`CPU_FLAG`, or a YNN list that leaves them out."""
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    values = [f.split("=", 1)[1] for f in flags.split() if f.startswith(f"--{YNN_OPTION}=")]
    if not values:
        return False  # jaxlib 0.10's default list hands convolutions to YNNPACK
    # (sign, type) per item, as XLA reads them: case-insensitive, the enum prefix optional.
    items = [
        (i[0] if i[0] in "+-" else "", i.lstrip("+-").upper().removeprefix("LIBRARY_FUSION_TYPE_"))
        for i in values[-1].split(",")
        if i
    ]
    convolution = CONVOLUTION.removeprefix("LIBRARY_FUSION_TYPE_")
    if any(sign for sign, _ in items):  # edits of the default list, which has convolutions
        return ("-", convolution) in items
    return ("", convolution) not in items  # a whole list


def _backend_started() -> bool:
    if "jax" not in sys.modules:
        return False
    # Imported here, once JAX is loaded: at the top it would load JAX with every import of research.
    from jax._src import xla_bridge  # private, but the only way to ask; absent: assume not started

    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: False)())


def configure() -> None:
    """Add :data:`CPU_FLAG` to this process's ``XLA_FLAGS`` (and its children's) where it applies."""
    versions = {name: v for name in ("jaxlib", "libtpu", *XLA_PLUGINS) if (v := _installed(name))}
    flags = flags_with_defaults(dict(os.environ), versions)
    if flags is None:
        return
    if _backend_started():
        warnings.warn(
            f"JAX's backend started before research was imported, so {CPU_FLAG} (convs on Eigen, "
            "faster on CPU) is not applied; import research first, or set it in XLA_FLAGS",
            stacklevel=2,
        )
        return
    os.environ["XLA_FLAGS"] = flags
