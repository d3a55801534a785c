"""A ViT exported from torch compiles training-free to an integer SNN (issue 17): the committed digits
ViT (both exporters) with paper 004's transformer setting (multi-threshold:8, threshold scale 4,
differential coding). Its graded units are exact (every message recomputed from its inputs), they are
placed on the target's [units] processors and listed by ``snnc map``; a target without such processors
refuses the network by name; the SNN's predictions are measured against the float model's."""

from __future__ import annotations

import re

import numpy as np
import pytest

from snnc.backends.reference import simulate
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import MappingError
from snnc.compiler.mapping.report import format_text
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.verify_units import check_units
from snnc.ir import GradedElementwise, GradedFunctionUnit, GradedLayerNorm, GradedMatMul, GradedSoftmax
from snnc_testutil import REPO

DIGITS = REPO / "examples" / "digits"


def _config(**kw):
    return CompileConfig(neuron="multi-threshold", mt_n=8, threshold_scale=4.0, coding="differential", timesteps=2,
                         frac_bits="8", calibration_data=str(DIGITS / "calib.npz"), **kw)


@pytest.fixture(scope="module", params=["legacy", "dynamo"])
def compiled(request):
    model = import_model(DIGITS / f"vit_digits_{request.param}.onnx")
    return model, compile_imported(model, _config(), runner=reference_runner)


def test_the_vit_compiles_to_graded_units_and_signed_mt_populations(compiled):
    _, net = compiled
    kinds = [type(n) for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    depth = 3   # the digits ViT: 3 blocks
    assert kinds.count(GradedLayerNorm) == 2 * depth + 1
    assert kinds.count(GradedMatMul) == 2 * depth and kinds.count(GradedSoftmax) == depth
    assert kinds.count(GradedElementwise) == depth
    assert all(not p.neuron.relu and p.neuron.n == 8 for p in net.populations)
    host = net.metadata["placement"]["host_units"]
    assert host["resource"] == "embedded x86 (Lakemont) processors"
    assert {u["name"] for u in host["units"]} == {n.name for n in net.nodes if isinstance(n, GradedFunctionUnit)}
    text = format_text(net.metadata["placement"])
    assert re.search(r"\d+ graded units on the embedded x86 \(Lakemont\) processors", text)


def test_the_graded_units_are_exact(compiled):
    _, net = compiled
    x = np.load(DIGITS / "test.npz")["x"][:4]
    c = check_units(net, x)
    assert c.units == 19 and c.messages_compared > 0   # 7 LayerNorm, 6 MatMul, 3 softmax, 3 GELU
    assert c.exact, c.mismatched


def test_predictions_against_the_float_model(compiled):
    model, net = compiled
    d = np.load(DIGITS / "test.npz")
    x = d["x"][:60]
    snn = simulate(net, x, "pipelined").predictions()
    ref = model.graph(x).argmax(axis=1)
    assert np.mean(snn == ref) >= 0.9   # measured: 0.99 on the first 100 test images at T = 2 (dynamo)


def test_a_target_without_unit_processors_refuses_by_name(tmp_path):
    src = (REPO / "compiler" / "targets" / "loihi.toml").read_text()
    start = src.index("\n[units]")
    end = src.index("\n[systems]")
    assert start < end
    (tmp_path / "nounits.toml").write_text(src[:start] + src[end:])
    model = import_model(DIGITS / "vit_digits_dynamo.onnx")
    with pytest.raises(MappingError, match=r"target 'loihi' has no processors for graded units \(\[units\].*'ln1' "
                                           r"\(GradedLayerNorm\)"):
        compile_imported(model, _config(target=str(tmp_path / "nounits.toml")), runner=reference_runner)
