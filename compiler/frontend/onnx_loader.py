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

from ..errors import InvalidModelError, ModelLoadError, UnsupportedOperatorError
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
    "ReduceMax", "QuantizeLinear", "DequantizeLinear", "Quant", *TRANSFORMER_OPS,
]

_QUANT_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")


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
    return model


def model_bytes(model: onnx.ModelProto) -> bytes:
    """The model as self-contained bytes (external data inlined)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            t.data_location = onnx.TensorProto.DEFAULT
            del t.external_data[:]
    return m.SerializeToString()


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class _Builder:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.problems: list[str] = []
        self.consts: dict[str, np.ndarray] = {}
        for t in g.initializer:
            try:
                self.consts[t.name] = numpy_helper.to_array(t)
            except (ValueError, TypeError, KeyError, IndexError) as e:  # damaged tensor data
                self.problems.append(f"initializer '{t.name}' cannot be read: {e}")
        self.unsupported: list[tuple[str, str]] = []
        self.ops = []
        self.alias: dict[str, str] = {}  # ONNX tensor name -> op name producing it

    def const(self, node, idx, what):
        name = node.input[idx] if idx < len(node.input) else ""
        if not name:
            return None
        if name not in self.consts:
            self.problems.append(f"node '{node.name}' ({node.op_type}): {what} must be a constant, got tensor '{name}'")
            return None
        return self.consts[name]

    def data_input(self, node) -> str | None:
        """The single non-constant input of ``node``."""
        ins = self.data_inputs(node)
        if len(ins) != 1:
            self.problems.append(
                f"node '{node.name or node.output[0]}' ({node.op_type}): expected exactly one non-constant input, "
                f"got {ins}; only Add, Sub and Concat join two tensors"
            )
            return None
        return ins[0]

    def data_inputs(self, node) -> list[str]:
        """Every non-constant input of ``node``, as op names."""
        return [self.alias.get(i, i) for i in node.input if i and i not in self.consts]


def _check_structure(g: onnx.GraphProto, consts: set[str]) -> list[str]:
    problems = []
    known = set(consts) | {i.name for i in g.input}
    produced: dict[str, str] = {}
    for n in g.node:
        for o in n.output:
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


def _scalar(v) -> float | None:
    v = np.asarray(v)
    if v.size != 1:
        return None
    return float(v.reshape(()))


def to_fgraph(model: onnx.ModelProto) -> FGraph:
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as e:  # noqa: BLE001 - best-effort; the executor recomputes shapes and names the node
        log.debug("ONNX shape inference failed (%s); continuing without it", e)
    g = model.graph
    b = _Builder(model)
    for n in g.node:  # Constant nodes become constants
        if n.op_type == "Constant":
            a = _attrs(n)
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
        elif n.op_type in _FOLDABLE and n.input and all((not i) or i in b.consts for i in n.input):
            try:  # quantized weights and biases (QDQ, QCDQ, QONNX Quant) become float constants
                b.consts[n.output[0]] = _FOLDABLE[n.op_type](n, [b.consts[i] if i else None for i in n.input])
            except (KeyError, IndexError, ValueError, TypeError) as e:
                b.problems.append(f"node '{_name(n)}' ({n.op_type}) on constants cannot be folded: "
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

    for n in g.node:
        if n.op_type == "Constant" or (n.output and all(o in b.consts for o in n.output if o)):
            continue   # folded into constants
        if n.op_type not in _HANDLERS:
            b.unsupported.append((n.name or n.output[0], n.op_type))
            continue
        try:
            _HANDLERS[n.op_type](b, n)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:  # malformed attributes/inputs
            b.problems.append(f"node '{_name(n)}' ({n.op_type}) is malformed: {type(e).__name__}: {e}")
    if b.unsupported:
        raise UnsupportedOperatorError(b.unsupported, SUPPORTED_OPS)
    if b.problems:
        raise InvalidModelError(b.problems)
    if len(g.output) != 1:
        raise InvalidModelError([f"expected exactly one graph output, got {[o.name for o in g.output]}"])
    out = b.alias.get(g.output[0].name, g.output[0].name)
    fg = FGraph(inp.name, input_shape, b.ops, out, meta={"opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)})
    _check_runs(fg)
    return fg


def _check_runs(fg: FGraph) -> None:
    """Run the graph once on zeros, op by op: shapes that do not fit (a weight for another input
    size, a join of different shapes, a window larger than its input) are named here, once."""
    known = {fg.input_name}
    if fg.output != fg.input_name and fg.producer(fg.output) is None:
        raise InvalidModelError([f"graph output '{fg.output}' is not produced by any supported node"])
    vals = {fg.input_name: np.zeros((1,) + tuple(fg.input_shape))}
    for o in fg.ops:
        missing = [s for s in o.sources() if s not in known]
        if missing:
            raise InvalidModelError([f"node '{o.name}' ({type(o).__name__}) reads {missing}, which no earlier node produces"])
        try:
            with np.errstate(all="ignore"):
                v = o(*[vals[s] for s in o.sources()])
            if not isinstance(v, np.ndarray) or v.ndim < 2 or 0 in v.shape:
                raise ValueError(f"it produces a tensor of shape {getattr(v, 'shape', None)}")
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as e:
            shapes = [tuple(vals[s].shape[1:]) for s in o.sources()]
            raise InvalidModelError([f"node '{o.name}' ({type(o).__name__}) cannot be applied to input(s) of shape "
                                     f"{shapes}: {e}"]) from None
        vals[o.name] = v
        known.add(o.name)


# ---- node handlers --------------------------------------------------------------------------
def _emit(b: _Builder, n, op) -> None:
    b.ops.append(op)
    b.alias[n.output[0]] = op.name


def _name(n) -> str:
    return n.name or n.output[0]


def _geometry_ok(b, n, a, kernel=None) -> bool:
    """kernel_shape, strides, dilations: two ints >= 1; pads: four ints >= 0 (2-D ops)."""
    checks = [("strides", a.get("strides", [1, 1]), 2, 1), ("dilations", a.get("dilations", [1, 1]), 2, 1),
              ("pads", a.get("pads", [0, 0, 0, 0]), 4, 0)]
    if kernel is not None:
        checks.append(("kernel_shape", kernel, 2, 1))
    for what, v, n_vals, lo in checks:
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        if len(v) != n_vals or any(not isinstance(i, (int, np.integer)) or i < lo for i in v):
            b.problems.append(f"{n.op_type} node '{_name(n)}': {what} must be {n_vals} integers >= {lo}, got {v}")
            return False
    return True


def _conv(b, n):
    a = _attrs(n)
    x = b.data_input(n)
    w = b.const(n, 1, "weight")
    if x is None or w is None:
        return
    bias = b.const(n, 2, "bias")
    if w.ndim != 4:
        b.problems.append(f"Conv node '{_name(n)}': only 2-D convolutions are supported (weight has {w.ndim} dims)")
        return
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        b.problems.append(f"Conv node '{_name(n)}': auto_pad={a['auto_pad']} is not supported; export with explicit pads")
        return
    if not _geometry_ok(b, n, a):
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    _emit(b, n, Conv(_name(n), x, w.astype(np.float64),
                     np.zeros(w.shape[0]) if bias is None else bias.astype(np.float64),
                     tuple(a.get("strides", [1, 1])), (p[0], p[1], p[2], p[3]),
                     tuple(a.get("dilations", [1, 1])), int(a.get("group", 1))))


def _gemm(b, n):
    a = _attrs(n)
    x = b.data_input(n)
    w = b.const(n, 1, "B (weight)")
    if x is None or w is None:
        return
    c = b.const(n, 2, "C (bias)")
    if not all(np.isfinite(float(a.get(k, 1.0))) for k in ("alpha", "beta")):
        b.problems.append(f"Gemm node '{_name(n)}': alpha and beta must be finite")
        return
    if a.get("transA", 0):
        b.problems.append(f"Gemm node '{_name(n)}': transA=1 is not supported")
        return
    w = w.astype(np.float64) * float(a.get("alpha", 1.0))
    w = w if a.get("transB", 0) else w.T
    bias = np.zeros(w.shape[0]) if c is None else np.broadcast_to(c.astype(np.float64) * float(a.get("beta", 1.0)), (w.shape[0],)).copy()
    _emit(b, n, Linear(_name(n), x, w, bias))


def _matmul(b, n):
    x = b.data_input(n)
    w = b.const(n, 1, "second operand (weight)")
    if x is None or w is None:
        return
    if w.ndim != 2:
        b.problems.append(f"MatMul node '{_name(n)}': weight must be 2-D, got shape {w.shape}")
        return
    _emit(b, n, Linear(_name(n), x, w.T.astype(np.float64), np.zeros(w.shape[1])))


def _binary_scalar(b, n):
    """Mul/Div/Add/Sub: a scalar affine step, Add of a bias vector after MatMul, or the residual join
    Add/Sub of two tensors."""
    ins = b.data_inputs(n)
    if len(ins) == 2 and n.op_type in ("Add", "Sub"):
        _emit(b, n, Add(_name(n), ins[0], ins[1], 1.0 if n.op_type == "Add" else -1.0))
        return
    if len(ins) == 2:
        b.problems.append(
            f"node '{_name(n)}' ({n.op_type}) multiplies or divides two tensors: not a linear map, snnc cannot "
            "convert it (only Add/Sub join two tensors)"
        )
        return
    x = b.data_input(n)
    if x is None:
        return
    cidx = 1 if n.input[1] in b.consts else 0
    c = b.consts[n.input[cidx]].astype(np.float64)
    s = _scalar(c)
    prod = next((o for o in b.ops if o.name == x), None)
    if s is None:
        if n.op_type == "Add" and isinstance(prod, Linear) and c.reshape(-1).size == prod.weight.shape[0]:
            prod.bias = prod.bias + c.reshape(-1)  # MatMul + Add
            b.alias[n.output[0]] = prod.name
            return
        b.problems.append(
            f"node '{_name(n)}' ({n.op_type}) with a non-scalar constant of shape {c.shape}: only scalar "
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
            b.problems.append(f"Div node '{_name(n)}': division of a constant by a tensor is not supported")
            return
        if s == 0:
            b.problems.append(f"Div node '{_name(n)}': division by zero")
            return
        mul, add = 1.0 / s, 0.0
    _emit(b, n, ScalarAffine(_name(n), x, mul, add))


def _bn(b, n):
    x = b.data_input(n)
    vals = [b.const(n, i, what) for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))]
    if x is None or any(v is None for v in vals):
        return
    if np.any(np.asarray(vals[3]) < 0):
        b.problems.append(f"BatchNormalization node '{_name(n)}': negative variance")
        return
    _emit(b, n, BatchNorm(_name(n), x, *[np.asarray(v, np.float64) for v in vals], float(_attrs(n).get("epsilon", 1e-5))))


def _avgpool(b, n):
    a = _attrs(n)
    x = b.data_input(n)
    if x is None:
        return
    if a.get("ceil_mode", 0):
        b.problems.append(f"AveragePool node '{_name(n)}': ceil_mode=1 is not supported")
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    if any(p) and not a.get("count_include_pad", 0):
        b.problems.append(f"AveragePool node '{_name(n)}': padding with count_include_pad=0 is not a linear map snnc supports")
        return
    if "kernel_shape" not in a or not _geometry_ok(b, n, {**a, "strides": a.get("strides", a["kernel_shape"])},
                                                   a["kernel_shape"]):
        if "kernel_shape" not in a:
            b.problems.append(f"AveragePool node '{_name(n)}' has no kernel_shape")
        return
    k = tuple(a["kernel_shape"])
    _emit(b, n, AvgPool(_name(n), x, k, tuple(a.get("strides", k)), tuple(p), True))


def _maxpool(b, n):
    a = _attrs(n)
    x = b.data_input(n)
    if x is None:
        return
    if len(n.output) > 1 and n.output[1]:
        b.problems.append(f"MaxPool node '{_name(n)}': the Indices output is not supported")
        return
    if a.get("ceil_mode", 0):
        b.problems.append(f"MaxPool node '{_name(n)}': ceil_mode=1 is not supported; export with ceil_mode=False")
        return
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        b.problems.append(f"MaxPool node '{_name(n)}': auto_pad={a['auto_pad']} is not supported; export with explicit pads")
        return
    if "kernel_shape" not in a:
        b.problems.append(f"MaxPool node '{_name(n)}' has no kernel_shape")
        return
    k = tuple(a["kernel_shape"])
    if len(k) != 2:
        b.problems.append(f"MaxPool node '{_name(n)}': only 2-D pooling is supported (kernel {list(k)})")
        return
    if not _geometry_ok(b, n, a, k):
        return
    p = list(a.get("pads", [0, 0, 0, 0]))
    _emit(b, n, MaxPool(_name(n), x, k, tuple(a.get("strides", [1, 1])), (p[0], p[1], p[2], p[3]),
                        tuple(a.get("dilations", [1, 1]))))


def _gmp(b, n):
    x = b.data_input(n)
    if x is not None:
        _emit(b, n, MaxPool(_name(n), x, (0, 0), (1, 1)))  # kernel filled in by the shape pass


def _concat(b, n):
    ins = b.data_inputs(n)
    if len(ins) != len([i for i in n.input if i]):
        b.problems.append(f"Concat node '{_name(n)}': concatenating a constant tensor is not supported")
        return
    _emit(b, n, Concat(_name(n), ins[0], ins[1:], int(_attrs(n).get("axis", 1))))


def _gap(b, n):
    x = b.data_input(n)
    if x is None:
        return
    _emit(b, n, AvgPool(_name(n), x, (0, 0), (1, 1)))  # kernel filled in by the shape pass


def _reduce_spatial(b, n):
    """ReduceMean / ReduceMax over both spatial axes of an (N, C, H, W) tensor: global average or max
    pooling (the dynamo exporter's AdaptiveAvgPool2d(1) / AdaptiveMaxPool2d(1)); keepdims=0 adds
    the flattening."""
    x = b.data_input(n)
    if x is None:
        return
    a = _attrs(n)
    axes = a.get("axes")
    if axes is None and len(n.input) > 1 and n.input[1]:
        axes = b.const(n, 1, "axes")
        if axes is None:
            return
    axes = sorted(int(v) % 4 for v in np.asarray(axes if axes is not None else []).reshape(-1))
    if axes != [2, 3]:
        b.problems.append(f"{n.op_type} node '{_name(n)}': only the reduction over both spatial axes of an "
                          f"(N, C, H, W) tensor (global pooling) is supported, got axes {axes}")
        return
    pool = AvgPool if n.op_type == "ReduceMean" else MaxPool
    if a.get("keepdims", 1):
        _emit(b, n, pool(_name(n), x, (0, 0), (1, 1)))
        return
    op = pool(_name(n) + "/pool", x, (0, 0), (1, 1))
    b.ops.append(op)
    _emit(b, n, Flatten(_name(n), op.name))


def _flatten(b, n):
    x = b.data_input(n)
    if x is None:
        return
    if _attrs(n).get("axis", 1) != 1:
        b.problems.append(f"Flatten node '{_name(n)}': only axis=1 is supported")
        return
    _emit(b, n, Flatten(_name(n), x))


def _reshape(b, n):
    x = b.data_input(n)
    shape = b.const(n, 1, "shape")
    if x is None or shape is None:
        return
    shape = [int(s) for s in np.asarray(shape).reshape(-1)]
    if len(shape) != 2 or shape[1] == 0:
        b.problems.append(
            f"Reshape node '{_name(n)}' to {shape}: only flattening reshapes (batch, -1) are supported"
        )
        return
    _emit(b, n, Flatten(_name(n), x))


def _identity(b, n):
    x = b.data_input(n)
    if x is not None:
        _emit(b, n, Identity(_name(n), x))


def _relu(b, n):
    x = b.data_input(n)
    if x is not None:
        _emit(b, n, Relu(_name(n), x))


def _round(b, n):
    x = b.data_input(n)
    if x is not None:
        _emit(b, n, Rounding(_name(n), x, "floor" if n.op_type == "Floor" else "ceil"))


def _clip(b, n):
    x = b.data_input(n) if n.input[0] not in b.consts else None
    if x is None:
        return
    a = _attrs(n)
    lo = b.const(n, 1, "min") if len(n.input) > 1 and n.input[1] else a.get("min", -np.inf)
    hi = b.const(n, 2, "max") if len(n.input) > 2 and n.input[2] else a.get("max", np.inf)
    lo, hi = _scalar(lo) if lo is not None else -np.inf, _scalar(hi) if hi is not None else np.inf
    if lo is None or hi is None or np.isnan(lo) or np.isnan(hi):
        b.problems.append(f"Clip node '{_name(n)}': min and max must be scalars")
        return
    _emit(b, n, Clamp(_name(n), x, lo, hi))


def _maxmin(b, n):
    x = b.data_input(n)
    if x is None:
        return
    cs = [b.consts[i] for i in n.input if i in b.consts]
    s = _scalar(cs[0]) if len(cs) == 1 else None
    if s is None:
        b.problems.append(f"node '{_name(n)}' ({n.op_type}): only Max/Min with one scalar constant are supported")
        return
    _emit(b, n, Clamp(_name(n), x, s, np.inf) if n.op_type == "Max" else Clamp(_name(n), x, -np.inf, s))


# ---- quantizer formats: ONNX QDQ (QuantizeLinear / DequantizeLinear) and QONNX Quant ------------
def _bcast(v, x, axis):
    """A per-tensor (scalar) or per-axis (1-D) quantization parameter, shaped to broadcast against x."""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    if v.ndim != 1:
        raise ValueError(f"quantization parameter of shape {v.shape}: only per-tensor and per-axis are supported")
    shape = [1] * x.ndim
    shape[int(axis) % x.ndim] = -1
    return v.reshape(shape)


def _qdtype(n, zp):
    a = _attrs(n)
    if zp is not None:
        return np.asarray(zp).dtype
    if "output_dtype" in a and a["output_dtype"]:
        return onnx.helper.tensor_dtype_to_np_dtype(a["output_dtype"])
    return np.dtype(np.uint8)


def _fold_quantize(n, ins):
    """onnxruntime's QuantizeLinear: saturate(round_half_even(x / s) + zp), computed in float32."""
    x, s = np.asarray(ins[0], np.float32), ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis = _attrs(n).get("axis", 1)
    dt = _qdtype(n, zp)
    info = np.iinfo(dt)
    q = np.rint(x / _bcast(s, x, axis).astype(np.float32))
    if zp is not None:
        q = q + _bcast(zp, x, axis).astype(np.float32)
    return np.clip(q, info.min, info.max).astype(dt)


def _fold_dequantize(n, ins):
    """onnxruntime's DequantizeLinear: (q - zp) * s in float32."""
    q, s = np.asarray(ins[0]), ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis = _attrs(n).get("axis", 1)
    v = q.astype(np.int64) if q.dtype.kind in "iu" else q.astype(np.float32)
    if zp is not None:
        v = v - _bcast(zp, q, axis).astype(v.dtype)
    return (v.astype(np.float32) * _bcast(s, q, axis).astype(np.float32)).astype(np.float32)


def _fold_clip(n, ins):
    a = _attrs(n)
    x = np.asarray(ins[0])
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", None)
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", None)
    return np.clip(x, lo if lo is not None else -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min,
                   hi if hi is not None else np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).max).astype(x.dtype)


def _quant_range(signed: bool, narrow: bool, bits: float) -> tuple[float, float]:
    """QONNX Quant's integer range (qonnx.custom_op.general.quant.min_int / max_int)."""
    if signed:
        return (-(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1)
    return (0.0, 2 ** bits - 1 - (1 if narrow else 0))


_QUANT_ROUNDING = {"ROUND": "half_even", "HALF_EVEN": "half_even", "FLOOR": "floor", "CEIL": "ceil",
                   "HALF_UP": "half_up", "ROUND_TO_ZERO": "floor"}


def _quant_params(n, ins):
    a = _attrs(n)
    bits = _scalar(ins[3])
    if bits is None or bits < 1 or bits != int(bits):
        raise ValueError(f"bitwidth must be one integer >= 1, got {ins[3]}")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    mode = a.get("rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode.upper() not in _QUANT_ROUNDING:
        raise ValueError(f"rounding_mode {mode!r} is not supported (use one of {sorted(_QUANT_ROUNDING)})")
    lo, hi = _quant_range(signed, narrow, bits)
    if signed and bits == 1:
        raise ValueError("a signed 1-bit Quant (bipolar) is not supported")
    if mode.upper() in ("HALF_UP", "ROUND_TO_ZERO") and lo < 0:
        raise ValueError(f"rounding_mode {mode} is only supported for unsigned quantizers")
    return lo, hi, _QUANT_ROUNDING[mode.upper()]


_ROUND_FN = {"half_even": np.rint, "floor": np.floor, "ceil": np.ceil, "half_up": lambda v: np.floor(v + 0.5)}


def _fold_quant(n, ins):
    """QONNX Quant (qonnx.custom_op.general.quant): clamp(x / s + zp) to the integer range, round,
    then (q - zp) * s; parameters broadcast numpy-style."""
    lo, hi, mode = _quant_params(n, ins)
    x = np.asarray(ins[0], np.float64)
    s, zp = np.asarray(ins[1], np.float64), np.asarray(ins[2], np.float64)
    q = _ROUND_FN[mode](np.clip(x / s + zp, lo, hi))
    return ((q - zp) * s).astype(np.float32)


def _fold_cast(n, ins):
    return np.asarray(ins[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(_attrs(n)["to"]))


def _fold_transpose(n, ins):
    return np.transpose(np.asarray(ins[0]), _attrs(n).get("perm"))


_FOLDABLE = {"QuantizeLinear": _fold_quantize, "DequantizeLinear": _fold_dequantize, "Clip": _fold_clip,
             "Quant": _fold_quant, "Cast": _fold_cast, "Transpose": _fold_transpose}


def _scalar_params(b, n, idxs):
    """Per-tensor quantization parameters of an activation quantizer (per-axis ones are refused)."""
    vals = []
    for i, what in idxs:
        if i >= len(n.input) or not n.input[i]:
            vals.append(None)
            continue
        v = b.const(n, i, what)
        if v is None:
            return None
        if _scalar(v) is None:
            b.problems.append(f"{n.op_type} node '{_name(n)}': a per-channel {what} on an activation is not "
                              "supported (the quantized activation has one scale per layer)")
            return None
        vals.append(_scalar(v))
    return vals


def _quantize_linear(b, n):
    """QuantizeLinear on an activation: x/s, round half to even, + zp, saturate to the integer type.
    FoldQDQRounding (compiler/passes/qdq.py) turns the rounding into floor(v + 1/2) for FuseQuantAct."""
    x = b.data_input(n)
    if x is None:
        return
    p = _scalar_params(b, n, ((1, "scale"), (2, "zero point")))
    if p is None:
        return
    s, zp = p
    if not s or not np.isfinite(s) or s <= 0:
        b.problems.append(f"QuantizeLinear node '{_name(n)}': scale must be > 0, got {s}")
        return
    zarr = np.asarray(b.consts[n.input[2]]) if len(n.input) > 2 and n.input[2] else None
    info = np.iinfo(_qdtype(n, zarr))
    nm = _name(n)
    ops = [ScalarAffine(f"{nm}/scale", x, 1.0 / s, 0.0), Rounding(f"{nm}/round", f"{nm}/scale", "half_even"),
           ScalarAffine(f"{nm}/zero_point", f"{nm}/round", 1.0, float(zp or 0.0))]
    b.ops += ops
    _emit(b, n, Clamp(nm, ops[-1].name, float(info.min), float(info.max)))


def _dequantize_linear(b, n):
    x = b.data_input(n)
    if x is None:
        return
    p = _scalar_params(b, n, ((1, "scale"), (2, "zero point")))
    if p is None:
        return
    s, zp = p
    _emit(b, n, ScalarAffine(_name(n), x, float(s), -float(zp or 0.0) * float(s)))


def _quant(b, n):
    """QONNX Quant on an activation: clip(x/s + zp, lo, hi), round, then (q - zp)*s."""
    x = b.data_input(n)
    if x is None:
        return
    p = _scalar_params(b, n, ((1, "scale"), (2, "zero point"), (3, "bitwidth")))
    if p is None:
        return
    s, zp, bits = p
    if not s or not np.isfinite(s) or s <= 0:
        b.problems.append(f"Quant node '{_name(n)}': scale must be > 0, got {s}")
        return
    lo, hi, mode = _quant_params(n, [None, s, zp, bits])
    nm = _name(n)
    ops = [ScalarAffine(f"{nm}/scale", x, 1.0 / s, float(zp)), Clamp(f"{nm}/clip", f"{nm}/scale", lo, hi),
           Rounding(f"{nm}/round", f"{nm}/clip", mode)]
    b.ops += ops
    _emit(b, n, ScalarAffine(nm, ops[-1].name, float(s), -float(zp) * float(s)))


_HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Add": _binary_scalar, "Sub": _binary_scalar,
    "Mul": _binary_scalar, "Div": _binary_scalar, "BatchNormalization": _bn, "AveragePool": _avgpool,
    "GlobalAveragePool": _gap, "Flatten": _flatten, "Reshape": _reshape, "Identity": _identity,
    "Dropout": _identity, "Relu": _relu, "Floor": _round, "Ceil": _round, "Clip": _clip,
    "Max": _maxmin, "Min": _maxmin, "Concat": _concat, "MaxPool": _maxpool, "GlobalMaxPool": _gmp,
    "ReduceMean": _reduce_spatial, "ReduceMax": _reduce_spatial,
    "QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear, "Quant": _quant,
}


_HANDLERS = transformer_handlers(_HANDLERS)   # transformers (transformer_ops.py) wrap MatMul, Add, Mul, Reshape...


def import_onnx(path: str | os.PathLike) -> tuple[FGraph, onnx.ModelProto]:
    model = load_model(path)
    return to_fgraph(model), model
