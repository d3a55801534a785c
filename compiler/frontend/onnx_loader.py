"""ONNX -> float graph (compiler.frontend.float_graph.FGraph).

Reads models with external data, runs shape inference, checks the graph (cycles, dangling inputs,
NaN/Inf weights) and maps each node to a typed op. All unsupported nodes are reported at once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from snnc.ir.limits import memory_budget

from ..errors import InvalidModelError, ModelLoadError, UnsupportedOperatorError
from .builder import Builder, attribute_problems, attrs, emit, itemsize, node_name, scalar, user_layer
from .qonnx_ops import QONNX_DOMAINS, QONNX_OPS
from .quantizers import FOLDABLE, QUANT_HANDLERS
from .float_graph import (
    Add, AvgPool, BatchNorm, Clamp, Concat, Conv, FGraph, Flatten, Identity, Linear, MaxPool, Relu, Rounding,
    ScalarAffine,
)
from .transformer_ops import SUPPORTED as TRANSFORMER_OPS
from .transformer_ops import fold_shape_constants, transformer_handlers

log = logging.getLogger(__name__)

SUPPORTED_OPS = [
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "BatchNormalization", "AveragePool",
    "GlobalAveragePool", "Flatten", "Reshape", "Identity", "Dropout", "Relu", "Floor", "Ceil", "Clip",
    "Max", "Min", "Constant", "Concat", "MaxPool", "GlobalMaxPool", "ReduceMean",
    "ReduceMax", "QuantizeLinear", "DequantizeLinear", "Quant", "BipolarQuant", "Trunc",
    "LogSoftmax",  # at the network's output only (dropped: it keeps the argmax); Softmax, Sigmoid below
    *TRANSFORMER_OPS,
]

STANDARD_DOMAINS = ("", "ai.onnx")
MIN_OPSET = 11  # Clip's min/max inputs, Pad/Resize/Reshape as the handlers read them


def _model_problems(model: onnx.ModelProto) -> list[str]:
    """What is checked before anything is read: the opset and every node's domain and attribute types."""
    opset = max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=0)
    if opset < MIN_OPSET:
        return [f"the model declares ONNX opset {opset}; snnc reads opset {MIN_OPSET} and later (re-export it, "
                "e.g. torch.onnx.export(..., opset_version=17), or convert it with onnx.version_converter)"]
    problems = []
    for n in model.graph.node:
        if n.domain in STANDARD_DOMAINS:
            problems += attribute_problems(n, opset)
        elif not (n.domain in QONNX_DOMAINS and n.op_type in QONNX_OPS):
            problems.append(f"node '{node_name(n)}' ({n.op_type}) is in domain '{n.domain}': snnc reads the standard "
                            f"ONNX domain and {'/'.join(QONNX_OPS)} of the domains {', '.join(QONNX_DOMAINS)}")
    return problems


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"model file '{path}' does not exist")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except FileNotFoundError as e:
        raise ModelLoadError(
            f"'{path}': external data file missing ({e.filename or e}); keep the '.onnx.data' file next to the model"
        ) from None
    except Exception as e:  # protobuf DecodeError, truncated files, ...
        if "should be stored in" in str(e):
            raise ModelLoadError(
                f"'{path}': external data file missing ({e}); keep the '.onnx.data' file next to the model"
            ) from None
        raise ModelLoadError(f"'{path}' is not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not model.graph.node:
        raise ModelLoadError(f"'{path}' is not a readable ONNX model (it has no graph nodes)")
    damaged = undecodable_text(model)
    if damaged:
        raise ModelLoadError(f"'{path}' is not a readable ONNX model ({damaged} is not UTF-8 text: the file is damaged; "
                             "export it again)")
    return model


def undecodable_text(model: onnx.ModelProto) -> str | None:
    """Where the first text field the loader reads is not valid UTF-8, or None. protobuf hands such a proto2
    string field back as ``bytes`` (a damaged file), which every later name lookup and message would trip on."""
    g = model.graph
    fields = [("the graph's name", g.name)]
    fields += [(f"opset_import[{i}].domain", o.domain) for i, o in enumerate(model.opset_import)]
    for i, n in enumerate(g.node):
        fields += [(f"node #{i} {field}", v) for field in ("name", "op_type", "domain") for v in [getattr(n, field)]]
        fields += [(f"node #{i} input {j}", v) for j, v in enumerate(n.input)]
        fields += [(f"node #{i} output {j}", v) for j, v in enumerate(n.output)]
        fields += [(f"node #{i} attribute {j} name", a.name) for j, a in enumerate(n.attribute)]
    for kind, items in (("initializer", g.initializer), ("graph input", g.input), ("graph output", g.output),
                        ("value_info", g.value_info)):
        fields += [(f"{kind} #{i} name", t.name) for i, t in enumerate(items)]
    return next((where for where, v in fields if not isinstance(v, str)), None)


def external_data_files(path: str | os.PathLike) -> list[Path]:
    """The external-data files ``path`` refers to (none when it cannot be read: the import reports that)."""
    if not Path(path).is_file():  # a FIFO or a device would block or never end; load_model refuses it
        return []
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - any unreadable model: load_model names the problem
        return []
    base = Path(path).parent
    files = set()
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            loc = next((e.value for e in t.external_data if e.key == "location"), None)
            if loc:
                files.add(base / loc)
    return sorted(files)


def model_bytes(model: onnx.ModelProto) -> bytes:
    """The model as self-contained bytes (external data inlined)."""
    if not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return model.SerializeToString()  # already self-contained: no copy of the whole model first
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            t.data_location = onnx.TensorProto.DEFAULT
            del t.external_data[:]
    return m.SerializeToString()


def _check_structure(g: onnx.GraphProto, consts: set[str]) -> list[str]:
    problems = []
    known = set(consts) | {i.name for i in g.input}
    produced: dict[str, str] = {}
    for n in g.node:
        for o in n.output:
            if o and o in produced:
                problems.append(f"tensor '{o}' is written by two nodes, '{produced[o]}' and '{n.name}' "
                                "(ONNX requires one producer per tensor)")
            produced[o] = n.name
    for n in g.node:
        for i in n.input:
            if i and i not in known:
                if i in produced:
                    problems.append(
                        f"node '{n.name}' ({n.op_type}) reads '{i}' before node '{produced[i]}' produces it "
                        "(the graph has a cycle or is not topologically sorted)"
                    )
                else:
                    problems.append(f"node '{n.name}' ({n.op_type}) reads '{i}', which nothing produces (dangling input)")
        known.update(o for o in n.output if o)
    for o in g.output:
        if o.name not in known:
            problems.append(f"graph output '{o.name}' is not produced by any node")
    return problems


def payload_bytes(t: onnx.TensorProto) -> int:
    """The bytes a tensor's declared shape holds (4 a value for a type numpy lacks; its data is not read:
    a damaged one is named by the builder): what memory budgets are reckoned from."""
    n = 1
    for d in t.dims:
        n *= max(int(d), 0)
    return n * (itemsize(t.data_type) or 4)


def declared_bytes(g: onnx.GraphProto) -> int:
    """The bytes of the values a graph declares: its initializers and its Constant nodes' tensors."""
    consts = [a.t for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(payload_bytes(t) for t in list(g.initializer) + consts)


def to_fgraph(model: onnx.ModelProto) -> FGraph:
    # no ONNX shape inference here: nothing reads its value_info (the builder computes every shape
    # itself and names the node that does not fit; transformers infer their own, with data propagation),
    # and on an ImageNet model it serialized the gigabytes of weights for nothing (issue 16)
    problems = _model_problems(model)
    if problems:
        raise InvalidModelError(problems)
    g = model.graph
    b = Builder(model)
    if b.problems:  # unreadable initializers: everything after would name their users instead
        raise InvalidModelError(b.problems)
    for n in g.node:  # Constant nodes become constants
        if n.op_type == "Constant":
            a = attrs(n)
            if "value" in a:
                try:
                    b.consts[n.output[0]] = numpy_helper.to_array(a["value"])
                except (ValueError, TypeError, KeyError, IndexError) as e:
                    b.problems.append(f"Constant node '{n.name}': its value cannot be read: {e}")
            elif "value_float" in a:
                b.consts[n.output[0]] = np.array(a["value_float"], np.float32)
            elif "value_int" in a:
                b.consts[n.output[0]] = np.array(a["value_int"], np.int64)
            elif "value_floats" in a or "value_ints" in a:
                b.consts[n.output[0]] = np.array(a.get("value_floats", a.get("value_ints")))
            else:
                b.problems.append(f"Constant node '{n.name}' has an unsupported value attribute {sorted(a)}")
        elif n.op_type == "Identity" and n.input and n.input[0] in b.consts:
            b.consts[n.output[0]] = b.consts[n.input[0]]  # the legacy exporter's shared equal parameters
        elif n.op_type in FOLDABLE and n.input and all((not i) or i in b.consts for i in n.input):
            try:  # quantized weights and biases (QDQ, QCDQ, QONNX Quant) become float constants
                b.consts[n.output[0]] = FOLDABLE[n.op_type](n, [b.consts[i] if i else None for i in n.input])
            except (KeyError, IndexError, ValueError, TypeError) as e:
                b.problems.append(f"node '{node_name(n)}' ({n.op_type}) on constants cannot be folded: "
                                  f"{type(e).__name__}: {e}")
    fold_shape_constants(b, model)   # transformers: the exporters' run-time shape arithmetic is constant
    problems = _check_structure(g, set(b.consts))
    if problems:
        raise InvalidModelError(problems)
    for name, arr in b.consts.items():
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            users = [n.name for n in g.node if name in n.input]
            b.problems.append(f"weight '{name}' (used by {users}) contains NaN or Inf")

    real_inputs = [i for i in g.input if i.name not in b.consts]
    if len(real_inputs) != 1:
        raise InvalidModelError([f"expected exactly one graph input, got {[i.name for i in real_inputs]}"])
    inp = real_inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    if len(dims) < 2 or any(d is None or d <= 0 for d in dims[1:]):
        raise InvalidModelError([f"input '{inp.name}' must have a static shape apart from the batch axis, got {dims}"])
    input_shape = tuple(dims[1:])
    b.batch = dims[0] if dims[0] else None  # a fixed batch (Brevitas' dynamo export), None when dynamic
    b.output_tail = _output_tail(g)

    for n in g.node:
        if n.op_type == "Constant" or (n.output and all(o in b.consts for o in n.output if o)):
            continue   # folded into constants
        if n.op_type not in _HANDLERS:
            b.unsupported.append((n.name or n.output[0], n.op_type))
            continue
        try:
            _HANDLERS[n.op_type](b, n)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:  # malformed attributes/inputs
            b.problems.append(f"node '{node_name(n)}' ({n.op_type}) is malformed: {type(e).__name__}: {e}")
    if b.unsupported:
        tail = _output_node_names(g)
        raise UnsupportedOperatorError([(nm, op + (" at the network's output: only Softmax, LogSoftmax and Sigmoid, "
                                                   "which keep the argmax, are dropped there" if nm in tail else ""))
                                        for nm, op in b.unsupported], SUPPORTED_OPS)
    if b.problems:
        raise InvalidModelError(b.problems)
    if len(g.output) != 1:
        raise InvalidModelError([f"expected exactly one graph output, got {[o.name for o in g.output]}"])
    out = b.alias.get(g.output[0].name, g.output[0].name)
    fg = FGraph(inp.name, input_shape, b.ops, out, origins=b.origins, meta={"opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)})
    _check_runs(fg, memory_budget(declared_bytes(g)))
    return fg


def _check_runs(fg: FGraph, budget: int) -> None:
    """Run the graph once on zeros, op by op: shapes that do not fit (a weight for another input
    size, a join of different shapes, a window larger than its input) are named here, once. The
    input's declared size is checked against the memory ``budget`` first (snnc.ir.limits)."""
    known = {fg.input_name}
    if fg.output != fg.input_name and fg.producer(fg.output) is None:
        raise InvalidModelError([f"graph output '{fg.output}' is not produced by any supported node"])
    size = int(np.prod(fg.input_shape, dtype=object))
    if size * 8 * 4 > budget:  # the probe input in float64 and the first ops' outputs
        raise InvalidModelError([f"input '{fg.input_name}' declares shape {tuple(fg.input_shape)} per sample "
                                 f"({size:,} values, {size * 8 / 2**30:.1f} GiB in float64), beyond snnc's memory "
                                 f"budget of {budget / 2**30:.1f} GiB for this model (docs/reliability.md, "
                                 "'Resource budget'); check the input dimensions"])
    vals = {fg.input_name: np.zeros((1,) + tuple(fg.input_shape))}
    for o in fg.ops:
        missing = [s for s in o.sources() if s not in known]
        if missing:
            raise InvalidModelError([f"node '{o.name}' ({type(o).__name__}) reads {missing}, which no earlier node produces"])
        try:
            with np.errstate(all="ignore"):
                v = o.probe(*[vals[s] for s in o.sources()])
            if not isinstance(v, np.ndarray) or v.ndim < 2 or 0 in v.shape:
                raise ValueError(f"it produces a tensor of shape {getattr(v, 'shape', None)}")
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            shapes = [tuple(vals[s].shape[1:]) for s in o.sources()]
            raise InvalidModelError([f"node '{o.name}' ({type(o).__name__}) cannot be applied to input(s) of shape "
                                     f"{shapes}: {e}"]) from None
        vals[o.name] = v
        known.add(o.name)


# ---- node handlers --------------------------------------------------------------------------
def _geometry_ok(b, n, a, kernel=None) -> bool:
    """kernel_shape, strides, dilations: two ints >= 1; pads: four ints >= 0 (2-D ops)."""
    checks = [("strides", a.get("strides", [1, 1]), 2, 1), ("dilations", a.get("dilations", [1, 1]), 2, 1),
              ("pads", a.get("pads", [0, 0, 0, 0]), 4, 0)]
    if kernel is not None:
        checks.append(("kernel_shape", kernel, 2, 1))
    for what, v, n_vals, lo in checks:
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        if len(v) != n_vals or any(not isinstance(i, (int, np.integer)) or i < lo for i in v):
            b.problems.append(f"{n.op_type} node '{node_name(n)}': {what} must be {n_vals} integers >= {lo}, got {v}")
            return False
    return True


def _conv(b, n):
    a = attrs(n)
    x = b.data_input(n)
    w = b.const(n, 1, "weight")
    if x is None or w is None:
        return
    bias = b.const(n, 2, "bias")
    if w.ndim != 4:
        b.problems.append(f"Conv node '{node_name(n)}': only 2-D convolutions are supported (weight has {w.ndim} dims)")
        return
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        b.problems.append(f"Conv node '{node_name(n)}': auto_pad={a['auto_pad']} is not supported; export with explicit pads")
        return
    if not _geometry_ok(b, n, a):
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    emit(b, n, Conv(node_name(n), x, w.astype(np.float64),
                     np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64),
                     tuple(a.get("strides", [1, 1])), (p[0], p[1], p[2], p[3]),
                     tuple(a.get("dilations", [1, 1])), int(a.get("group", 1))))


def _gemm(b, n):
    a = attrs(n)
    x = b.data_input(n)
    w = b.const(n, 1, "B (weight)")
    if x is None or w is None:
        return
    c = b.const(n, 2, "C (bias)")
    if not all(np.isfinite(float(a.get(k, 1.0))) for k in ("alpha", "beta")):
        b.problems.append(f"Gemm node '{node_name(n)}': alpha and beta must be finite")
        return
    if a.get("transA", 0):
        b.problems.append(f"Gemm node '{node_name(n)}': transA=1 is not supported")
        return
    w = w.astype(np.float64) * float(a.get("alpha", 1.0))
    w = w if a.get("transB", 0) else w.T
    bias = np.zeros(w.shape[0]) if c is None else np.broadcast_to(c.astype(np.float64) * float(a.get("beta", 1.0)), (w.shape[0],)).copy()
    emit(b, n, Linear(node_name(n), x, w, bias))


def _matmul(b, n):
    x = b.data_input(n)
    w = b.const(n, 1, "second operand (weight)")
    if x is None or w is None:
        return
    if w.ndim != 2:
        b.problems.append(f"MatMul node '{node_name(n)}': weight must be 2-D, got shape {w.shape}")
        return
    emit(b, n, Linear(node_name(n), x, w.T.astype(np.float64), np.zeros(w.shape[1])))


def _binary_scalar(b, n):
    """Mul/Div/Add/Sub: a scalar affine step, Add of a bias vector after MatMul, or the residual join
    Add/Sub of two tensors."""
    ins = b.data_inputs(n)
    if len(ins) == 2 and n.op_type in ("Add", "Sub"):
        emit(b, n, Add(node_name(n), ins[0], ins[1], 1.0 if n.op_type == "Add" else -1.0))
        return
    if len(ins) == 2:
        b.problems.append(
            f"node '{node_name(n)}' ({n.op_type}) multiplies or divides two tensors: not a linear map, snnc cannot "
            "convert it (only Add/Sub join two tensors)"
        )
        return
    x = b.data_input(n)
    if x is None:
        return
    cidx = 1 if n.input[1] in b.consts else 0
    c = b.consts[n.input[cidx]].astype(np.float64)
    s = scalar(c)
    prod = next((o for o in b.ops if o.name == x), None)
    if s is None:
        if n.op_type == "Add" and isinstance(prod, Linear) and c.reshape(-1).size == prod.weight.shape[0]:
            prod.bias = prod.bias + c.reshape(-1)  # MatMul + Add
            b.alias[n.output[0]] = prod.name
            return
        b.problems.append(
            f"node '{node_name(n)}' ({n.op_type}) with a non-scalar constant of shape {c.shape}: only scalar "
            "Mul/Div/Add/Sub (quantized activations) and the bias Add after MatMul are supported"
        )
        return
    op = n.op_type
    if op == "Mul":
        mul, add = s, 0.0
    elif op == "Add":
        mul, add = 1.0, s
    elif op == "Sub":
        mul, add = (1.0, -s) if cidx == 1 else (-1.0, s)
    else:  # Div
        if cidx == 0:
            b.problems.append(f"Div node '{node_name(n)}': division of a constant by a tensor is not supported")
            return
        if s == 0:
            b.problems.append(f"Div node '{node_name(n)}': division by zero")
            return
        mul, add = 1.0 / s, 0.0
    emit(b, n, ScalarAffine(node_name(n), x, mul, add))


def _bn(b, n):
    x = b.data_input(n)
    vals = [b.const(n, i, what) for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))]
    if x is None or any(v is None for v in vals):
        return
    if np.any(np.asarray(vals[3]) < 0):
        b.problems.append(f"BatchNormalization node '{node_name(n)}': negative variance")
        return
    emit(b, n, BatchNorm(node_name(n), x, *[np.asarray(v, np.float64) for v in vals], float(attrs(n).get("epsilon", 1e-5))))


def _avgpool(b, n):
    """ONNX AveragePool as defined: kernel, strides (default 1), pads, ceil_mode, count_include_pad
    (compiler/frontend/float_graph.py AvgPool); compiler/passes/pooling.py folds it or refuses it by name."""
    a = attrs(n)
    x = b.data_input(n)
    if x is None:
        return
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        b.problems.append(f"AveragePool node '{node_name(n)}': auto_pad={a['auto_pad']} is not supported; export with "
                          "explicit pads")
        return
    if any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        b.problems.append(f"AveragePool node '{node_name(n)}': dilations {list(a['dilations'])} are not supported")
        return
    if "kernel_shape" not in a:
        b.problems.append(f"AveragePool node '{node_name(n)}' has no kernel_shape")
        return
    k = tuple(a["kernel_shape"])
    if len(k) != 2:
        b.problems.append(f"AveragePool node '{node_name(n)}': only 2-D pooling is supported (kernel {list(k)})")
        return
    if not _geometry_ok(b, n, {**a, "strides": a.get("strides", [1, 1])}, k):
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    emit(b, n, AvgPool(node_name(n), x, k, tuple(a.get("strides", [1, 1])), (p[0], p[1], p[2], p[3]),
                       bool(a.get("count_include_pad", 0)), bool(a.get("ceil_mode", 0))))


def _output_node_names(g: onnx.GraphProto) -> set[str]:
    return {node_name(nd) for nd in g.node if any(o.name in nd.output for o in g.output)}


# ---- argmax-preserving output ops -------------------------------------------------------------------
ARGMAX_PRESERVING = ("Softmax", "LogSoftmax", "Sigmoid")


def _output_tail(g: onnx.GraphProto) -> set[str]:
    """Names of the nodes on the graph output's tail that cannot change its argmax (Softmax, LogSoftmax,
    Sigmoid: strictly increasing per class, or per row for a softmax over the class axis)."""
    producer = {o: nd for nd in g.node for o in nd.output if o}
    tail, t = set(), g.output[0].name if len(g.output) == 1 else None
    while t in producer and producer[t].op_type in ARGMAX_PRESERVING + ("Identity",):
        nd = producer[t]
        tail.add(node_name(nd))
        t = nd.input[0] if nd.input else None
    return tail


def _argmax_preserving(b, n):
    x = b.data_input(n)
    if x is None:
        return
    nm = node_name(n)
    if nm not in b.output_tail:
        b.problems.append(f"node '{nm}' ({n.op_type}, layer {user_layer(n)}) is inside the network: snnc drops "
                          f"{', '.join(ARGMAX_PRESERVING)} only at the network's output, where they cannot change the "
                          "predicted class; elsewhere they are nonlinear layers a spiking layer cannot compute")
        return
    axis = attrs(n).get("axis", -1 if n.op_type != "Sigmoid" else None)
    if axis is not None and int(axis) not in (1, -1):
        b.problems.append(f"{n.op_type} node '{nm}' normalizes over axis {axis}; only the class axis (1 or -1 of an "
                          "(N, classes) output) keeps the argmax")
        return
    log.warning("dropping %s node '%s' at the network's output: it cannot change the predicted class (argmax); the "
                "SNN's readout gives the values before it", n.op_type, nm)
    emit(b, n, Identity(nm, x))


def _maxpool(b, n):
    a = attrs(n)
    x = b.data_input(n)
    if x is None:
        return
    if len(n.output) > 1 and n.output[1]:
        b.problems.append(f"MaxPool node '{node_name(n)}': the Indices output is not supported")
        return
    if a.get("ceil_mode", 0):
        b.problems.append(f"MaxPool node '{node_name(n)}': ceil_mode=1 is not supported; export with ceil_mode=False")
        return
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        b.problems.append(f"MaxPool node '{node_name(n)}': auto_pad={a['auto_pad']} is not supported; export with explicit pads")
        return
    if "kernel_shape" not in a:
        b.problems.append(f"MaxPool node '{node_name(n)}' has no kernel_shape")
        return
    k = tuple(a["kernel_shape"])
    if len(k) != 2:
        b.problems.append(f"MaxPool node '{node_name(n)}': only 2-D pooling is supported (kernel {list(k)})")
        return
    if not _geometry_ok(b, n, a, k):
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    emit(b, n, MaxPool(node_name(n), x, k, tuple(a.get("strides", [1, 1])), (p[0], p[1], p[2], p[3]),
                        tuple(a.get("dilations", [1, 1]))))


def _gmp(b, n):
    x = b.data_input(n)
    if x is not None:
        emit(b, n, MaxPool(node_name(n), x, (0, 0), (1, 1)))  # kernel filled in by the shape pass


def _concat(b, n):
    ins = b.data_inputs(n)
    if len(ins) != len([i for i in n.input if i]):
        b.problems.append(f"Concat node '{node_name(n)}': concatenating a constant tensor is not supported")
        return
    emit(b, n, Concat(node_name(n), ins[0], ins[1:], int(attrs(n).get("axis", 1))))


def _gap(b, n):
    x = b.data_input(n)
    if x is None:
        return
    emit(b, n, AvgPool(node_name(n), x, (0, 0), (1, 1)))  # kernel filled in by the shape pass


def _reduce_spatial(b, n):
    """ReduceMean / ReduceMax over both spatial axes of an (N, C, H, W) tensor: global average or max
    pooling (the dynamo exporter's AdaptiveAvgPool2d(1) / AdaptiveMaxPool2d(1)); keepdims=0 adds
    the flattening."""
    x = b.data_input(n)
    if x is None:
        return
    a = attrs(n)
    axes = a.get("axes")
    if axes is None and len(n.input) > 1 and n.input[1]:
        axes = b.const(n, 1, "axes")
        if axes is None:
            return
    axes = sorted(int(v) % 4 for v in np.asarray(axes if axes is not None else []).reshape(-1))
    if axes != [2, 3]:
        b.problems.append(f"{n.op_type} node '{node_name(n)}': only the reduction over both spatial axes of an "
                          f"(N, C, H, W) tensor (global pooling) is supported, got axes {axes}")
        return
    pool = AvgPool if n.op_type == "ReduceMean" else MaxPool
    if a.get("keepdims", 1):
        emit(b, n, pool(node_name(n), x, (0, 0), (1, 1)))
        return
    op = pool(node_name(n) + "/pool", x, (0, 0), (1, 1))
    b.ops.append(op)
    emit(b, n, Flatten(node_name(n), op.name))


def _flatten(b, n):
    x = b.data_input(n)
    if x is None:
        return
    if attrs(n).get("axis", 1) != 1:
        b.problems.append(f"Flatten node '{node_name(n)}': only axis=1 is supported")
        return
    emit(b, n, Flatten(node_name(n), x))


def _reshape(b, n):
    """A flattening reshape (batch, -1) / (batch, C*H*W): the batch entry -1, 0, 1 or the model's fixed batch."""
    x = b.data_input(n)
    shape = b.const(n, 1, "shape")
    if x is None or shape is None:
        return
    shape = [int(s) for s in np.asarray(shape).reshape(-1)]
    if len(shape) != 2 or shape[1] == 0 or shape[0] not in (-1, 0, 1, b.batch):
        b.problems.append(
            f"Reshape node '{node_name(n)}' to {shape}: only flattening reshapes (batch, -1) are supported"
            + (f" (the model's batch is {b.batch})" if b.batch not in (None, -1, 0, 1) else "")
        )
        return
    emit(b, n, Flatten(node_name(n), x))


def _identity(b, n):
    x = b.data_input(n)
    if x is not None:
        emit(b, n, Identity(node_name(n), x))


def _relu(b, n):
    x = b.data_input(n)
    if x is not None:
        emit(b, n, Relu(node_name(n), x))


def _round(b, n):
    x = b.data_input(n)
    if x is not None:
        emit(b, n, Rounding(node_name(n), x, "floor" if n.op_type == "Floor" else "ceil"))


def _clip(b, n):
    x = b.data_input(n) if n.input[0] not in b.consts else None
    if x is None:
        return
    a = attrs(n)
    lo = b.const(n, 1, "min") if len(n.input) > 1 and n.input[1] else a.get("min", -np.inf)
    hi = b.const(n, 2, "max") if len(n.input) > 2 and n.input[2] else a.get("max", np.inf)
    lo, hi = scalar(lo) if lo is not None else -np.inf, scalar(hi) if hi is not None else np.inf
    if lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        b.problems.append(f"Clip node '{node_name(n)}': min and max must be scalars")
        return
    emit(b, n, Clamp(node_name(n), x, lo, hi))


def _maxmin(b, n):
    x = b.data_input(n)
    if x is None:
        return
    cs = [b.consts[i] for i in n.input if i in b.consts]
    s = scalar(cs[0]) if len(cs) == 1 else None
    if s is None:
        b.problems.append(f"node '{node_name(n)}' ({n.op_type}): only Max/Min with one scalar constant are supported")
        return
    emit(b, n, Clamp(node_name(n), x, s, np.inf) if n.op_type == "Max" else Clamp(node_name(n), x, -np.inf, s))


_HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Add": _binary_scalar, "Sub": _binary_scalar,
    "Mul": _binary_scalar, "Div": _binary_scalar, "BatchNormalization": _bn, "AveragePool": _avgpool,
    "GlobalAveragePool": _gap, "Flatten": _flatten, "Reshape": _reshape, "Identity": _identity,
    "Dropout": _identity, "Relu": _relu, "Floor": _round, "Ceil": _round, "Clip": _clip,
    "Max": _maxmin, "Min": _maxmin, "Concat": _concat, "MaxPool": _maxpool, "GlobalMaxPool": _gmp,
    "ReduceMean": _reduce_spatial, "ReduceMax": _reduce_spatial,
    **QUANT_HANDLERS, **{op: _argmax_preserving for op in ARGMAX_PRESERVING},
}


_HANDLERS = transformer_handlers(_HANDLERS)   # transformers (transformer_ops.py) wrap MatMul, Add, Mul, Reshape...


def import_onnx(path: str | os.PathLike) -> tuple[FGraph, onnx.ModelProto]:
    """The model file read and checked; a problem in it is reported naming the file."""
    model = load_model(path)
    try:
        return to_fgraph(model), model
    except InvalidModelError as e:
        raise InvalidModelError(e.problems, source=str(path)) from None
    except UnsupportedOperatorError as e:
        raise UnsupportedOperatorError(e.nodes, e.supported, source=str(path)) from None
