"""The XLA CPU flag ``research`` sets on import: when it is added, and that it takes effect."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from research import xla_flags

MEASURED = {"jaxlib": "0.10.2"}


def test_added_to_empty_and_to_existing_flags():
    assert xla_flags.flags_with_defaults({}, {**MEASURED, "jax-cuda12-plugin": "0.10.2"}) == xla_flags.CPU_FLAG
    assert xla_flags.flags_with_defaults({}, MEASURED) == xla_flags.CPU_FLAG
    devices = "--xla_force_host_platform_device_count=4"
    assert xla_flags.flags_with_defaults({"XLA_FLAGS": devices}, MEASURED) == f"{devices} {xla_flags.CPU_FLAG}"


@pytest.mark.parametrize(
    "env, version",
    [
        ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}, MEASURED),  # the user's choice wins
        ({xla_flags.OPT_OUT: "0"}, MEASURED),
        ({}, {"jaxlib": "0.11.0"}),  # a jaxlib it was not measured on may not know the flag (XLA aborts on those)
        ({}, {"jaxlib": "0.9.1"}),
        ({}, {"jaxlib": "unknown"}),
        ({}, {}),
        ({}, {"jaxlib": "0.10.2", "jax-cuda12-plugin": "0.11.0"}),  # another XLA build reads XLA_FLAGS too
        ({}, {"jaxlib": "0.10.2", "libtpu": "0.0.30"}),
    ],
)
def test_left_alone(env, version):
    assert xla_flags.flags_with_defaults(env, version) is None


CONV_PROGRAM = """
import research, jax, jax.numpy as jnp
from jax import lax
conv = jax.jit(lambda x, k: lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
text = conv.lower(jnp.ones((50, 32, 32, 64)), jnp.ones((3, 3, 64, 64))).compile().as_text()
print("ynn" if "ynn_fusion" in text else "eigen")
"""


@pytest.mark.skipif(
    xla_flags.flags_with_defaults({}, {"jaxlib": __import__("jaxlib").__version__}) is None, reason="flag not set on this jaxlib"
)
@pytest.mark.parametrize("opt_out, expected", [("1", "eigen"), ("0", "ynn")])
def test_importing_research_moves_convs_off_ynnpack(opt_out, expected):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update({xla_flags.OPT_OUT: opt_out, "JAX_PLATFORMS": "cpu"})
    out = subprocess.run([sys.executable, "-c", CONV_PROGRAM], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == expected


@pytest.mark.parametrize(
    "flags, eigen",
    [
        (xla_flags.CPU_FLAG, True),
        ("--xla_force_host_platform_device_count=4 " + xla_flags.CPU_FLAG, True),
        ("", False),  # jaxlib 0.10's default list includes convolutions
        ("--xla_force_host_platform_device_count=4", False),
        ("--xla_cpu_experimental_ynn_fusion_type=", True),  # YNNPACK off altogether
        ("--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT,LIBRARY_FUSION_TYPE_ELTWISE", True),
        ("--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION", False),
        ("--xla_cpu_experimental_ynn_fusion_type=+LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION", False),
        ("--xla_cpu_experimental_ynn_fusion_type=-LIBRARY_FUSION_TYPE_ELTWISE", False),
    ],
)
def test_convs_on_eigen_reads_the_ynn_setting(flags, eigen):
    assert xla_flags.convs_on_eigen(flags) is eigen


def test_a_backend_already_started_gets_a_warning_not_a_flag(monkeypatch):
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # the backend is up
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv(xla_flags.OPT_OUT, "1")
    monkeypatch.setattr(xla_flags, "_installed", lambda name: "0.10.2" if name == "jaxlib" else None)
    with pytest.warns(UserWarning, match="not applied"):
        xla_flags.configure()
    assert "XLA_FLAGS" not in os.environ
