"""What every ONNX node handler of the frontend shares: the builder that collects constants, ops and
problems, and the small helpers (attributes, names, scalars) — plus the user's own name for a node.

``user_layer(node)`` is how snnc names a layer in a message: the module path and class the exporter
recorded (torch's dynamo exporter writes ``pkg.torch.onnx.name_scopes`` / ``class_hierarchy`` metadata, so
a Brevitas ``QuantHardTanh`` at ``features.act1`` is named so, not ``node__symbolic_2``), else the ONNX node
name (the legacy exporter's names, ``/features/act1/...``, already carry the module path).
"""

from __future__ import annotations

import ast

import numpy as np
import onnx
from onnx import numpy_helper

from .float_graph import Op

_T = onnx.TensorProto
_PACKED = {getattr(_T, k) for k in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2") if hasattr(_T, k)}


def itemsize(data_type: int) -> int | None:
    """Bytes per value of an ONNX tensor data type, or None when numpy has no such type."""
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def initializer_problem(t: onnx.TensorProto) -> str | None:
    """Why the initializer ``t`` cannot be a numeric constant (a string tensor, negative dims, or less
    or more data than its dims declare), or None. Checked on the declared sizes, before any decoding."""
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        return f"initializer '{t.name}' has negative dims {dims}; the model file is damaged"
    if t.data_type == _T.STRING:
        return f"initializer '{t.name}' is a string tensor; weights and biases must be numbers"
    if t.data_type in _PACKED or t.data_location == _T.EXTERNAL:
        return None
    size = itemsize(t.data_type)
    if size is None:
        return f"initializer '{t.name}' has an unknown data type {t.data_type}"
    count = int(np.prod(dims, dtype=object)) if dims else 1
    if t.HasField("raw_data"):
        have, want, unit = len(t.raw_data), count * size, "bytes"
    else:
        have = (len(t.float_data) + len(t.int32_data) + len(t.int64_data) + len(t.double_data)
                + len(t.uint64_data))
        want, unit = count * (2 if t.data_type in (_T.COMPLEX64, _T.COMPLEX128) else 1), "values"
    if have != want:
        return (f"initializer '{t.name}' declares shape {tuple(dims)} ({want:,} {unit}) but holds {have:,} {unit}; "
                "the model file (or its external data file) is damaged or truncated")
    return None


_ATTR_TYPE_NAMES = {v: k.lower() for k, v in onnx.AttributeProto.AttributeType.items()}


def attribute_problems(node: onnx.NodeProto, opset: int) -> list[str]:
    """Attributes of a standard-domain ``node`` whose type is not the one ONNX's schema of the op (at
    ``opset``) declares, e.g. Gemm ``transB`` given as a string: named, never read as something else."""
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:  # noqa: BLE001 - an op unknown to this onnx: the handlers decide (unsupported)
        return []
    out = []
    for a in node.attribute:
        want = schema.attributes.get(a.name)
        if want is None:
            continue
        if int(want.type.value) != int(a.type):
            out.append(f"node '{node_name(node)}' ({node.op_type}): attribute '{a.name}' is "
                       f"{_ATTR_TYPE_NAMES.get(a.type, a.type)}, ONNX declares it {want.type.name.lower()}")
    return out


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Builder:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        g = model.graph
        self.problems: list[str] = []
        self.consts: dict[str, np.ndarray] = {}
        for t in g.initializer:
            problem = initializer_problem(t)
            if problem:
                self.problems.append(problem)
                continue
            try:
                self.consts[t.name] = numpy_helper.to_array(t)
            except (ValueError, TypeError, KeyError, IndexError) as e:  # damaged tensor data
                self.problems.append(f"initializer '{t.name}' cannot be read: {e}")
        self.unsupported: list[tuple[str, str]] = []
        self.ops = []
        self.alias: dict[str, str] = {}  # ONNX tensor name -> op name producing it
        self.origins: dict[str, str] = {}  # op name -> the user's layer (user_layer)
        self.batch: int | None = None       # the graph input's fixed batch size, None when dynamic
        self.output_tail: set[str] = set()  # argmax-preserving nodes at the graph output (dropped)

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


def scalar(v) -> float | None:
    v = np.asarray(v)
    if v.size != 1:
        return None
    return float(v.reshape(()))


def emit(b: Builder, n, op: Op) -> None:
    b.ops.append(op)
    b.alias[n.output[0]] = op.name
    b.origins[node_name(n)] = user_layer(n)


def node_name(n) -> str:
    return n.name or n.output[0]




_INTERNAL_CLASSES = ("brevitas.proxy", "brevitas.export", "brevitas.core", "brevitas.function", "onnx_symbolic",
                     "aten.", "torch.nn.modules.activation")


def user_layer(n: onnx.NodeProto) -> str:
    """The user's name for the layer a node belongs to: "'act1' (QuantHardTanh, ONNX node 'node__symbolic_2')"
    from the exporter's module metadata, else "'<node name>'"."""
    props = {p.key: p.value for p in n.metadata_props}
    try:
        scopes = ast.literal_eval(props.get("pkg.torch.onnx.name_scopes", "[]"))
        classes = ast.literal_eval(props.get("pkg.torch.onnx.class_hierarchy", "[]"))
    except (ValueError, SyntaxError):
        scopes, classes = [], []
    best = None
    for scope, cls in zip(scopes, classes):
        if scope and isinstance(cls, str) and not cls.startswith(_INTERNAL_CLASSES):
            best = (scope, cls.rsplit(".", 1)[-1])
    if best is None:
        return f"'{node_name(n)}'"
    return f"'{best[0]}' ({best[1]}, ONNX node '{node_name(n)}')"
