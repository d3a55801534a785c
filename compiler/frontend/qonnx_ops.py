"""QONNX's quantizer ops (``Quant``, ``BipolarQuant``, ``Trunc``) exactly as the QONNX spec defines them.

Two forms of the same arithmetic, the order of operations and the float32 rounding of every step
copied from the spec (qonnx 1.0.0, ``qonnx/custom_op/general/{intquant,bipolar_quant,trunc}.py``):

* numpy functions (``quant``, ``bipolar_quant``, ``trunc``): the reference, used in tests;
* ``expand_qonnx(model)``: every QONNX node replaced by standard ONNX nodes computing the same float32
  steps (Div, Add, Max/Min, Round/Floor/Ceil, Sub, Mul, Where), so that onnxruntime runs a QONNX model in
  one session. Each step is one IEEE-754 float32 operation in both forms (correctly rounded), so the two
  are equal bit for bit; tests/compiler/frontend/test_qonnx_ops.py checks that against qonnx's own
  executor on Brevitas' exports. Parameters that only enter through constants (the integer range, the
  Trunc scale 2^round(log2(out_scale / scale))) are computed with numpy, as the spec computes them.

    Quant(x, scale, zeropt, bitwidth; signed, narrow, rounding_mode):
        y = x / scale + zeropt; y = clamp(y, min_int, max_int); y = round_mode(y); (y - zeropt) * scale
        (signed 1-bit: y = +1 where x / scale + zeropt >= 0, else -1, no clamp or rounding)
    BipolarQuant(x, scale):  where(x >= 0, 1, -1) * scale
    Trunc v1(x, scale, zeropt, in_bits, out_bits; rounding_mode):
        y = round(x / scale + zeropt) / 2^(in_bits - out_bits); y = round_mode(y); (y - zeropt) * scale
    Trunc v2(x, scale, zeropt, in_bits, out_scale, out_bits; rounding_mode, signed, narrow):
        t = 2^round(log2(out_scale / scale)); y = round(x / scale + zeropt) / t;
        y = clamp(y, min_int(out_bits), max_int(out_bits)); y = round_mode(y); (y - zeropt / t) * out_scale

``round`` is numpy's (half to even), ONNX ``Round``. Rounding modes: ROUND / HALF_EVEN, FLOOR, CEIL, UP
(away from zero), DOWN (toward zero), HALF_UP and HALF_DOWN (ties away from / toward zero).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")
QONNX_OPS = ("Quant", "BipolarQuant", "Trunc")
ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN")


class QonnxOpError(ValueError):
    """A QONNX node this module cannot run (unknown rounding mode, non-constant parameters...)."""


def min_int(signed: bool, narrow: bool, bits) -> np.ndarray:
    bits = np.asarray(bits, np.float64)
    if signed:
        return -(2 ** (bits - 1)) + (1 if narrow else 0)
    return np.zeros_like(bits)


def max_int(signed: bool, narrow: bool, bits) -> np.ndarray:
    bits = np.asarray(bits, np.float64)
    if signed:
        return 2 ** (bits - 1) - 1
    return 2 ** bits - 1 - (1 if narrow else 0)


def _mode(mode) -> str:
    m = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
    if m not in ROUNDING_MODES:
        raise QonnxOpError(f"rounding_mode {mode!r} is not one of {', '.join(ROUNDING_MODES)}")
    return m


def round_mode(y: np.ndarray, mode) -> np.ndarray:
    m = _mode(mode)
    if m in ("ROUND", "HALF_EVEN"):
        return np.round(y)
    if m == "FLOOR":
        return np.floor(y)
    if m == "CEIL":
        return np.ceil(y)
    if m == "UP":
        return np.sign(y) * np.ceil(np.abs(y))
    if m == "DOWN":
        return np.fix(y)
    if m == "HALF_UP":
        return np.sign(y) * np.floor(np.abs(y) + 0.5)
    return np.sign(y) * np.ceil(np.abs(y) - 0.5)  # HALF_DOWN


def _f(v, like) -> np.ndarray:
    return np.asarray(v).astype(like.dtype)


def quant(x, scale, zeropt, bitwidth, signed=True, narrow=False, rounding_mode="ROUND") -> np.ndarray:
    y = x / scale
    y = y + zeropt
    if float(np.asarray(bitwidth).reshape(-1)[0]) == 1 and signed:
        y = np.where(y >= 0, _f(1, y), _f(-1, y))
    else:
        lo, hi = _f(min_int(signed, narrow, bitwidth), y), _f(max_int(signed, narrow, bitwidth), y)
        y = np.where(y > hi, hi, y)
        y = np.where(y < lo, lo, y)
        y = round_mode(y, rounding_mode)
    return (y - zeropt) * scale


def bipolar_quant(x, scale) -> np.ndarray:
    return np.where(x >= 0, _f(1, x), _f(-1, x)) * scale


def trunc_scale_v2(scale, out_scale) -> np.ndarray:
    return 2 ** np.round(np.log2(out_scale / scale))


def trunc(x, scale, zeropt, in_bits, out_scale_or_bits, out_bits=None, rounding_mode="FLOOR", signed=True,
          narrow=False) -> np.ndarray:
    """Trunc v1 (``out_bits`` None: the fifth input is the output bit width) or v2."""
    y = np.round(x / scale + zeropt)
    if out_bits is None:  # v1
        t = 2.0 ** (np.asarray(in_bits) - np.asarray(out_scale_or_bits))
        y = round_mode(y / _f(t, y), rounding_mode)
        return (y - zeropt) * scale
    out_scale = out_scale_or_bits
    t = _f(trunc_scale_v2(scale, out_scale), y)
    y = y / t
    lo, hi = _f(min_int(signed, narrow, out_bits), y), _f(max_int(signed, narrow, out_bits), y)
    y = np.where(y > hi, hi, y)
    y = np.where(y < lo, lo, y)
    y = round_mode(y, rounding_mode)
    return (y - zeropt / t) * out_scale


# ---- the same as standard ONNX nodes ------------------------------------------------------------
def is_qonnx_node(n: onnx.NodeProto) -> bool:
    return n.domain in QONNX_DOMAINS and n.op_type in QONNX_OPS


def _attrs(n) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


class _Expander:
    def __init__(self, model: onnx.ModelProto):
        self.consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                a = _attrs(n)
                if "value" in a:
                    self.consts[n.output[0]] = numpy_helper.to_array(a["value"])
        self.new_inits: list[onnx.TensorProto] = []
        self.k = 0

    def const(self, node, idx: int, what: str) -> np.ndarray:
        name = node.input[idx] if idx < len(node.input) else ""
        if name not in self.consts:
            raise QonnxOpError(f"{node.op_type} node '{node.name or node.output[0]}': its {what} ('{name}') must be a "
                               "constant (an initializer or Constant node) to be run exactly")
        return self.consts[name]

    def init(self, node, value: np.ndarray) -> str:
        self.k += 1
        name = f"{node.output[0]}__snnc_c{self.k}"
        self.new_inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, nodes: list, node, op_type: str, inputs: list[str], out: str | None = None) -> str:
        """One standard node; the one writing the QONNX node's output keeps the QONNX node's name."""
        self.k += 1
        name = node.name if out == node.output[0] and node.name else f"{node.name or node.output[0]}/{op_type}_{self.k}"
        out = out or f"{node.output[0]}__snnc_t{self.k}"
        nodes.append(helper.make_node(op_type, inputs, [out], name=name))
        return out

    def rounding(self, nodes, node, y: str, mode, ftype, out: str | None = None) -> str:
        m = _mode(mode)
        simple = {"ROUND": "Round", "HALF_EVEN": "Round", "FLOOR": "Floor", "CEIL": "Ceil"}
        if m in simple:
            return self.op(nodes, node, simple[m], [y], out)
        s = self.op(nodes, node, "Sign", [y])
        a = self.op(nodes, node, "Abs", [y])
        if m == "HALF_UP":
            a = self.op(nodes, node, "Floor", [self.op(nodes, node, "Add", [a, self.init(node, np.array(0.5, ftype))])])
        elif m == "HALF_DOWN":
            a = self.op(nodes, node, "Ceil", [self.op(nodes, node, "Sub", [a, self.init(node, np.array(0.5, ftype))])])
        else:
            a = self.op(nodes, node, "Ceil" if m == "UP" else "Floor", [a])
        return self.op(nodes, node, "Mul", [s, a], out)

    def clamp(self, nodes, node, y: str, lo: np.ndarray, hi: np.ndarray, ftype) -> str:
        y = self.op(nodes, node, "Min", [y, self.init(node, hi.astype(ftype))])
        return self.op(nodes, node, "Max", [y, self.init(node, lo.astype(ftype))])

    def expand(self, node) -> list[onnx.NodeProto]:
        a = _attrs(node)
        x, out = node.input[0], node.output[0]
        scale = self.const(node, 1, "scale")
        ftype = scale.dtype if scale.dtype.kind == "f" else np.dtype(np.float32)
        nodes: list = []
        if node.op_type == "BipolarQuant":
            neg = self.op(nodes, node, "Less", [x, self.init(node, np.array(0, ftype))])
            pm = self.op(nodes, node, "Where", [neg, self.init(node, np.array(-1, ftype)), self.init(node, np.array(1, ftype))])
            self.op(nodes, node, "Mul", [pm, node.input[1]], out)
            return nodes
        zp = self.const(node, 2, "zero point")
        y = self.op(nodes, node, "Div", [x, node.input[1]])
        if node.op_type == "Quant":
            bits = self.const(node, 3, "bit width")
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            y = self.op(nodes, node, "Add", [y, node.input[2]])
            if float(np.asarray(bits).reshape(-1)[0]) == 1 and signed:
                neg = self.op(nodes, node, "Less", [y, self.init(node, np.array(0, ftype))])
                y = self.op(nodes, node, "Where", [neg, self.init(node, np.array(-1, ftype)),
                                                    self.init(node, np.array(1, ftype))])
            else:
                y = self.clamp(nodes, node, y, min_int(signed, narrow, bits), max_int(signed, narrow, bits), ftype)
                y = self.rounding(nodes, node, y, a.get("rounding_mode", "ROUND"), ftype)
            y = self.op(nodes, node, "Sub", [y, node.input[2]])
            self.op(nodes, node, "Mul", [y, node.input[1]], out)
            return nodes
        # Trunc: v1 has 5 inputs, v2 6
        y = self.op(nodes, node, "Round", [self.op(nodes, node, "Add", [y, node.input[2]])])
        mode = a.get("rounding_mode", "FLOOR")
        if len(node.input) == 5:
            t = 2.0 ** (np.asarray(self.const(node, 3, "input bit width"))
                        - np.asarray(self.const(node, 4, "output bit width")))
            y = self.rounding(nodes, node, self.op(nodes, node, "Div", [y, self.init(node, np.asarray(t).astype(ftype))]),
                              mode, ftype)
            y = self.op(nodes, node, "Sub", [y, node.input[2]])
            self.op(nodes, node, "Mul", [y, node.input[1]], out)
            return nodes
        out_scale = self.const(node, 4, "output scale")
        out_bits = self.const(node, 5, "output bit width")
        t = np.asarray(trunc_scale_v2(scale, out_scale)).astype(ftype)
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        y = self.op(nodes, node, "Div", [y, self.init(node, t)])
        y = self.clamp(nodes, node, y, min_int(signed, narrow, out_bits), max_int(signed, narrow, out_bits), ftype)
        y = self.rounding(nodes, node, y, mode, ftype)
        y = self.op(nodes, node, "Sub", [y, self.init(node, (np.asarray(zp) / t).astype(ftype))])
        self.op(nodes, node, "Mul", [y, node.input[4]], out)
        return nodes


def expand_qonnx(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every QONNX Quant / BipolarQuant / Trunc node replaced by standard ONNX
    nodes computing the spec's float32 steps (same output tensor names; the node writing it keeps the
    QONNX node's name). Raises QonnxOpError naming the
    node for one it cannot expand, and for any other node of a QONNX/FINN custom domain."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    ex = _Expander(out)
    other = [f"'{n.name or n.output[0]}' ({n.domain}:{n.op_type})" for n in out.graph.node
             if n.domain not in ("", "ai.onnx") and not is_qonnx_node(n)]
    if other:
        raise QonnxOpError(f"custom operator node(s) {', '.join(other)}: no executor for them (supported custom "
                           f"ops: {', '.join(QONNX_OPS)} of the QONNX/FINN domains)")
    nodes = []
    for n in out.graph.node:
        nodes.extend(ex.expand(n) if is_qonnx_node(n) else [n])
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    out.graph.initializer.extend(ex.new_inits)
    kept = [o for o in out.opset_import if o.domain not in QONNX_DOMAINS]
    del out.opset_import[:]
    out.opset_import.extend(kept)
    default = next((o for o in out.opset_import if o.domain in ("", "ai.onnx")), None)
    if default is None:
        out.opset_import.append(helper.make_opsetid("", 13))
    elif default.version < 11:
        raise QonnxOpError(f"the model's ONNX opset is {default.version}; running its QONNX ops needs opset >= 11 "
                           "(ONNX Round)")
    return out
