"""compiler/metadata.py: the Conversion decided once and stored, the typed, versioned LayerRecords
written once and read back through one function (with the dict keys reports and docs name)."""

import numpy as np
import pytest

from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.frontend.float_graph import FGraph, Linear, QuantAct, Relu
from snnc.compiler.metadata import (LAYER_RECORDS_VERSION, Conversion, LayerRecord, MetadataError, conversion_of,
                                    decide_conversion, layer_records, model_conversion, records_metadata)
from snnc.compiler.tools.runner import reference_runner
from snnc.ir import Network
from snnc_testutil import DIGITS_MODEL, REPO, make_mlp_onnx

RELU = REPO / "examples" / "digits" / "relu_cnn.onnx"
CALIB = REPO / "examples" / "digits" / "calib.npz"


def _graph(*acts):
    ops, prev = [], "x"
    for i, a in enumerate(acts):
        ops.append(Linear(f"fc{i}", prev, np.eye(3), np.zeros(3)))
        ops.append(QuantAct(f"q{i}", f"fc{i}", levels=a) if a else Relu(f"r{i}", f"fc{i}"))
        prev = ops[-1].name
    return FGraph("x", (3,), ops, prev)


def test_the_conversion_is_decided_from_the_configuration_and_the_activations():
    assert model_conversion(_graph(4, 4)) is Conversion.QUANTIZED
    assert model_conversion(_graph(4, 2)) is Conversion.MIXED_LEVELS
    assert model_conversion(_graph(None)) is Conversion.TRAINING_FREE
    assert decide_conversion(CompileConfig(), _graph(8, 8)) is Conversion.QUANTIZED
    assert decide_conversion(CompileConfig(), _graph(8, 3)) is Conversion.MIXED_LEVELS
    assert decide_conversion(CompileConfig(neuron="multi-threshold"), _graph(None)) is Conversion.TRAINING_FREE
    assert decide_conversion(CompileConfig(), _graph(None)) is Conversion.QUANTIZED  # its lowering refuses the ReLU
    assert Conversion.MIXED_LEVELS.quantized and not Conversion.TRAINING_FREE.quantized


def test_compiled_bundles_store_the_decision_and_older_ones_derive_it(tmp_path):
    import onnx

    quantized = compile_imported(import_model(DIGITS_MODEL))
    onnx.save(make_mlp_onnx(seed=1, L=[8, 3]), tmp_path / "mixed.onnx")
    mixed = compile_imported(import_model(tmp_path / "mixed.onnx"))
    tf = compile_imported(import_model(RELU), CompileConfig(neuron="multi-threshold", timesteps=2,
                                                            calibration_data=str(CALIB), schedule="pipelined"),
                          runner=reference_runner)
    for net, want in ((quantized, Conversion.QUANTIZED), (mixed, Conversion.MIXED_LEVELS),
                      (tf, Conversion.TRAINING_FREE)):
        assert net.metadata["conversion"] == want.value and conversion_of(net) is want
        older = Network(net.nodes, net.projections, net.timesteps,
                        {k: v for k, v in net.metadata.items() if k != "conversion"}, net.coding)
        assert conversion_of(older) is want   # bundles written before the decision was stored
    with pytest.raises(MetadataError, match="unknown conversion 'spiking'"):
        conversion_of(Network(tf.nodes, tf.projections, tf.timesteps, {"conversion": "spiking"}, tf.coding))


def test_layer_records_round_trip_with_the_metadata_keys():
    r = LayerRecord("conv1", "/0/Conv", "/2/Div", "round", 4, 1.5, 3, [8, 8, 8], ann_macs=4608, v0_mode="half",
                    v0_matched=True, neuron="IFSoftReset")
    d = r.to_dict()
    assert d["lambda"] == 1.5 and "lam" not in d
    assert set(d) == {"layer", "onnx_linear", "onnx_activation", "quantizer", "levels", "lambda", "exponent",
                      "shape", "ann_macs", "v0_mode", "v0_matched", "neuron"}   # optional keys only where they apply
    assert LayerRecord.from_dict(d) == r
    readout = LayerRecord("readout", "/10/Gemm", None, None, None, None, 2, [10], ann_macs=640)
    assert readout.to_dict()["onnx_activation"] is None and "role" not in readout.to_dict()
    with pytest.raises(MetadataError, match="unknown keys \\['colour'\\]"):
        LayerRecord.from_dict({**d, "colour": "red"})
    with pytest.raises(MetadataError, match="exponent must be an int >= 0"):
        LayerRecord("x", None, None, None, None, None, -1, [1])


def test_a_compiled_network_has_one_record_per_layer_read_back_typed():
    net = compile_imported(import_model(DIGITS_MODEL))
    records = layer_records(net)
    assert [r.layer for r in records] == ["conv1", "conv2", "fc1", "readout"]
    assert net.metadata["layers_version"] == LAYER_RECORDS_VERSION
    assert net.metadata["layers"] == [r.to_dict() for r in records]
    assert all(r.ann_macs > 0 for r in records) and records[0].quantizer == "round"
    assert records_metadata(records) == {"layers": net.metadata["layers"], "layers_version": LAYER_RECORDS_VERSION}
    future = Network(net.nodes, net.projections, net.timesteps, {**net.metadata, "layers_version": 99})
    with pytest.raises(MetadataError, match="version 99"):
        layer_records(future)
