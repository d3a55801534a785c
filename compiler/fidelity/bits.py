"""How many bits each layer's weights have in the user's model, and how many snnc keeps.

The model's: for a Conv / Gemm / MatMul whose weight comes out of a quantizer, the signed bits of its
largest integer |n| (ONNX DequantizeLinear: n = q - zero point, so uint8 weights with a zero point need 9
signed bits; QONNX Quant: n = round(clamp(w / s + zp)) - zp per the spec; BipolarQuant: +-1, 2 bits). Float
weights have no integer bit count (None). snnc's: the signed bits of the largest integer weight mantissa
of the layer's incoming projections (weight_precision.layer_weight_bits).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..frontend import qonnx_ops
from ..frontend.qonnx_ops import QONNX_DOMAINS
from ..weight_precision import layer_weight_bits, signed_bits
from .verdict import LayerBits

_PASS_THROUGH = ("Identity", "Transpose", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten")


def _attrs(n) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}


def _weight_integers(model: onnx.ModelProto, node: onnx.NodeProto) -> np.ndarray | None:
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output if o}
    if len(node.input) < 2:
        return None
    cur = producer.get(node.input[1])
    while cur is not None and cur.op_type in _PASS_THROUGH and cur.input:
        cur = producer.get(cur.input[0])
    if cur is None:
        return None
    ins = [consts.get(i) if i else None for i in cur.input]
    if cur.op_type == "DequantizeLinear" and cur.domain in ("", "ai.onnx") and ins and ins[0] is not None:
        q = np.asarray(ins[0]).astype(np.int64)
        zp = ins[2] if len(ins) > 2 and ins[2] is not None else None
        if zp is None:
            return q
        zp = np.asarray(zp).astype(np.int64)
        if zp.size > 1:
            axis = int(_attrs(cur).get("axis", 1)) % q.ndim
            shape = [1] * q.ndim
            shape[axis] = -1
            zp = zp.reshape(shape)
        return q - zp
    if cur.domain in QONNX_DOMAINS and cur.op_type == "BipolarQuant":
        return np.ones(1, np.int64)
    if cur.domain in QONNX_DOMAINS and cur.op_type == "Quant" and all(v is not None for v in ins[:4]):
        a = _attrs(cur)
        x, s, zp, bits = (np.asarray(v).astype(np.float32) for v in ins[:4])
        y = qonnx_ops.quant(x, s, zp, bits, bool(a.get("signed", 1)), bool(a.get("narrow", 0)),
                            a.get("rounding_mode", "ROUND"))
        return np.round(y / s).astype(np.int64)
    return None


def model_weight_bits(model: onnx.ModelProto) -> dict[str, int]:
    """Signed bits of the integer weights per linear ONNX node (by node name; nodes with float weights left
    out)."""
    out = {}
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm", "MatMul"):
            ints = _weight_integers(model, n)
            if ints is not None and ints.size:
                out[n.name or n.output[0]] = max(signed_bits(float(np.abs(ints).max())), 2)
    return out


def layer_bits(net, model: onnx.ModelProto) -> list[LayerBits]:
    """Per population that replaces a quantized activation: the bits snnc keeps and the model's weights have
    (only layers whose every linear op has integer weights). Reads the layer records' ``onnx_linear`` /
    ``onnx_linears``."""
    need = model_weight_bits(model)
    kept = layer_weight_bits(net)
    out = []
    for r in net.metadata.get("layers", []):
        name = r.get("layer")
        if not name or r.get("role") or name not in kept:
            continue
        linears = r.get("onnx_linears") or ([r["onnx_linear"]] if r.get("onnx_linear") else [])
        if linears and all(lin in need for lin in linears):
            out.append(LayerBits(name, kept[name], max(need[lin] for lin in linears)))
    return out
