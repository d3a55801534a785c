"""The quantized front: quantized clip activations -> IF / dual-threshold populations (papers 000, 003).

Every QuantAct y = gamma*clip(Q(alpha*z + beta), 0, L) becomes a population; every max pool of a
source becomes a small network of populations (below).

Source scaling (the "thresholds' ratios"). A source s has value a_s = gamma_s * M_s (an activation:
its gamma = lambda/L; the input: x = scale_in * x_int = (scale_in / L) * M_in with M_in = L*x_int).
A target activation z = alpha * (sum_k A_k(a_k) + b) + beta therefore sees real weights in level
units w'_k = alpha * gamma_k * A_k and b' = alpha * b, one per projection, which the integerizer
turns into integers with one per-channel threshold for all of them. (Here T is the matched ANN's
L: the parameters do not depend on the SNN's T.)

Max pooling of counts. For counts a, b in [0, T], max(a, b) = a + relu(b - a), and relu(b - a) =
clip(b - a, 0, T) is exactly what an IF population with Theta = 1, V0 = 0 counts in the layerwise
schedule (its constant current b - a lies in [-T, T]). A k-element window is a tournament of such
populations; a last population (Theta = 1) sums the winner's terms. Exact for every T
(docs/conversion.md, "Residual networks, concat and max pooling").

Mixed L (activations with different L; docs/conversion.md, "Mixed L"): T is the largest L and every
population gets ``timesteps`` = its own L (the layerwise schedule runs each layer for its L steps,
exact); an explicit ``timesteps`` is refused. With one L nothing changes.
"""

from __future__ import annotations

import numpy as np

from snnc.ir import Conv2d, Input, NeuronModel, Population, conv_output_size

from ..errors import ConversionError
from ..frontend.float_graph import Clamp, FGraph, MaxPool, QuantAct, Relu, Rounding
from ..metadata import Conversion, LayerRecord
from .affine import RefusedUpstream, Refusal, Source, explain
from .endpoints import channel_bias, check_finite, linear_ops, main_kind
from .front import Front, FrontSetup, LoweringOptions, LoweringState
from .plan import FixedNodes, QuantizedPopulation, RealLayer, scaled_weight


def prepare(g: FGraph, options: LoweringOptions) -> FrontSetup:
    """Refuse what the quantized front cannot lower anywhere; T = L (or the given T), L the largest
    activation's (mixed levels: each population runs its own L)."""
    stray = [explain(o) for o in g.ops if isinstance(o, (Relu, Clamp, Rounding))]
    if stray:  # never lowerable, wherever they are
        raise ConversionError("cannot lower the graph:\n" + "\n".join(f"  - {p}" for p in stray))
    acts = [o for o in g.ops if isinstance(o, QuantAct)]
    if not acts:
        raise ConversionError("the model has no quantized clip activation: nothing to turn into spiking neurons")
    Ls = {a.name: a.levels for a in acts}
    mixed = len(set(Ls.values())) != 1
    if mixed and options.timesteps is not None:
        raise ConversionError(
            f"layers use different quantization levels L {Ls}; a network with mixed L runs each layer for its own "
            f"L steps (layerwise schedule, exact), and --timesteps {options.timesteps} (the T != L rate rescaling) "
            "is defined for one L only — compile without --timesteps"
        )
    L = max(Ls.values())
    T = L if options.timesteps is None else int(options.timesteps)
    return FrontSetup(timesteps=T, levels=L, mixed_levels=Ls if mixed else {}, input_levels=L)


def lower_quant_act(a: QuantAct, state: LoweringState) -> None:
    """A quantized clip activation -> one population of the configured neuron model."""
    exprs = state.exprs
    try:
        e = exprs.expr(a.input)
        exprs.check_usable(e)
        name = state.fresh(main_kind(e.terms))
        b = channel_bias(e, f"before activation '{a.name}'")
        maps = exprs.projections(e, name)
        ws = [scaled_weight(a.alpha * exprs.sources[m.term.source].gamma, m.weight) for m in maps]
        check_finite(name, a.name, ws, a.alpha * b)
    except Refusal as err:
        state.refuse(a.name, err)
        return
    linears = linear_ops(maps)
    joined = len(maps) > 1 or len(linears) > 1
    origin = state.origin(linears, a.name, onnx_linears=linears if joined else None,
                          sources=[m.source for m in maps] if joined else None)
    layer = RealLayer(name, tuple(e.shape), ws, [m.make for m in maps], a.alpha * b)
    state.items.append(QuantizedPopulation(layer, a.mode, a.beta, a.levels, a.lam, a.quantizer, state.options.neuron,
                                           state.options.v0_mode, a.levels if state.mixed else None, origin))
    exprs.sources[a.name] = Source(name, tuple(e.shape), a.gamma, a.lam, e.flat and len(e.shape) > 1,
                                   levels=a.levels)


def _window_positions_ok(size, k, s, p_lo, d, out) -> bool:
    """Does every output window of a pooling axis hold at least one element of the input?"""
    for o in range(out):
        if not any(0 <= o * s - p_lo + i * d < size for i in range(k)):
            return False
    return True


def lower_count_maxpool(op: MaxPool, state: LoweringState) -> None:
    """A max pool of a source's counts -> the populations of a tournament (module docstring). A max
    pool of anything else is left alone: what reads it is refused by the expressions (``explain``)."""
    if op.input not in state.exprs.sources:
        return
    src = state.exprs.sources[op.input]
    try:
        if src.refused:
            raise RefusedUpstream()
        fixed = count_maxpool(op, src, state.fresh("mpool"), state.options.neuron, state.setup.levels, state.mixed,
                              ann_macs=state.origin([op.name], None).ann_macs)
    except Refusal as err:
        state.refuse(op.name, err)
        return
    state.items.append(fixed)
    out = fixed.nodes[-1]
    state.exprs.sources[op.name] = Source(out.name, out.shape, src.gamma, src.lam, levels=src.levels)


def count_maxpool(op: MaxPool, src: Source, base: str, neuron: NeuronModel, L: int, mixed: bool = False,
                  ann_macs: int = 0) -> FixedNodes:
    """Populations computing the max over each window of a source's counts, named ``base`` (the
    winner) and ``base_r1``, ``base_r2``... (the tournament's relu populations). The source's counts
    lie in 0..L_s (its own L, else ``L``); with ``mixed`` levels the populations run L_s steps."""
    L = src.levels if src.levels is not None else L
    steps = L if mixed else None
    if src.kind is Input:
        raise Refusal(f"MaxPool node '{op.name}' pools the network input: the input's counts T*x_int exceed the "
                      "T spikes a population can fire — retrain with AveragePool (or pool after an activation)")
    if len(src.shape) != 3:
        raise Refusal(f"MaxPool node '{op.name}' pools a tensor of shape {src.shape}")
    C, H, W = src.shape
    kh, kw = op.kernel
    sy, sx = op.stride
    t, l, b, r = op.pads
    dy, dx = op.dilation
    oh = conv_output_size(H, kh, sy, t, b, dy)
    ow = conv_output_size(W, kw, sx, l, r, dx)
    if oh < 1 or ow < 1:
        raise Refusal(f"MaxPool node '{op.name}': window larger than its input")
    if not (_window_positions_ok(H, kh, sy, t, dy, oh) and _window_positions_ok(W, kw, sx, l, dx, ow)):
        raise Refusal(f"MaxPool node '{op.name}': a window lies entirely in the padding (its max is -inf)")
    out_shape = (C, oh, ow)
    nodes, projs, records = [], [], []
    k_helper = [0]

    def population(name):
        return Population(name, out_shape, neuron=neuron, threshold=np.array(1), v0=np.array(0),
                          bias=np.array(0), levels=L, real_threshold=np.array(src.lam), timesteps=steps)

    def record(name, role):
        return LayerRecord(name, op.name, None, None, L, src.lam, 0, list(out_shape), ann_macs=ann_macs, role=role)

    def connect(combo: dict, dst: str) -> list:
        """Integer projections of a combination {("sel", (i, j)) | ("pop", name): coefficient}."""
        ps = []
        sel = np.zeros((C, 1, kh, kw), np.int64)
        for (kind, key), c in combo.items():
            if kind == "sel" and c:
                sel[:, 0, key[0], key[1]] += c
        if np.any(sel):
            ps.append(Conv2d(f"{src.node}->{dst}", src.node, dst, sel, 0, src.shape, out_shape, stride=(sy, sx),
                             padding=(t, l, b, r), dilation=(dy, dx), groups=C))
        for (kind, key), c in combo.items():
            if kind == "pop" and c:
                ps.append(Conv2d(f"{key}->{dst}", key, dst, np.full((C, 1, 1, 1), c, np.int64), 0, out_shape,
                                 out_shape, groups=C))
        return ps

    def combine(x: dict, y: dict, f: int) -> dict:
        out = dict(x)
        for k, v in y.items():
            out[k] = out.get(k, 0) + f * v
        return out

    def tournament(elems) -> dict:
        if len(elems) == 1:
            return {("sel", elems[0]): 1}
        half = len(elems) // 2
        a, bb = tournament(elems[:half]), tournament(elems[half:])
        k_helper[0] += 1
        name = f"{base}_r{k_helper[0]}"
        nodes.append(population(name))
        projs.extend(connect(combine(bb, a, -1), name))  # relu(max(B) - max(A))
        records.append(record(name, "maxpool relu(b - a)"))
        return combine(a, {("pop", name): 1}, 1)           # max(A) + relu(max(B) - max(A))

    winner = tournament([(i, j) for i in range(kh) for j in range(kw)])
    nodes.append(population(base))
    projs.extend(connect(winner, base))
    records.append(record(base, "maxpool output"))
    return FixedNodes(nodes, projs, records)


QUANTIZED_FRONT = Front(
    conversion=Conversion.QUANTIZED,
    prepare=prepare,
    layers={QuantAct: lower_quant_act, MaxPool: lower_count_maxpool},
    readout_levels=lambda setup: setup.levels,
)
