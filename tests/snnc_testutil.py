"""Test helpers: tiny ONNX models built with onnx.helper (no torch needed), paths to the examples."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def qcfs_nodes(prefix: str, x: str, out: str, lam: float, L: int, mode: str = "round", const_nodes: bool = False):
    """The papers' activation as torch's legacy exporter spells it: Mul, Div, [Add], Floor|Ceil, Clip, Mul, Div."""
    inits, nodes = [], []

    def c(name, val):
        if const_nodes:
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(val, np.float32), name)))
        else:
            inits.append(numpy_helper.from_array(np.array(val, np.float32), name))
        return name

    p = prefix
    nodes.append(helper.make_node("Mul", [x, c(f"{p}_L", float(L))], [f"{p}_m"], name=f"{p}_mul"))
    nodes.append(helper.make_node("Div", [f"{p}_m", c(f"{p}_lam", lam)], [f"{p}_d"], name=f"{p}_div"))
    v = f"{p}_d"
    if mode == "round":
        nodes.append(helper.make_node("Add", [v, c(f"{p}_half", 0.5)], [f"{p}_a"], name=f"{p}_add"))
        v = f"{p}_a"
    nodes.append(helper.make_node("Ceil" if mode == "ceil" else "Floor", [v], [f"{p}_q"], name=f"{p}_q"))
    nodes.append(helper.make_node("Clip", [f"{p}_q", c(f"{p}_lo", 0.0), c(f"{p}_hi", float(L))], [f"{p}_c"], name=f"{p}_clip"))
    nodes.append(helper.make_node("Mul", [f"{p}_c", f"{p}_lam"], [f"{p}_m2"], name=f"{p}_mul2"))
    nodes.append(helper.make_node("Div", [f"{p}_m2", f"{p}_L"], [out], name=f"{p}_div2"))
    return nodes, inits


def make_mlp_onnx(seed=0, L=4, mode="round", hidden=(12, 8), n_in=6, n_out=3, const_nodes=False, opset=17) -> onnx.ModelProto:
    """Input (N, n_in) -> [Gemm -> QCFS]* -> Gemm readout. ``L``: one L for every activation, or one per
    hidden layer (mixed levels)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev, width = "x", n_in
    for i, h in enumerate(hidden):
        w = rng.normal(0, 1 / np.sqrt(width), (h, width)).astype(np.float32)
        b = rng.normal(0, 0.1, h).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], name=f"gemm{i}", transB=1))
        qn, qi = qcfs_nodes(f"act{i}", f"g{i}", f"a{i}", lam=float(rng.uniform(0.5, 2.0)),
                            L=L[i] if isinstance(L, (tuple, list)) else L, mode=mode, const_nodes=const_nodes)
        nodes += qn
        inits += qi
        prev, width = f"a{i}", h
    w = rng.normal(0, 1 / np.sqrt(width), (n_out, width)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "wo"), numpy_helper.from_array(np.zeros(n_out, np.float32), "bo")]
    nodes.append(helper.make_node("Gemm", [prev, "wo", "bo"], ["y"], name="readout_gemm", transB=1))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


DIGITS_MODEL = REPO / "examples" / "digits" / "qcfs_cnn.onnx"
DIGITS_DATA = REPO / "examples" / "digits" / "test.npz"


def load_example_models_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("snnc_examples_qcfs", REPO / "examples" / "models" / "qcfs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def assert_same_run(ref, got) -> None:
    """Two SimResults agree spike for spike, count for count and on every readout value."""
    import numpy as np

    for name, train in ref.spikes.items():
        assert got.spikes[name].shape == train.shape, name
        bad = np.argwhere(got.spikes[name] != train)
        assert bad.size == 0, f"{name}: spike trains differ at (t, b, ...) {bad[:3].tolist()}"
    for name, c in ref.counts.items():
        np.testing.assert_array_equal(got.counts[name], c, err_msg=name)
    for name, r in ref.readout.items():
        np.testing.assert_array_equal(got.readout[name], r, err_msg=name)

DIGITS_ZOO = REPO / "examples" / "digits" / "zoo"


def zoo_model(quantizer: str, L: int):
    """A trained digits model of the zoo (examples/digits/zoo/{quantizer}_L{L}.onnx)."""
    return DIGITS_ZOO / f"{quantizer}_L{L}.onnx"


def brevitas_cnn(bits=(3, 3)):
    """A small Brevitas CNN (QuantConv2d 4-bit weights, QuantReLU with ``bits`` per activation,
    AvgPool, QuantLinear) on (N, 1, 8, 8), activation scales calibrated on a few random batches.
    Returns (model in eval mode, torch). Skips the test when brevitas / onnxoptimizer are missing."""
    import pytest

    pytest.importorskip("brevitas")
    pytest.importorskip("onnxoptimizer")
    torch = pytest.importorskip("torch")
    from brevitas.nn import QuantConv2d, QuantLinear, QuantReLU

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = QuantConv2d(1, 4, 3, weight_bit_width=4, bias=True, padding=1)
            self.r1 = QuantReLU(bit_width=bits[0])
            self.c2 = QuantConv2d(4, 6, 3, weight_bit_width=4, bias=True)
            self.r2 = QuantReLU(bit_width=bits[1])
            self.pool = torch.nn.AvgPool2d(2)
            self.fc = QuantLinear(6 * 3 * 3, 5, bias=True, weight_bit_width=4)

        def forward(self, x):
            x = self.pool(self.r2(self.c2(self.r1(self.c1(x)))))
            return self.fc(x.flatten(1))

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():  # calibrate the activation scales a little, so levels are used
        net.train()
        for _ in range(3):
            net(torch.randn(16, 1, 8, 8))
    return net.eval(), torch


def export_brevitas(net, torch, fmt: str, path) -> None:
    """Brevitas' QONNX (``fmt="qonnx"``) or QCDQ (``"qcdq"``) export of ``net`` to ``path``."""
    import warnings

    from brevitas.export import export_onnx_qcdq, export_qonnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (export_qonnx if fmt == "qonnx" else export_onnx_qcdq)(net, torch.randn(2, 1, 8, 8), export_path=str(path))


def lower_to_network(g, target, timesteps, input_range=(0.0, 1.0), neuron=None, v0_mode="auto",
                     relu_thresholds=None, coding=None):
    """A passed float graph lowered (``lowering.lower_graph``) and integerized (``integerize_network``)
    under one explicit coding: the lowering and integerize stages without the pipeline around them.
    Training-free when ``relu_thresholds`` are given, else quantized."""
    from snnc.compiler.integerize import IntegerizeContext, integerize_network
    from snnc.compiler.lowering import LoweringOptions, lower_graph
    from snnc.compiler.metadata import Conversion
    from snnc.ir import IFSoftReset, RateCoding

    conversion = Conversion.QUANTIZED if relu_thresholds is None else Conversion.TRAINING_FREE
    options = LoweringOptions(target.numeric.input_bits, timesteps, input_range,
                              IFSoftReset() if neuron is None else neuron, v0_mode, relu_thresholds)
    lowered = lower_graph(g, conversion, options)
    ctx = IntegerizeContext(target.numeric, RateCoding() if coding is None else coding, lowered.timesteps)
    return integerize_network(lowered, ctx).network


def load_architecture_graph():
    """benchmarks/architecture_graph.py as a module (the import graph the architecture tests check)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("architecture_graph", REPO / "benchmarks" / "architecture_graph.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # its dataclasses resolve their module
    spec.loader.exec_module(mod)
    return mod


def make_qcfs_maxpool_cnn(path, seed: int = 0) -> str:
    """A QCFS CNN with max pooling for the digits input (1, 8, 8): conv -> QCFS -> MaxPool 2 -> conv ->
    QCFS -> MaxPool 2 -> Linear, its BN-free weights random (seeded), its lambdas calibrated on random
    inputs (examples/models/resnet.calibrate_); exported with torch's legacy ONNX exporter. snnc lowers
    each max pool to relu tournament populations (docs/conversion.md)."""
    import importlib.util
    import sys

    import torch
    from torch import nn

    sys.path.insert(0, str(REPO / "examples" / "models"))
    qcfs = load_example_models_module()
    spec = importlib.util.spec_from_file_location("snnc_examples_resnet", REPO / "examples" / "models" / "resnet.py")
    resnet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resnet)

    class MaxPoolCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.a1, self.p1 = nn.Conv2d(1, 6, 3, 1, 1), qcfs.QuantClip(4, "round", 1.0), nn.MaxPool2d(2)
            self.c2, self.a2, self.p2 = nn.Conv2d(6, 8, 3, 1, 1), qcfs.QuantClip(4, "round", 1.0), nn.MaxPool2d(2)
            self.fc = nn.Linear(8 * 2 * 2, 10)

        def forward(self, x):
            h = self.p1(self.a1(self.c1(x)))
            h = self.p2(self.a2(self.c2(h)))
            return self.fc(torch.flatten(h, 1))

    torch.manual_seed(seed)
    model = resnet.calibrate_(MaxPoolCNN(), (1, 8, 8), seed=seed)
    return qcfs.export_onnx(model, path, exporter="legacy", input_shape=(1, 1, 8, 8))


# Guards of the generated docs tables (tests/benchmarks): a fresh slice against the committed JSON.
RUN_TIMING_KEYS = frozenset({"compile_seconds", "run_seconds", "seconds"})
# which exact backend ran a row (reference or torch: tested equal integer for integer on every model,
# tests/backends/torch): provenance, not a figure
PROVENANCE_KEYS = frozenset({"backend", "device"})


def load_benchmark_script(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is not a package)."""
    import importlib.util
    import sys

    bench = str(REPO / "benchmarks")
    if bench not in sys.path:
        sys.path.insert(0, bench)  # the scripts import their shared `sections` module
    spec = importlib.util.spec_from_file_location(f"snnc_bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def assert_rows_reproduce(committed: list[dict], fresh: list[dict], key: tuple[str, ...], what: str) -> int:
    """Every fresh result row equals the committed row with the same ``key`` fields, every field but run
    times compared with ==; returns how many rows were compared. A moved figure fails, naming the row,
    the field and the script that regenerates it."""
    index = {tuple(r[k] for k in key): r for r in committed}
    n = 0
    for r in fresh:
        k = tuple(r[f] for f in key)
        assert k in index, f"{what}: the committed JSON has no row {dict(zip(key, k))}; regenerate it"
        old = index[k]
        for f in sorted(set(r) | set(old)):
            if f in RUN_TIMING_KEYS or f in PROVENANCE_KEYS:
                continue
            assert r.get(f) == old.get(f), (f"{what}: row {dict(zip(key, k))}, {f}: committed {old.get(f)!r}, "
                                            f"the code now gives {r.get(f)!r}; regenerate the table and its docs")
        n += 1
    return n
