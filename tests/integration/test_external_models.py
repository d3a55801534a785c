"""Models nobody here wrote (external_models.py), through the library: each builds, compiles or is refused
with the message the issue asks for, and no verdict says EXACT while the integer network is not the
model. Plus the generated tables on docs/fidelity.md's subject: a reduced slice of each is recomputed and
must equal the committed figures, and each committed page must be the rendering of its committed JSON."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import external_models as corpus

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _bench(name):
    spec = importlib.util.spec_from_file_location(f"snnc_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("case", [c for c in corpus.CASES if c.family != "qcfs"], ids=lambda c: c.name)
def test_every_case_builds(case, tmp_path):
    for m in case.needs:
        pytest.importorskip(m)
    model, data = corpus.build(case, tmp_path)
    z = np.load(data)
    assert model.is_file() and len(z["x"]) == len(z["y"]) == 360
    if case.data == "digits_u8":
        assert z["x"].dtype == np.uint8 and z["x"].max() == 255


def test_the_default_compile_of_an_onnxruntime_qdq_model_is_refused_with_an_option_that_works(tmp_path):
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.integerize import WeightPrecisionError

    path, _ = corpus.build("ort_relu_cnn_u8s8_pc", tmp_path)
    with pytest.raises(WeightPrecisionError) as e:
        compile_model(path)
    msg = str(e.value)
    assert "layer 'conv1': at T=255" in msg and "--timesteps" in msg
    t_full = max(t for t, b in e.value.suggestions if b >= e.value.needed)
    net, _ = compile_model(path, CompileConfig(timesteps=t_full))
    assert net.timesteps == t_full


def _rows(name):
    return {r.get("case", r.get("model")): r for r in json.loads((RESULTS / f"{name}.json").read_text())
            ["rows" if name != "ort_qdq_fidelity" else "results"]}


def test_external_fidelity_slice_reproduces_and_nothing_exact_is_unfaithful(tmp_path):
    bench = _bench("external_fidelity")
    rows = _rows("external_fidelity")
    for r in rows.values():  # the committed table: EXACT only with every level equal
        if "EXACT" in r.get("verdict", "") and "NOT EXACT" not in r["verdict"] and "SNN = " not in r["verdict"]:
            assert r["levels_mismatched"] == 0 and r["exit_code"] == 0, r["case"]
        if r.get("worst_layer_agreement") is not None and r["worst_layer_agreement"] < 0.8:
            assert r["exit_code"] == 1, r["case"]
    got = bench.run_case(corpus.BY_NAME["brevitas_bnn_qonnx"], tmp_path, None)
    assert got == rows["brevitas_bnn_qonnx"]
    assert (ROOT / "docs" / "external_fidelity.md").read_text() == bench.markdown(list(rows.values()))


def test_fidelity_zoo_slice_reproduces():
    bench = _bench("fidelity_zoo")
    rows = _rows("fidelity_zoo")
    want = rows["zoo round L=2"]
    got = bench.measure(ROOT / "examples" / "digits" / "zoo" / "round_L2.onnx", ROOT / "examples" / "digits" / "test.npz",
                        None)
    assert {"model": "zoo round L=2", **got} == want
    assert (ROOT / "docs" / "fidelity_zoo.md").read_text() == bench.markdown(list(rows.values()))


def test_ort_qdq_table_slice_reproduces(tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    bench = _bench("ort_qdq_fidelity")
    rows = _rows("ort_qdq_fidelity")
    want = rows["ort_digits_mlp_u8s8_pc"]
    from snnc.compiler.api import import_model

    path, data = corpus.build("ort_digits_mlp_u8s8_pc", tmp_path)
    z = np.load(data)
    imp = import_model(path)
    at = next(a for a in want["at"] if a["T"] == want["t_full"])
    assert bench.evaluate(imp, imp.raw, at["T"], z["x"].astype(np.float32), z["y"]) == at
    # the done criterion of issue 13: the SNN within 1 point of onnxruntime at the T the refusal points to
    for r in rows.values():
        best = max(r["at"], key=lambda a: a["T"] if a["T"] == r.get("t_full") else -1)
        assert abs(best["accuracy_snn"] - r["ort_accuracy"]) <= 0.01, r["case"]
    assert (ROOT / "docs" / "ort_qdq_fidelity.md").read_text() == bench.markdown(list(rows.values()))


def test_qonnx_executor_table_slice_reproduces():
    pytest.importorskip("qonnx")
    bench = _bench("qonnx_executors")
    data = json.loads((RESULTS / "qonnx_executors.json").read_text())
    x = np.load(ROOT / "examples" / "digits" / "test.npz")["x"][:16]
    got = bench.run("brevitas_bnn_qonnx", x)
    want = next(r for r in data["results"] if r["model"] == "brevitas_bnn_qonnx")
    for k in ("snnc expand + onnxruntime", "activation Quant steps in float64 (same inputs)"):
        assert got["executors"][k]["values_differing_from_qonnx"] == want["executors"][k]["values_differing_from_qonnx"]
    assert (ROOT / "docs" / "qonnx_executors.md").read_text() == bench.markdown(data["results"])
