"""Lowering of plain float ReLU networks, training-free (paper 004; docs/training_free.md).

Every ReLU becomes a population of multi-threshold neurons with a calibrated threshold (per layer or
per channel); a max pool of a ReLU becomes a graded max-pool unit (Theorem 4.2). The affine
expressions over sources, the input node and the readout are shared with ``lower.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snnc.ir import (Coding, DifferentialCoding, Input, MultiThreshold, Network, NeuronModel, Population, RateCoding,
                     SumPool2d, conv_output_size)

from .errors import ConversionError
from .graph import Clamp, FGraph, MaxPool, QuantAct, Relu, Rounding
from .integerize import RealLayer, integerize_mt_population, integerize_readout
from .lower import Source, _channel_bias, _explain, _finite, _input_node, _Lowering, _main_kind, _readout_layer, _Refuse
from .targets import TargetProfile


def _out_axis(theta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-output-channel thresholds shaped to divide a weight in the IR layout (axis 0 = output)."""
    return theta if theta.ndim == 0 else theta.reshape((-1,) + (1,) * (w.ndim - 1))



# ---- plain ReLU networks, training-free (paper 004) -------------------------------------------------
def lower_relu(
    g: FGraph, target: TargetProfile, timesteps: int | None, input_range, neuron: NeuronModel,
    relu_thresholds: dict[str, float], coding: Coding | None,
) -> tuple[Network, dict]:
    """A plain float ReLU graph -> multi-threshold populations (docs/conversion.md, "Training-free").

    Every Relu becomes a population of ``neuron`` (a MultiThreshold with relu=True) with base
    threshold theta from calibration (``relu_thresholds``, one per layer). A message is worth
    theta_s / 2^(n-1) of its source, so a target population sees w' = W gamma_s / theta_t per step.
    """
    coding = coding if coding is not None else RateCoding()
    differential = isinstance(coding, DifferentialCoding)
    if not isinstance(neuron, MultiThreshold):
        raise ConversionError(
            f"plain ReLU networks are converted with multi-threshold neurons (--neuron multi-threshold:N), "
            f"not {type(neuron).__name__}")
    bad = [_explain(o) for o in g.ops if isinstance(o, (QuantAct, Clamp, Rounding))]
    if bad:
        raise ConversionError("a network converted from calibration data must have plain ReLUs only:\n"
                              + "\n".join(f"  - {p}" for p in bad))
    relus = [o for o in g.ops if isinstance(o, Relu)]
    if not relus:
        raise ConversionError("the model has no ReLU: nothing to turn into spiking neurons")
    missing = [r.name for r in relus if r.name not in relu_thresholds]
    if missing:
        raise ConversionError(f"no calibrated threshold for ReLU node(s) {missing}")
    if timesteps is None:
        raise ConversionError("a plain ReLU network has no quantization levels L to take T from: give --timesteps")
    T = int(timesteps)
    fmt = target.numeric
    inp = _input_node(g, input_range, fmt.input_bits)
    lw = _Lowering(g)
    lw.sources[g.input_name] = Source(inp.name, tuple(g.input_shape), inp.scale, inp.scale)
    nodes, projs, report, problems = [inp], [], [], []
    by_name = {inp.name: inp}
    counters: dict[str, int] = {}
    for op in [o for o in g.ops if isinstance(o, (Relu, MaxPool))]:  # graph order: a pool after its ReLU
        if isinstance(op, MaxPool):  # a ReLU's max pool -> a graded unit (Theorem 4.2), else a named refusal
            _lower_graded_maxpool(op, lw, neuron, nodes, projs, report, problems, by_name)
            continue
        theta = np.asarray(relu_thresholds[op.name], np.float64)
        try:
            if theta.size == 0 or not np.all(np.isfinite(theta) & (theta > 0)):
                raise _Refuse(f"ReLU '{op.name}': calibrated threshold(s) {theta} not all positive numbers")
            e = lw.expr(op.input)
            if theta.ndim and theta.size != e.shape[0]:
                raise _Refuse(f"ReLU '{op.name}': {theta.size} calibrated thresholds for {e.shape[0]} channels")
            if any(lw.sources[t.source].node.startswith("<") for t in e.terms):
                raise _Refuse("")
            kind = _main_kind(e.terms)
            counters[kind] = counters.get(kind, 0) + 1
            name = f"{kind}{counters[kind]}"
            b = _channel_bias(e, f"before ReLU '{op.name}'")
            per_channel = theta.ndim == 1 and not np.all(theta == theta[0])
            if not per_channel:
                theta = np.asarray(theta.reshape(-1)[0])
            mats = lw.projections(e, name, per_channel=per_channel)
            ws = [lw.sources[t.source].gamma * w / _out_axis(theta, w) for t, w, _ in mats]
            _finite(name, op.name, ws, b / theta)
            layer = RealLayer(name, tuple(e.shape), ws, [mk for _, _, mk in mats], b / theta)
            node, ps, ex = integerize_mt_population(layer, neuron, theta, T, fmt, by_name, coding)
        except _Refuse as err:
            lw.refuse(op.name, err, problems)
            continue
        nodes.append(node)
        by_name[name] = node
        projs.extend(ps)
        flat = e.flat and len(e.shape) > 1
        if per_channel:  # a message of channel c is worth theta_c / 2^(n-1): carried by the ident terms
            lw.sources[op.name] = Source(name, tuple(e.shape), 1.0, float(theta.max()), flat,
                                         channel_scale=theta / neuron.unit_divisor)
        else:
            lw.sources[op.name] = Source(name, tuple(e.shape), float(theta) / neuron.unit_divisor, float(theta), flat)
        linears = list(dict.fromkeys(o for t, _, _ in mats for o in t.ops))
        report.append({"layer": name, "onnx_linear": linears[0] if linears else None, "onnx_activation": op.name,
                       "quantizer": None, "levels": None, "lambda": float(theta.max()), "exponent": ex,
                       "shape": list(e.shape), "neuron": type(neuron).__name__,
                       "threshold_real": theta.tolist(), "threshold_scope": "channel" if per_channel else "layer",
                       **({"onnx_linears": linears} if linears[1:] else {})})
    e, mats, layer = _readout_layer(lw, g, problems)
    # rate: the readout sums T per-step currents (the T = L formulas with L = 1); differential: it
    # accumulates the encoded value once (R0 = round(b S), value scaled by 2^F in the simulator)
    node, ps, ex = integerize_readout(layer, 1 if differential else T, fmt, by_name, levels=1, coding=coding,
                                      timesteps=T)
    if differential:
        node = replace(node, scale=node.scale / coding.one)
    nodes.append(node)
    projs.extend(ps)
    linears = list(dict.fromkeys(o for t, _, _ in mats for o in t.ops))
    report.append({"layer": "readout", "onnx_linear": linears[0] if linears else None, "onnx_activation": None,
                   "quantizer": None, "levels": None, "lambda": None, "exponent": ex, "shape": list(e.shape)})
    return Network(nodes, projs, T, coding=coding), {"layers": report, "timesteps": T, "levels": None}


# ---- max pooling in plain ReLU networks: graded units (paper 004 Theorem 4.2) -----------------------
def _lower_graded_maxpool(op: MaxPool, lw: _Lowering, neuron: MultiThreshold, nodes: list, projs: list,
                          report: list, problems: list, by_name: dict) -> None:
    """A MaxPool reading a ReLU population (Conv -> ReLU -> MaxPool) -> a ``GradedMaxPool`` unit and its
    SumPool2d edge (docs/ir.md, "Graded max-pool unit"); the pool's output becomes a source with the
    input's scale (per channel: max commutes with a positive per-channel scale). A MaxPool elsewhere
    (the network input, a value between linear layers) is refused naming the node. Appends to the
    lists of ``lower_relu``; a refusal goes to ``problems`` and marks the pool's output unusable."""
    from snnc.ir import GradedMaxPool, IRValidationError

    src = lw.sources.get(op.input)
    try:
        if src is not None and src.node.startswith("<"):
            raise _Refuse("")  # its source could not be lowered (reported there)
        if src is None or isinstance(by_name.get(src.node), Input) or not isinstance(by_name.get(src.node),
                                                                                     (Population, GradedMaxPool)):
            where = "the network input" if src is not None else "a value between linear layers"
            raise _Refuse(
                f"MaxPool node '{op.name}' pools '{op.input}', {where}: the training-free path max-pools only a "
                "ReLU's output (a graded unit over the ReLU population's messages) — retrain with AveragePool, "
                "or put the MaxPool right after a ReLU")
        if len(src.shape) != 3 or src.flat:
            raise _Refuse(f"MaxPool node '{op.name}' pools a tensor of shape {src.shape}; graded max pooling "
                          "needs a (C, H, W) feature map")
        if tuple(op.dilation) != (1, 1):
            raise _Refuse(f"MaxPool node '{op.name}': dilations {tuple(op.dilation)} are not supported by the "
                          "graded max-pool unit (windows are dense)")
        C, H, W = src.shape
        kernel = tuple(op.kernel) if tuple(op.kernel) != (0, 0) else (H, W)   # (0, 0): GlobalMaxPool
        stride = tuple(op.stride) if tuple(op.kernel) != (0, 0) else (H, W)
        pads = tuple(op.pads) if tuple(op.kernel) != (0, 0) else (0, 0, 0, 0)
        oh = conv_output_size(H, kernel[0], stride[0], pads[0], pads[2])
        ow = conv_output_size(W, kernel[1], stride[1], pads[1], pads[3])
        if oh < 1 or ow < 1:
            raise _Refuse(f"MaxPool node '{op.name}': window larger than its input")
        source = by_name[src.node]
        bound = source.max_message if isinstance(source, GradedMaxPool) else neuron.unit_divisor
        name = f"gmaxpool{1 + sum(isinstance(n, GradedMaxPool) for n in nodes)}"
        try:
            unit = GradedMaxPool(name, (C, oh, ow), in_shape=(C, H, W), kernel=kernel, stride=stride, padding=pads,
                                 max_message=bound)
        except IRValidationError as err:
            raise _Refuse(f"MaxPool node '{op.name}': {err}") from None
        edge = SumPool2d(f"{src.node}->{name}", src.node, name, np.array(1), 0, unit.in_shape, unit.shape,
                         kernel=unit.kernel, stride=unit.stride, padding=unit.padding)
    except _Refuse as err:
        lw.refuse(op.name, err, problems)
        return
    nodes.append(unit)
    by_name[name] = unit
    projs.append(edge)
    lw.sources[op.name] = replace(src, node=name, shape=unit.shape, flat=False)
    report.append({"layer": name, "onnx_linear": op.name, "onnx_activation": None, "quantizer": None,
                   "levels": None, "lambda": src.lam, "exponent": 0, "shape": list(unit.shape),
                   "role": "graded max-pool unit", "sources": [src.node]})
