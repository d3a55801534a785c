"""ONNX -> float graph for transformers (ViT), both torch exporters (examples/mnist/vit_ops.md).

The loader (``onnx_loader.py``) calls two things of this module:

* ``fold_shape_constants(builder, model)``: the run-time shape arithmetic of the legacy exporter
  (Shape -> Gather / Slice / Concat / Unsqueeze / ConstantOfShape / Equal / Where -> a Reshape or
  Expand target) is constant: every shape is static but the batch. The shapes are inferred with the
  batch axis set to ``BATCH`` (a sentinel no real axis has), every Shape of a data tensor becomes a
  constant holding ``BATCH`` at axis 0, and every node whose inputs are then all constant is folded
  with ONNX's reference evaluator. A Reshape / Expand target holding ``BATCH`` at axis 0 keeps the
  batch axis.
* ``transformer_handlers(base)``: the node handlers for the transformer's ops, wrapping the loader's
  own ``base`` handlers where an op type has both meanings (MatMul by a weight on a 2-D tensor stays
  a ``Linear``; a scalar Add / Mul stays a ``ScalarAffine``; a flattening Reshape stays a ``Flatten``).

    MatMul(x, W), rank(x) >= 3       -> TokenLinear (+ its bias Add folded in)
    MatMul(a, b), two tensors         -> MatMul                   Mul(a, b) -> Mul
    Add(x, C), C a non-scalar tensor  -> AddConst (per sample)     (a position embedding)
    Expand(C, [batch, ...])           -> a per-sample constant, which Concat reads -> ConcatConst
    Concat(C, x) / Concat(x, C)       -> ConcatConst              (a class token)
    Reshape(x, [batch or -1, ...])    -> Reshape (per sample)     Transpose(x, perm) -> Transpose
    Gather(x, scalar index)           -> Select                   ReduceMean(x, axes) -> Mean
    LayerNormalization(axis -1)       -> LayerNorm                Softmax(axis) -> Softmax
    Erf, Sigmoid                      -> Erf, Sigmoid   (GELU and SiLU are recognised by the passes)
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import onnx

from .float_graph import (AddConst, ConcatConst, Erf, FGraph, LayerNorm, Linear, MatMul, Mean, Mul, Reshape,
                          Select, Sigmoid, Softmax, TokenLinear, Transpose)

log = logging.getLogger(__name__)

#: the batch axis's value while shapes are folded (a prime no real tensor axis has)
BATCH = 1_000_003
#: a folded constant larger than this is not folded (it would not be shape arithmetic)
MAX_FOLDED = 1 << 20
#: shape arithmetic folded once its inputs are constant (Expand is a data op: handled below)
FOLDABLE = ("Shape", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Reshape", "ConstantOfShape", "Mul",
            "Add", "Sub", "Div", "Equal", "Where", "Cast", "Range", "Identity", "Size")
#: the ONNX ops this module adds to the loader's
SUPPORTED = ["LayerNormalization", "Softmax", "Erf", "Sigmoid", "Transpose", "Expand", "Gather"]

Handler = Callable[[object, onnx.NodeProto], None]


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _name(n: onnx.NodeProto) -> str:
    return n.name or n.output[0]


def _emit(b, n, op) -> None:
    b.ops.append(op)
    b.alias[n.output[0]] = op.name


# ---- folding the shape arithmetic -------------------------------------------------------------------
def _inferred_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Static shapes of the graph's tensors with the batch axis set to BATCH (None where unknown)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for inp in m.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = BATCH
    try:
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception as e:  # noqa: BLE001 - best effort: unfolded shape ops are reported by the loader
        log.debug("shape inference for folding failed: %s", e)
        return {}
    out = {}
    for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            out[v.name] = [int(d.dim_value) for d in dims]
    return out


def _evaluate(node: onnx.NodeProto, inputs: list, opset: int):
    from onnx.reference import ReferenceEvaluator

    names = [f"i{k}" for k in range(len(node.input))]
    n = onnx.helper.make_node(node.op_type, [nm if i else "" for nm, i in zip(names, node.input)],
                              list(node.output), domain=node.domain)
    n.attribute.extend(node.attribute)
    ins = [onnx.helper.make_tensor_value_info(nm, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), None)
           for nm, v, i in zip(names, inputs, node.input) if i]
    outs = [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o]
    g = onnx.helper.make_graph([n], "fold", ins, outs)
    model = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {nm: np.asarray(v) for nm, v, i in zip(names, inputs, node.input) if i}
    return ReferenceEvaluator(model).run(None, feeds)


def fold_shape_constants(b, model: onnx.ModelProto) -> None:
    """Fold the model's shape arithmetic into constants (``b.consts``), in graph order (module docstring)."""
    g = model.graph
    if not any(n.op_type == "Shape" for n in g.node):
        return
    shapes = _inferred_shapes(model)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=17)
    for n in g.node:
        if n.op_type not in FOLDABLE or not n.output or n.output[0] in b.consts:
            continue
        if n.op_type == "Shape":   # of a constant: its shape; of a data tensor: the inferred one (batch = BATCH)
            shape = list(np.shape(b.consts[n.input[0]])) if n.input[0] in b.consts else shapes.get(n.input[0])
            if shape is None:
                continue
            a = _attrs(n)
            b.consts[n.output[0]] = np.array(shape[a.get("start", 0):a.get("end", len(shape))], np.int64)
            continue
        if not all((not i) or i in b.consts for i in n.input):
            continue
        try:
            outs = _evaluate(n, [b.consts[i] if i else None for i in n.input], opset)
        except Exception as e:  # noqa: BLE001 - the node stays unfolded; the loader reports it by name
            log.debug("cannot fold %s (%s): %s", _name(n), n.op_type, e)
            continue
        if any(np.asarray(o).size > MAX_FOLDED for o in outs):
            continue
        for name, v in zip(n.output, outs):
            if name:
                b.consts[name] = np.asarray(v)


# ---- per-sample shapes of the float graph built so far ------------------------------------------------
def _shape_of(b, tensor: str) -> tuple[int, ...]:
    """The per-sample shape of ``tensor`` (an op of the float graph built so far, or the input)."""
    inp = next(i for i in b.model.graph.input if i.name not in b.consts)
    dims = tuple(int(d.dim_value) for d in inp.type.tensor_type.shape.dim[1:])
    if tensor == inp.name:
        return dims
    g = FGraph(inp.name, dims, list(b.ops), tensor)
    with np.errstate(all="ignore"):
        return tuple(g.run(np.zeros((1,) + dims), upto=tensor)[tensor].shape[1:])


def _per_sample(b, n, c: np.ndarray, rank: int, what: str) -> np.ndarray | None:
    """A constant operand of a data op with ``rank`` axes (batch included) as a per-sample constant:
    numpy broadcasting aligns trailing axes, so a constant of full rank must have batch size 1."""
    c = np.asarray(c, np.float64)
    if c.ndim < rank:
        return c
    if c.ndim == rank and c.shape[0] == 1:
        return c[0]
    b.problems.append(f"node '{_name(n)}' ({n.op_type}): {what} of shape {c.shape} varies over the batch axis")
    return None


# ---- handlers ---------------------------------------------------------------------------------------
def _wrap_matmul(base: Handler) -> Handler:
    def handle(b, n):
        ins = b.data_inputs(n)
        if len(ins) == 2:
            _emit(b, n, MatMul(_name(n), ins[0], ins[1]))
            return
        w = b.consts.get(n.input[1]) if len(n.input) > 1 else None
        if len(ins) == 1 and w is not None and w.ndim == 2 and len(_shape_of(b, ins[0])) >= 2:
            _emit(b, n, TokenLinear(_name(n), ins[0], np.asarray(w, np.float64).T.copy(), np.zeros(w.shape[1])))
            return
        base(b, n)
    return handle


def _wrap_add(base: Handler) -> Handler:
    def handle(b, n):
        ins = b.data_inputs(n)
        consts = [i for i in n.input if i in b.consts]
        if n.op_type == "Add" and len(ins) == 1 and len(consts) == 1 and np.asarray(b.consts[consts[0]]).size > 1:
            c = np.asarray(b.consts[consts[0]], np.float64)
            prod = next((o for o in b.ops if o.name == ins[0]), None)
            if isinstance(prod, TokenLinear) and c.size == prod.weight.shape[0] == c.shape[-1] \
                    and _only_reader(b, n, ins[0]):
                prod.bias = prod.bias + c.reshape(-1)          # MatMul + Add: the token linear's bias
                b.alias[n.output[0]] = prod.name
                return
            if not isinstance(prod, Linear):                   # a 2-D Linear's bias: the loader's own rule
                v = _per_sample(b, n, c, len(_shape_of(b, ins[0])) + 1, "the added constant")
                if v is not None:
                    _emit(b, n, AddConst(_name(n), ins[0], v))
                return
        base(b, n)
    return handle


def _only_reader(b, n, tensor_op: str) -> bool:
    """``n`` is the only ONNX node reading the output of the op named ``tensor_op``."""
    outs = {k for k, v in b.alias.items() if v == tensor_op}
    readers = [m for m in b.model.graph.node if any(i in outs for i in m.input)]
    return len(readers) == 1


def _wrap_mul(base: Handler) -> Handler:
    def handle(b, n):
        ins = b.data_inputs(n)
        if len(ins) == 2:
            _emit(b, n, Mul(_name(n), ins[0], ins[1]))
            return
        base(b, n)
    return handle


def _wrap_reshape(base: Handler) -> Handler:
    def handle(b, n):
        x = b.data_input(n)
        shape = b.const(n, 1, "shape")
        if x is None or shape is None:
            return
        t = [int(s) for s in np.asarray(shape).reshape(-1)]
        batch = getattr(b, "batch", None)   # a fixed batch (Brevitas' dynamo export), None when dynamic
        if not t or t[0] not in {BATCH, -1, 0, 1} | ({batch} if batch else set()):
            b.problems.append(f"Reshape node '{_name(n)}' to {t}: the batch axis must stay first (its target must "
                              "start with the batch size, -1 or 0)"
                              + (f" (the model's batch is {batch})" if batch not in (None, -1, 0, 1) else ""))
            return
        src = _shape_of(b, x)
        allowzero = int(_attrs(n).get("allowzero", 0))
        per = [src[i] if (v == 0 and not allowzero and i < len(src)) else v for i, v in enumerate(t[1:])]
        size = int(np.prod(src))
        if per.count(-1) > 1:
            b.problems.append(f"Reshape node '{_name(n)}' to {t}: more than one -1 after the batch axis")
            return
        if -1 in per:
            known = int(np.prod([v for v in per if v != -1]))
            per[per.index(-1)] = size // known if known else 0
        if int(np.prod(per)) != size or any(v <= 0 for v in per):
            b.problems.append(f"Reshape node '{_name(n)}': {src} cannot be reshaped to {per} per sample")
            return
        if len(per) == 1:   # a flattening reshape: the loader's own Flatten
            base(b, n)
            return
        _emit(b, n, Reshape(_name(n), x, tuple(per)))
    return handle


def _transpose(b, n):
    x = b.data_input(n)
    if x is None:
        return
    perm = [int(p) for p in _attrs(n).get("perm", [])]
    rank = len(_shape_of(b, x)) + 1
    perm = perm or list(range(rank))[::-1]
    if perm[0] != 0:
        b.problems.append(f"Transpose node '{_name(n)}' moves the batch axis (perm {perm}); only per-sample "
                          "transposes are supported")
        return
    _emit(b, n, Transpose(_name(n), x, tuple(perm)))


def _expand(b, n):
    c = b.consts.get(n.input[0])
    shape = b.consts.get(n.input[1]) if len(n.input) > 1 else None
    if c is None or shape is None:
        b.problems.append(f"Expand node '{_name(n)}': only a constant expanded over the batch (a class token) is "
                          "supported")
        return
    t = [int(s) for s in np.asarray(shape).reshape(-1)]
    if not t or t[0] != BATCH:
        b.problems.append(f"Expand node '{_name(n)}' to {t}: only an expansion over the batch axis is supported")
        return
    full = np.broadcast_shapes(np.shape(c), tuple([1] + t[1:]))
    b.consts[n.output[0]] = np.broadcast_to(np.asarray(c), full).copy()   # batch axis 1: one sample's value


def _wrap_concat(base: Handler) -> Handler:
    def handle(b, n):
        ins = [i for i in n.input if i]
        consts = [i for i in ins if i in b.consts]
        if not consts:
            base(b, n)
            return
        data = [i for i in ins if i not in b.consts]
        if len(data) != 1:
            b.problems.append(f"Concat node '{_name(n)}': joins constants with {len(data)} tensors; one tensor and "
                              "constants (a class token) are supported")
            return
        x = b.alias.get(data[0], data[0])
        rank = len(_shape_of(b, x)) + 1
        axis = int(_attrs(n).get("axis", 1)) % rank
        pos = ins.index(data[0])
        cur, k = x, 0
        for side, group in ((True, ins[:pos][::-1]), (False, ins[pos + 1:])):
            for ci in group:
                v = _per_sample(b, n, b.consts[ci], rank, "the concatenated constant")
                if v is None:
                    return
                k += 1
                name = _name(n) if k == len(consts) else f"{_name(n)}/const{k}"
                op = ConcatConst(name, cur, np.asarray(v, np.float64), axis, side)
                b.ops.append(op)
                cur = op.name
        b.alias[n.output[0]] = cur
    return handle


def _gather(b, n):
    x = b.data_input(n)
    idx = b.const(n, 1, "indices")
    if x is None or idx is None:
        return
    if np.asarray(idx).ndim != 0:
        b.problems.append(f"Gather node '{_name(n)}': only one scalar index is supported (got indices of shape "
                          f"{np.shape(idx)})")
        return
    shape = _shape_of(b, x)
    axis = int(_attrs(n).get("axis", 0)) % (len(shape) + 1)
    if axis == 0:
        b.problems.append(f"Gather node '{_name(n)}' selects along the batch axis")
        return
    _emit(b, n, Select(_name(n), x, axis, int(idx) % shape[axis - 1]))


def _wrap_reduce_mean(base: Handler) -> Handler:
    def handle(b, n):
        x = b.data_input(n)
        if x is None:
            return
        rank = len(_shape_of(b, x)) + 1
        a = _attrs(n)
        axes = a.get("axes")
        if axes is None and len(n.input) > 1 and n.input[1]:
            axes = b.const(n, 1, "axes")
        axes = sorted(int(v) % rank for v in np.asarray(axes if axes is not None else []).reshape(-1))
        if rank == 4 and axes == [2, 3]:
            base(b, n)              # global pooling over both spatial axes (the loader's own)
            return
        if not axes or 0 in axes:
            b.problems.append(f"ReduceMean node '{_name(n)}': axes {axes} must be per sample (not the batch axis)")
            return
        _emit(b, n, Mean(_name(n), x, tuple(axes), bool(a.get("keepdims", 1))))
    return handle


def _layernorm(b, n):
    x = b.data_input(n)
    scale = b.const(n, 1, "scale")
    if x is None or scale is None:
        return
    bias = b.const(n, 2, "bias") if len(n.input) > 2 and n.input[2] else None
    rank = len(_shape_of(b, x)) + 1
    a = _attrs(n)
    if int(a.get("axis", -1)) % rank != rank - 1:
        b.problems.append(f"LayerNormalization node '{_name(n)}': axis {a.get('axis')} normalises several axes; only "
                          "the last axis (a token's features) is supported")
        return
    if any(o for o in n.output[1:]):
        b.problems.append(f"LayerNormalization node '{_name(n)}': its Mean / InvStdDev outputs are not supported")
        return
    D = _shape_of(b, x)[-1]
    scale = np.broadcast_to(np.asarray(scale, np.float64).reshape(-1), (D,)).copy()
    bias = np.zeros(D) if bias is None else np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), (D,)).copy()
    _emit(b, n, LayerNorm(_name(n), x, scale, bias, float(a.get("epsilon", 1e-5))))


def _softmax(b, n):
    x = b.data_input(n)
    if x is None:
        return
    rank = len(_shape_of(b, x)) + 1
    axis = int(_attrs(n).get("axis", -1)) % rank
    opset = max((o.version for o in b.model.opset_import if o.domain in ("", "ai.onnx")), default=17)
    if opset < 13 and axis != rank - 1:
        b.problems.append(f"Softmax node '{_name(n)}' (opset {opset} < 13) over axis {axis} flattens the trailing "
                          "axes; export with opset >= 13")
        return
    if axis == 0:
        b.problems.append(f"Softmax node '{_name(n)}' is taken over the batch axis")
        return
    _emit(b, n, Softmax(_name(n), x, axis))


def _unary(cls):
    def handle(b, n):
        x = b.data_input(n)
        if x is not None:
            _emit(b, n, cls(_name(n), x))
    return handle


def transformer_handlers(base: dict[str, Handler]) -> dict[str, Handler]:
    """The loader's handler table extended with the transformer's ops (module docstring)."""
    out = dict(base)
    out.update({
        "MatMul": _wrap_matmul(base["MatMul"]), "Add": _wrap_add(base["Add"]), "Mul": _wrap_mul(base["Mul"]),
        "Reshape": _wrap_reshape(base["Reshape"]), "Concat": _wrap_concat(base["Concat"]),
        "ReduceMean": _wrap_reduce_mean(base["ReduceMean"]), "Transpose": _transpose, "Expand": _expand,
        "Gather": _gather, "LayerNormalization": _layernorm, "Erf": _unary(Erf),
        "Softmax": _at_output_or(base.get("Softmax"), _softmax),
        "Sigmoid": _at_output_or(base.get("Sigmoid"), _unary(Sigmoid)),
    })
    return out


def _at_output_or(at_output: Handler | None, inside: Handler) -> Handler:
    """The loader's own handler for a node on the graph output's argmax-preserving tail (it drops the
    node), ``inside`` for one inside the network (a transformer's Softmax, SiLU's Sigmoid)."""
    def handle(b, n):
        if at_output is not None and _name(n) in getattr(b, "output_tail", ()):
            at_output(b, n)
        else:
            inside(b, n)
    return handle
