"""Quantizer formats: ONNX QDQ (QuantizeLinear / DequantizeLinear, Brevitas QCDQ) and QONNX / FINN
(Quant, BipolarQuant, Trunc), on weights (folded to float constants, exactly as onnxruntime / the QONNX
spec computes them) and on activations (spelled with the float graph's elementwise ops, for
compiler/passes/qdq.py and FuseQuantAct).
"""

from __future__ import annotations

import logging

import numpy as np
import onnx

from .float_graph import AvgPool, Clamp, Rounding, ScalarAffine
from . import qonnx_ops
from .builder import attrs, emit, node_name, scalar, user_layer

log = logging.getLogger(__name__)


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
    a = attrs(n)
    if zp is not None:
        return np.asarray(zp).dtype
    if "output_dtype" in a and a["output_dtype"]:
        return onnx.helper.tensor_dtype_to_np_dtype(a["output_dtype"])
    return np.dtype(np.uint8)


def _fold_quantize(n, ins):
    """onnxruntime's QuantizeLinear: saturate(round_half_even(x / s) + zp), computed in float32."""
    x, s = np.asarray(ins[0], np.float32), ins[1]
    zp = ins[2] if len(ins) > 2 else None
    axis = attrs(n).get("axis", 1)
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
    axis = attrs(n).get("axis", 1)
    v = q.astype(np.int64) if q.dtype.kind in "iu" else q.astype(np.float32)
    if zp is not None:
        v = v - _bcast(zp, q, axis).astype(v.dtype)
    return (v.astype(np.float32) * _bcast(s, q, axis).astype(np.float32)).astype(np.float32)


def _fold_clip(n, ins):
    a = attrs(n)
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
    a = attrs(n)
    bits = scalar(ins[3])
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


def _f32(v) -> np.ndarray:
    v = np.asarray(v)
    return v.astype(np.float32) if v.dtype != np.float32 else v


def _fold_quant(n, ins):
    """QONNX Quant on a constant (weights): the spec's float32 arithmetic (qonnx_ops.quant), every rounding
    mode, signed 1-bit (bipolar) included."""
    a = attrs(n)
    return qonnx_ops.quant(_f32(ins[0]), _f32(ins[1]), _f32(ins[2]), _f32(ins[3]), bool(a.get("signed", 1)),
                           bool(a.get("narrow", 0)), a.get("rounding_mode", "ROUND")).astype(np.float32)


def _fold_bipolar(n, ins):
    """QONNX BipolarQuant on a constant (binary weights): where(x >= 0, 1, -1) * scale."""
    return qonnx_ops.bipolar_quant(_f32(ins[0]), _f32(ins[1])).astype(np.float32)


def _fold_cast(n, ins):
    return np.asarray(ins[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(attrs(n)["to"]))


def _fold_transpose(n, ins):
    return np.transpose(np.asarray(ins[0]), attrs(n).get("perm"))


FOLDABLE = {"QuantizeLinear": _fold_quantize, "DequantizeLinear": _fold_dequantize, "Clip": _fold_clip,
             "Quant": _fold_quant, "BipolarQuant": _fold_bipolar, "Cast": _fold_cast, "Transpose": _fold_transpose}


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
        if scalar(v) is None:
            b.problems.append(f"{n.op_type} node '{node_name(n)}': a per-channel {what} on an activation is not "
                              "supported (the quantized activation has one scale per layer)")
            return None
        vals.append(scalar(v))
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
        b.problems.append(f"QuantizeLinear node '{node_name(n)}': scale must be > 0, got {s}")
        return
    zarr = np.asarray(b.consts[n.input[2]]) if len(n.input) > 2 and n.input[2] else None
    info = np.iinfo(_qdtype(n, zarr))
    nm = node_name(n)
    ops = [ScalarAffine(f"{nm}/scale", x, 1.0 / s, 0.0), Rounding(f"{nm}/round", f"{nm}/scale", "half_even"),
           ScalarAffine(f"{nm}/zero_point", f"{nm}/round", 1.0, float(zp or 0.0))]
    b.ops += ops
    emit(b, n, Clamp(nm, ops[-1].name, float(info.min), float(info.max)))


def _dequantize_linear(b, n):
    x = b.data_input(n)
    if x is None:
        return
    p = _scalar_params(b, n, ((1, "scale"), (2, "zero point")))
    if p is None:
        return
    s, zp = p
    emit(b, n, ScalarAffine(node_name(n), x, float(s), -float(zp or 0.0) * float(s)))


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
        b.problems.append(f"Quant node '{node_name(n)}': scale must be > 0, got {s}")
        return
    lo, hi, mode = _quant_params(n, [None, s, zp, bits])
    nm = node_name(n)
    ops = [ScalarAffine(f"{nm}/scale", x, 1.0 / s, float(zp)), Clamp(f"{nm}/clip", f"{nm}/scale", lo, hi),
           Rounding(f"{nm}/round", f"{nm}/clip", mode)]
    b.ops += ops
    emit(b, n, ScalarAffine(nm, ops[-1].name, float(s), -float(zp) * float(s)))




_TRUNC_ROUNDING = {"FLOOR": "floor", "CEIL": "ceil", "ROUND": "half_even", "HALF_EVEN": "half_even",
                   "HALF_UP": "half_up", "DOWN": "floor", "UP": "ceil"}  # DOWN/UP/HALF_UP: on values >= 0


def _trunc_input_grid(b, x: str, scale: float) -> str | None:
    """Why ``x`` is not an integer multiple of ``scale`` in exact arithmetic (None when it is): Trunc's inner
    round(x / scale + zp) is then the identity and the rest is one quantized activation. Taken: an
    AveragePool (uniform divisor kh*kw, no padding) of a dequantized quantizer output (value = s_q * integer)
    with s_q / (scale * kh * kw) an integer (Brevitas TruncAvgPool2d: scale = s_q / (kh * kw))."""
    ops = {o.name: o for o in b.ops}
    pool = ops.get(x)
    if not isinstance(pool, AvgPool) or pool.kernel == (0, 0) or any(pool.pads) or pool.ceil_mode:
        return "its input is not an unpadded AveragePool"
    src = ops.get(pool.input)
    if not (isinstance(src, ScalarAffine) and src.mul > 0 and isinstance(ops.get(src.input), Rounding)
            and abs(src.add / src.mul - round(src.add / src.mul)) < 1e-6):
        return "the AveragePool does not read a quantized activation"
    k = pool.kernel[0] * pool.kernel[1]
    ratio = src.mul / (scale * k)
    if not (ratio >= 1 - 1e-6 and abs(ratio - round(ratio)) <= 1e-6 * max(1.0, ratio)):
        return (f"its scale {scale:.6g} does not divide the pooled activation's step {src.mul:.6g} / {k} into an "
                "integer")
    return None


def _trunc(b, n):
    """QONNX Trunc (v1: 5 inputs, v2: 6) after an AveragePool of a quantized activation: one quantized
    activation y = out_scale * (round_mode(clamp((x / scale + zp) / t, lo, hi)) - zp / t) with t the Trunc
    scale (v2: 2^round(log2(out_scale / scale)); v1: 2^(in_bits - out_bits), no clamp, rescaled by scale).
    The inner round is dropped: x / scale is an integer there (``_trunc_input_grid``)."""
    x = b.data_input(n)
    if x is None:
        return
    v2 = len(n.input) >= 6
    idx = ((1, "scale"), (2, "zero point"), (3, "input bit width"), (4, "output scale" if v2 else "output bit width"))
    p = _scalar_params(b, n, idx + (((5, "output bit width"),) if v2 else ()))
    if p is None:
        return
    a = attrs(n)
    mode = a.get("rounding_mode", "FLOOR")
    mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
    nm = node_name(n)
    if mode not in _TRUNC_ROUNDING:
        b.problems.append(f"Trunc node '{nm}': rounding_mode {mode} is not supported ({', '.join(_TRUNC_ROUNDING)})")
        return
    scale, zp = float(p[0]), float(p[1])
    why = _trunc_input_grid(b, x, scale) if scale > 0 else f"scale must be > 0, got {scale}"
    if why is not None:
        b.problems.append(f"Trunc (layer {user_layer(n)}): {why}; snnc takes Trunc "
                          "only as Brevitas' TruncAvgPool2d writes it (after an AveragePool of a quantized activation)")
        return
    if v2:
        out_scale, out_bits = float(p[3]), float(p[4])
        t = float(qonnx_ops.trunc_scale_v2(np.float32(scale), np.float32(out_scale)))
        lo = float(qonnx_ops.min_int(bool(a.get("signed", 1)), bool(a.get("narrow", 0)), out_bits))
        hi = float(qonnx_ops.max_int(bool(a.get("signed", 1)), bool(a.get("narrow", 0)), out_bits))
        post = ScalarAffine(nm, f"{nm}/round", out_scale, -(zp / t) * out_scale)
    else:
        t = 2.0 ** (float(p[2]) - float(p[3]))
        lo, hi, out_scale = -np.inf, np.inf, scale
        post = ScalarAffine(nm, f"{nm}/round", scale, -zp * scale)
    rounding = _TRUNC_ROUNDING[mode]
    if rounding == "half_even":
        log.warning("Trunc (layer %s) rounds half to even; an integrate-and-fire neuron rounds ties up, and "
                    "after an average pool ties are common (sums on (2m+1) t/2, t = %g): the SNN differs there by one "
                    "level (verify --against ann counts them); export with rounding_mode FLOOR (Brevitas: "
                    "TruncAvgPool2d(trunc_quant=TruncTo8bit)) for an exact conversion", user_layer(n), t)
    b.ops += [ScalarAffine(f"{nm}/scale", x, 1.0 / (scale * t), zp / t), Clamp(f"{nm}/clip", f"{nm}/scale", lo, hi),
              Rounding(f"{nm}/round", f"{nm}/clip", rounding)]
    emit(b, n, post)


def _bipolar_activation(b, n):
    b.problems.append(f"BipolarQuant (layer {user_layer(n)}) quantizes an activation to -1/+1: a "
                      "spiking layer counts spikes, 0..L, and cannot carry negative activations; snnc takes "
                      "BipolarQuant on weights (binary weights), with unsigned activations (e.g. QuantReLU)")


QUANT_HANDLERS = {"QuantizeLinear": _quantize_linear, "DequantizeLinear": _dequantize_linear, "Quant": _quant,
                  "Trunc": _trunc, "BipolarQuant": _bipolar_activation}
