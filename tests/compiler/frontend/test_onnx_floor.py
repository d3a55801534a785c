"""The onnx floor: external data must never be read through a symbolic link or from outside the model's
folder. onnx refuses `..` traversal since 1.16 and symbolic links (also in parent components, with
O_NOFOLLOW and a canonical-path containment check) since 1.21.0 (onnx PR #7628, commit e31a583b,
"Checks a filename is not a symlink"; onnx/checker.cc resolve_external_data_location). With onnx 1.20.1
a `link.bin -> /etc/passwd` external file is read into the model. pyproject.toml requires onnx >= 1.21.0;
these tests run the installed onnx through snnc's loader."""

import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from snnc.compiler.errors import SnncError
from snnc.compiler.frontend.onnx_loader import load_model

from snnc_testutil import make_mlp_onnx

REPO = Path(__file__).resolve().parents[3]
FLOOR = (1, 21, 0)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _external(model: onnx.ModelProto, name: str, location: str) -> bytes:
    t = next(t for t in model.graph.initializer if t.name == name)
    data = numpy_helper.to_array(t).tobytes()
    t.ClearField("raw_data")
    del t.float_data[:]
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    e = t.external_data.add()
    e.key, e.value = "length", str(len(data))
    return data


def test_pyproject_requires_an_onnx_that_refuses_symlinks():
    text = (REPO / "pyproject.toml").read_text()
    spec = re.search(r'"onnx>=([0-9.]+)"', text)
    assert spec, "pyproject.toml must pin a floor for onnx"
    assert _version(spec.group(1)) >= FLOOR
    assert _version(onnx.__version__) >= FLOOR


def test_a_symlinked_external_data_file_is_refused(tmp_path):
    secret = tmp_path / "outside" / "secret.bin"
    secret.parent.mkdir()
    m = make_mlp_onnx()
    data = _external(m, "w0", "link.bin")
    secret.write_bytes(data)  # the right size, so only the link itself can be the reason for refusing
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(secret, model_dir / "link.bin")
    onnx.save(m, model_dir / "m.onnx")
    with pytest.raises(SnncError, match="m.onnx") as e:
        load_model(model_dir / "m.onnx")
    assert "symbolic link" in str(e.value) or "symlink" in str(e.value)


def test_a_symlinked_parent_folder_and_dotdot_are_refused(tmp_path):
    m = make_mlp_onnx()
    data = _external(m, "w0", "sub/w.bin")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "w.bin").write_bytes(data)
    (tmp_path / "model").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "model" / "sub")
    onnx.save(m, tmp_path / "model" / "m.onnx")
    with pytest.raises(SnncError, match="m.onnx"):
        load_model(tmp_path / "model" / "m.onnx")
    m2 = make_mlp_onnx()
    _external(m2, "w0", "../real/w.bin")
    onnx.save(m2, tmp_path / "model" / "m2.onnx")
    with pytest.raises(SnncError, match="m2.onnx"):
        load_model(tmp_path / "model" / "m2.onnx")


def test_a_regular_external_file_beside_the_model_loads(tmp_path):
    m = make_mlp_onnx()
    data = _external(m, "w0", "w.bin")
    (tmp_path / "w.bin").write_bytes(data)
    onnx.save(m, tmp_path / "m.onnx")
    got = load_model(tmp_path / "m.onnx")
    w = next(t for t in got.graph.initializer if t.name == "w0")
    assert numpy_helper.to_array(w).tobytes() == data
    np.testing.assert_array_equal(numpy_helper.to_array(w), numpy_helper.to_array(
        next(t for t in make_mlp_onnx().graph.initializer if t.name == "w0")))
