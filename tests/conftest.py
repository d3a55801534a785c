"""Shared fixtures."""

import onnx
import pytest

from snnc_testutil import make_mlp_onnx


@pytest.fixture
def mlp_path(tmp_path):
    p = tmp_path / "mlp.onnx"
    onnx.save(make_mlp_onnx(), p)
    return p
