"""Shared fixtures."""

import onnx
import pytest

from snnc_testutil import make_mlp_onnx


@pytest.fixture
def mlp_path(tmp_path):
    p = tmp_path / "mlp.onnx"
    onnx.save(make_mlp_onnx(), p)
    return p


WIDE_TOML = """name = "wide"
description = "24-bit weights: integerization nearly lossless (tests of the lowering)"
[numeric]
weight_bits = 24
weight_exp_min = 0
weight_exp_max = 7
state_bits = 62
bias_mant_bits = 40
bias_exp_max = 7
input_bits = 8
[core]
neurons = 1024
input_axons = 4096
output_axons = 4096
synapse_memory_bits = 1048576
[chip]
cores = 128
"""


@pytest.fixture(scope="session")
def wide(tmp_path_factory):
    """A target profile with 24-bit weights, for tests that compare integer levels with the float graph."""
    p = tmp_path_factory.mktemp("targets") / "wide.toml"
    p.write_text(WIDE_TOML)
    return str(p)


@pytest.fixture(scope="session")
def interop_bundles(tmp_path_factory):
    """The three networks the NIR/Sinabs/NeuroBench checks run on (issue 18): the digits CNN, the digits
    ResNet and a QCFS max-pool CNN, compiled for loihi; name -> bundle path."""
    from snnc.compiler.api import compile_to_file
    from snnc_testutil import REPO, make_qcfs_maxpool_cnn

    d = tmp_path_factory.mktemp("interop")
    models = {"cnn": REPO / "examples" / "digits" / "qcfs_cnn.onnx",
              "resnet": REPO / "examples" / "digits" / "resnet_digits.onnx",
              "maxpool": make_qcfs_maxpool_cnn(d / "maxpool_cnn.onnx")}
    out = {}
    for name, m in models.items():
        out[name] = d / f"{name}.snnc"
        compile_to_file(m, out[name])
    return out
