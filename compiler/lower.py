"""Lower a (passed) float graph to the integer spiking IR.

After the passes the graph is a chain  input -> linear -> QuantAct -> linear -> QuantAct ... -> linear.
Each QuantAct becomes a Population fed by the linear op before it; the last linear op becomes the
Readout. Real effective weights (level units) are computed here and integerized by integerize.py.

Source scaling. A population source s has value a_s = gamma_s * M_s; the input has value
x = scale_in * x_int = (scale_in / L) * M_in with M_in = L * x_int. A target activation
z = alpha * (W a + b) + beta therefore sees w' = alpha * gamma_s * W and b' = alpha * b.
(Here T is the matched ANN's L: the parameters do not depend on the SNN's T; see ``lower``.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import Conv2d, Dense, Input, Network, NeuronModel, SumPool2d
from snnc.ir.nodes import conv_output_size

from .errors import ConversionError
from .graph import AvgPool, Clamp, Conv, FGraph, Flatten, Linear, QuantAct, Relu, Rounding, ScalarAffine
from .integerize import RealLayer, integerize_population, integerize_readout, resolve_v0_mode, v0_for
from .targets import TargetProfile


@dataclass
class Segment:
    ops: list            # the ops between two activations
    act: QuantAct | None  # None for the readout segment

    @property
    def linear(self):
        return next(o for o in self.ops if isinstance(o, (Conv, Linear, AvgPool)))


def chain(g: FGraph) -> list:
    """The graph's ops from input to output; errors if it branches."""
    seq, cur = [], g.input_name
    while cur != g.output:
        cons = g.consumers(cur)
        if len(cons) != 1:
            raise ConversionError(
                f"tensor '{cur}' feeds {len(cons)} nodes {[c.name for c in cons]}: only chains are supported so far "
                "(residual networks arrive with the frontend issue)"
            )
        seq.append(cons[0])
        cur = cons[0].name
    return seq


def _explain(op) -> str:
    if isinstance(op, Relu):
        return (f"node '{op.name}' is a plain ReLU: snnc needs the quantized clip activation "
                "a = lambda*clip(Q(x*L/lambda), 0, L)/L (train with it), or calibration data for plain ReLU nets")
    if isinstance(op, (ScalarAffine, Clamp, Rounding)):
        return (f"node '{op.name}' ({type(op).__name__}) is not part of a recognised quantized clip activation")
    return f"node '{op.name}' ({type(op).__name__}) cannot be lowered here"


def segments(g: FGraph) -> list[Segment]:
    segs, cur, problems = [], [], []
    for op in chain(g):
        if isinstance(op, QuantAct):
            segs.append(Segment(cur, op))
            cur = []
        else:
            cur.append(op)
    segs.append(Segment(cur, None))
    for s in segs:
        lin = [o for o in s.ops if isinstance(o, (Conv, Linear, AvgPool))]
        other = [o for o in s.ops if not isinstance(o, (Conv, Linear, AvgPool, Flatten))]
        problems += [_explain(o) for o in other]
        where = f"before activation '{s.act.name}'" if s.act else "at the network's end (readout)"
        if not other and len(lin) != 1:
            problems.append(
                f"{where}: expected exactly one linear layer (Conv, Gemm/MatMul or AveragePool), found "
                f"{[o.name for o in lin] or 'none'}" + (" — two activations in a row" if not lin else "")
            )
    if problems:
        raise ConversionError("cannot lower the graph:\n" + "\n".join(f"  - {p}" for p in problems))
    return segs


def _input_node(g: FGraph, input_range, bits: int) -> Input:
    lo, hi = input_range
    if lo >= 0:
        qmax = 2**bits - 1
        return Input("input", g.input_shape, scale=hi / qmax, qmin=0, qmax=qmax)
    qmax = 2 ** (bits - 1) - 1
    return Input("input", g.input_shape, scale=max(-lo, hi) / qmax, qmin=-qmax, qmax=qmax)


def _real_projection(op, src_name: str, dst_name: str, in_shape, pname: str):
    """Real weight (IR layout), real bias, output shape and a builder of the IR projection."""
    if isinstance(op, Conv):
        C, H, W = in_shape
        O, _, kh, kw = op.weight.shape
        t, l, b, r = op.pads
        oh = conv_output_size(H, kh, op.stride[0], t, b, op.dilation[0])
        ow = conv_output_size(W, kw, op.stride[1], l, r, op.dilation[1])
        out_shape = (O, oh, ow)

        def mk(wi, e):
            return Conv2d(pname, src_name, dst_name, wi, e, in_shape, out_shape, stride=op.stride,
                          padding=op.pads, dilation=op.dilation, groups=op.groups)
        return op.weight, op.bias, out_shape, mk
    if isinstance(op, Linear):
        out_shape = (op.weight.shape[0],)
        if op.weight.shape[1] != int(np.prod(in_shape)):
            raise ConversionError(f"node '{op.name}': weight expects {op.weight.shape[1]} inputs, got {int(np.prod(in_shape))}")

        def mk(wi, e):
            return Dense(pname, src_name, dst_name, wi, e, in_shape, out_shape)
        return op.weight, op.bias, out_shape, mk
    # AvgPool alone: a sum-pool projection with weight 1/k
    C, H, W = in_shape
    kh, kw = op.kernel
    t, l, b, r = op.pads
    out_shape = (C, conv_output_size(H, kh, op.stride[0], t, b), conv_output_size(W, kw, op.stride[1], l, r))

    def mk(wi, e):
        return SumPool2d(pname, src_name, dst_name, np.asarray(wi).reshape(()), e, in_shape, out_shape,
                         kernel=op.kernel, stride=op.stride, padding=op.pads)
    return np.array(1.0 / (kh * kw)), np.zeros(C), out_shape, mk


def lower(
    g: FGraph, target: TargetProfile, timesteps: int | None, input_range,
    neuron: NeuronModel | None = None, v0_mode: str = "auto",
) -> tuple[Network, dict]:
    """Float graph -> integer Network. Returns the network and a report (per-layer facts).

    ``timesteps`` None gives T = L. Any other T keeps the T = L parameters (the SNN's levels become
    theta/T; docs/conversion.md, "T != L"). ``neuron`` is the IR neuron model of every population,
    ``v0_mode`` auto | zero | half | full.
    """
    segs = segments(g)
    acts = [s.act for s in segs if s.act is not None]
    if not acts:
        raise ConversionError("the model has no quantized clip activation: nothing to turn into spiking neurons")
    Ls = {a.name: a.levels for a in acts}
    if len(set(Ls.values())) != 1:
        raise ConversionError(
            f"layers use different quantization levels L {Ls}; snnc needs one L for all layers (the SNN's "
            "spikes of every layer are worth theta/T) — retrain with one L"
        )
    L = next(iter(Ls.values()))
    T = L if timesteps is None else int(timesteps)
    fmt = target.numeric
    inp = _input_node(g, input_range, fmt.input_bits)
    nodes, projs, report = [inp], [], []
    src, src_gamma, shape = inp, inp.scale / L, tuple(g.input_shape)
    counters: dict[str, int] = {}
    for s in segs:
        op = s.linear
        kind = {Conv: "conv", Linear: "fc", AvgPool: "pool"}[type(op)]
        counters[kind] = counters.get(kind, 0) + 1
        name = "readout" if s.act is None else f"{kind}{counters[kind]}"
        w, b, out_shape, mk = _real_projection(op, src.name, name, shape, f"{src.name}->{name}")
        if s.act is None:
            layer = RealLayer(name, out_shape, [w * src_gamma], [mk], np.asarray(b, np.float64))
            node, ps, e = integerize_readout(layer, T, fmt, {n.name: n for n in nodes}, levels=L)
        else:
            a = s.act
            layer = RealLayer(name, out_shape, [w * a.alpha * src_gamma], [mk], a.alpha * np.asarray(b, np.float64))
            node, ps, e = integerize_population(layer, a.mode, a.beta, a.levels, a.lam, T, fmt,
                                                {n.name: n for n in nodes}, neuron=neuron, v0_mode=v0_mode)
        nodes.append(node)
        projs += ps
        report.append({
            "layer": name, "onnx_linear": op.name, "onnx_activation": s.act.name if s.act else None,
            "quantizer": s.act.quantizer if s.act else None, "levels": s.act.levels if s.act else None,
            "lambda": s.act.lam if s.act else None, "exponent": e, "shape": list(out_shape),
        })
        if s.act is not None:
            resolved, r = resolve_v0_mode(v0_mode, s.act.mode, s.act.beta)
            matched, _ = resolve_v0_mode("auto", s.act.mode, s.act.beta)
            report[-1].update(v0_mode=resolved, v0_matched=resolved == matched, neuron=type(node.neuron).__name__)
            if resolved != matched:  # the quantized ANN (verify's reference) keeps the quantizer's own V0
                report[-1]["matched_v0"] = v0_for(matched, r, node.threshold).tolist()
        if s.act is not None:
            src, src_gamma, shape = node, s.act.gamma, out_shape
    return Network(nodes, projs, T), {"layers": report, "timesteps": T, "levels": L}
