"""Lower a (passed) float graph to the integer spiking IR.

After the passes the graph is a DAG of linear ops (Conv, Linear, AvgPool, BatchNorm, scalar
affines, Flatten, the joins Add and Concat), quantized activations (QuantAct) and max pools over
activations. *Sources* are the tensors that become IR nodes with counts: the graph input, every
QuantAct (a Population) and every max pool of a source (a small network of populations, below).

Populations. The pre-activation of a QuantAct is an affine function of sources, computed by the
linear ops between them (the walk back stops at sources):

    z = sum_k A_k(a_k) + b        (a_k: the value of source k; A_k: one linear map from it)

Every term A_k becomes one incoming projection of the population (Dense, Conv2d, SumPool2d); an
identity path (a residual shortcut) is a depthwise 1x1 Conv2d, a channel slice (Concat) a conv or
dense map that writes only its channels. BatchNorm and scalar affines anywhere between sources
scale the terms and move the bias; two linear layers in a row without an activation are refused
(except dense after dense, a matrix product).

Source scaling (the "thresholds' ratios"). A source s has value a_s = gamma_s * M_s (an activation:
its gamma = lambda/L; the input: x = scale_in * x_int = (scale_in / L) * M_in with M_in = L*x_int).
A target activation z = alpha * (sum_k A_k(a_k) + b) + beta therefore sees real weights in level
units w'_k = alpha * gamma_k * A_k and b' = alpha * b, one per projection, which integerize.py
turns into integers with one per-channel threshold for all of them. (Here T is the matched ANN's
L: the parameters do not depend on the SNN's T; see ``lower``.)

Max pooling of counts. For counts a, b in [0, T], max(a, b) = a + relu(b - a), and relu(b - a) =
clip(b - a, 0, T) is exactly what an IF population with Theta = 1, V0 = 0 counts in the layerwise
schedule (its constant current b - a lies in [-T, T]). A k-element window is a tournament of such
populations; a last population (Theta = 1) sums the winner's terms. Exact for every T
(docs/conversion.md, "Residual networks, concat and max pooling").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from snnc.ir import (Coding, Conv2d, Dense, IFSoftReset, Input, Network, NeuronModel, Population, SumPool2d,
                     conv_output_size)

from .errors import ConversionError
from .graph import (
    Add, AvgPool, BatchNorm, Clamp, Concat, Conv, FGraph, Flatten, Linear, MaxPool, QuantAct, Relu, Rounding,
    ScalarAffine,
)
from .integerize import (
    RealLayer, integerize_population, integerize_readout, resolve_v0_mode, v0_for,
)
from .targets import TargetProfile

log = logging.getLogger(__name__)


# ---- affine expressions over sources ------------------------------------------------------------
@dataclass
class Term:
    """One linear map from one source into an expression's tensor (real weights, graph units).

    kind ``ident``: ``weight`` (C_src,) per-channel factor, the source's channels land at
    ``offset`` .. ``offset + C_src`` of the tensor; ``conv``: ONNX Conv weight (O, C/g, kh, kw)
    writing every channel of the tensor; ``dense``: (N_out, N_src) on the flattened source;
    ``pool``: scalar weight times a window sum (average pooling), same channels.
    """

    source: str
    kind: str
    weight: np.ndarray
    offset: int = 0
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    kernel: tuple = (1, 1)
    ops: tuple = ()  # the graph's linear ops this term went through (for reports)

    def key(self):
        """Terms with equal keys are one map with summed weights."""
        if self.kind == "ident":
            return (self.source, "ident", self.offset, self.weight.shape)
        if self.kind == "pool":
            return (self.source, "pool", self.kernel, self.stride, self.pads)
        return (self.source, self.kind, self.weight.shape, self.stride, self.pads, self.dilation, self.groups)

    def scaled(self, f) -> "Term":
        return replace(self, weight=self.weight * f)


@dataclass
class Expr:
    """z = sum(terms) + bias over a tensor of ``shape`` (channels first; a flattened conv map keeps
    its (C, H, W) shape and ``flat`` is set: only a Linear may read it)."""

    shape: tuple
    terms: list
    bias: np.ndarray  # full tensor of ``shape``
    flat: bool = False


@dataclass
class Source:
    node: str       # IR node name
    shape: tuple
    gamma: float    # real value of one count of the matched ANN (a = gamma * M)
    lam: float      # lambda, for reports
    flat: bool = False  # an activation of a flattened conv map (only a Linear may read it)
    channel_scale: np.ndarray | None = None  # per-channel value of one count, (C,); then gamma is 1
    levels: int | None = None  # an activation's L: its counts lie in 0..L (max pooling of them keeps L)


class _Refuse(Exception):
    pass


def _explain(op) -> str:
    if isinstance(op, Relu):
        return (f"node '{op.name}' is a plain ReLU: snnc needs the quantized clip activation "
                "a = lambda*clip(Q(x*L/lambda), 0, L)/L (train with it), or a training-free conversion: "
                "--calib FILE.npz --neuron multi-threshold:N --timesteps T (paper 004)")
    if isinstance(op, (ScalarAffine, Clamp, Rounding)):
        return f"node '{op.name}' ({type(op).__name__}) is not part of a recognised quantized clip activation"
    if isinstance(op, MaxPool):
        return (f"MaxPool node '{op.name}' does not pool a quantized activation's output (it pools "
                f"'{op.input}', a value between linear layers or the network input); a max of spike counts is "
                "exact, a max of anything else is not — retrain with AveragePool (or put the pool right after "
                "an activation)")
    return f"node '{op.name}' ({type(op).__name__}) cannot be lowered here"


def _plain(t: Term, C: int) -> bool:
    """An identity term covering all C channels with factor 1."""
    return t.kind == "ident" and t.offset == 0 and len(t.weight) == C and bool(np.all(t.weight == 1.0))


def _depthwise_from_ident(t: Term, C: int) -> Term:
    return replace(t, kind="conv", weight=t.weight.reshape(-1, 1, 1, 1).astype(np.float64), groups=C,
                   stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1))


def _pool_as_conv(t: Term, C: int) -> Term:
    """A pooling term as the depthwise conv it is (so its weight can differ per channel)."""
    kh, kw = t.kernel
    w = np.full((C, 1, kh, kw), float(t.weight))
    return replace(t, kind="conv", weight=w, groups=C, dilation=(1, 1))


def _ungroup(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight (O, C/g, kh, kw) as the equal groups=1 weight (O, C, kh, kw)."""
    if groups == 1:
        return w
    O, Cg, kh, kw = w.shape
    og = O // groups
    out = np.zeros((O, Cg * groups, kh, kw))
    for gi in range(groups):
        out[gi * og:(gi + 1) * og, gi * Cg:(gi + 1) * Cg] = w[gi * og:(gi + 1) * og]
    return out


def _scale_channels(t: Term, a: np.ndarray, C: int) -> Term:
    """Multiply the term's output channel c by a[c] (a: (C,) for the tensor's C channels)."""
    if t.kind == "ident":
        return replace(t, weight=t.weight * a[t.offset:t.offset + len(t.weight)])
    if t.kind == "pool":
        if np.all(a == a[0]):
            return replace(t, weight=np.asarray(float(t.weight) * a[0]))
        t = _pool_as_conv(t, C)
    return replace(t, weight=t.weight * a.reshape((-1,) + (1,) * (t.weight.ndim - 1)))


class _Lowering:
    def __init__(self, g: FGraph):
        self.g = g
        self.shapes = g.shapes()
        self.sources: dict[str, Source] = {}
        self.memo: dict[str, Expr] = {}

    def refuse(self, name: str, err: Exception, problems: list[str]) -> None:
        """Record why ``name`` could not be lowered and mark it unusable: what reads it is refused
        silently (its own problem is already listed), so every problem is reported once, all at once."""
        problems.append(str(err))
        self.sources[name] = Source(f"<{name}>", tuple(self.shapes[name]), 1.0, 1.0)

    # -- expressions --------------------------------------------------------------------------
    def expr(self, name: str) -> Expr:
        if name in self.memo:
            return self.memo[name]
        if name in self.sources:
            s = self.sources[name]
            w = np.ones(s.shape[0]) if s.channel_scale is None else np.asarray(s.channel_scale, np.float64)
            e = Expr(s.shape, [Term(name, "ident", w)], np.zeros(s.shape), s.flat)
        else:
            op = self.g.producer(name)
            if op is None:
                raise _Refuse(f"tensor '{name}' has no producer")
            e = self._expr_of(op)
        self.memo[name] = e
        return e

    def _expr_of(self, op) -> Expr:
        if isinstance(op, Add):
            a, b = self.expr(op.input), self.expr(op.other)
            if a.shape != b.shape or a.flat != b.flat:
                raise _Refuse(f"Add node '{op.name}' joins tensors of shapes {a.shape} and {b.shape}; "
                              "broadcasting joins are not supported")
            return Expr(a.shape, a.terms + [t.scaled(op.sign) for t in b.terms], a.bias + op.sign * b.bias, a.flat)
        if isinstance(op, Concat):
            return self._concat(op, [self.expr(s) for s in op.sources()])
        e = self.expr(op.input)
        if isinstance(op, Conv):
            return self._conv(op, e)
        if isinstance(op, Linear):
            return self._linear(op, e)
        if isinstance(op, AvgPool):
            return self._avgpool(op, e)
        if isinstance(op, Flatten):
            return Expr(e.shape, e.terms, e.bias, len(e.shape) > 1)
        if isinstance(op, BatchNorm):
            if e.flat and len(e.shape) > 1:
                raise _Refuse(f"BatchNormalization node '{op.name}' normalises a flattened conv map")
            a, _ = op.affine()
            C = e.shape[0]
            return Expr(e.shape, [_scale_channels(t, a, C) for t in e.terms], op(e.bias[None])[0], e.flat)
        if isinstance(op, ScalarAffine):
            return Expr(e.shape, [t.scaled(op.mul) for t in e.terms], e.bias * op.mul + op.add, e.flat)
        raise _Refuse(_explain(op))

    @staticmethod
    def _composed(op, t: Term) -> _Refuse:
        return _Refuse(
            f"node '{op.name}' ({type(op).__name__}) reads the output of {list(t.ops)} with no activation in "
            "between; snnc does not compose two linear layers into one projection — put a quantized "
            "activation between them or fold them before export"
        )

    def _conv(self, op: Conv, e: Expr) -> Expr:
        if e.flat:
            raise _Refuse(f"Conv node '{op.name}' reads a flattened tensor")
        C_in = e.shape[0]
        O = op.weight.shape[0]
        terms = []
        for t in e.terms:
            if t.kind != "ident":
                raise self._composed(op, t)
            Cs = len(t.weight)
            if _plain(t, C_in):
                w = op.weight  # no copy: terms are never changed in place
            elif op.groups == 1:
                w = op.weight[:, t.offset:t.offset + Cs] * t.weight[None, :, None, None]
            elif t.offset == 0 and Cs == C_in:
                Cg, og = C_in // op.groups, O // op.groups
                scale = t.weight.reshape(op.groups, Cg)[np.arange(O) // og]  # (O, Cg)
                w = op.weight * scale[:, :, None, None]
            else:
                raise _Refuse(f"grouped Conv node '{op.name}' (groups={op.groups}) reads a concatenation")
            terms.append(Term(t.source, "conv", w, stride=tuple(op.stride), pads=tuple(op.pads),
                              dilation=tuple(op.dilation), groups=op.groups,
                              ops=t.ops + (op.name,)))
        bias = op(e.bias[None])[0]
        return Expr(bias.shape, terms, bias)

    def _linear(self, op: Linear, e: Expr) -> Expr:
        n_in = int(np.prod(e.shape))
        if op.weight.shape[1] != n_in:
            raise _Refuse(f"node '{op.name}': weight expects {op.weight.shape[1]} inputs, got {n_in}")
        terms = []
        for t in e.terms:
            if t.kind == "ident" and _plain(t, e.shape[0]):
                w = op.weight  # no copy (a large classifier's weight is gigabytes)
            elif t.kind == "ident":
                rest = int(np.prod(e.shape[1:])) if len(e.shape) > 1 else 1
                Cs = len(t.weight)
                w = op.weight[:, t.offset * rest:(t.offset + Cs) * rest] * np.repeat(t.weight, rest)[None, :]
            elif t.kind == "dense":
                w = op.weight @ t.weight
            else:
                raise self._composed(op, t)
            terms.append(Term(t.source, "dense", w, ops=t.ops + (op.name,)))
        bias = op(e.bias[None])[0]
        return Expr(bias.shape, terms, bias)

    def _avgpool(self, op: AvgPool, e: Expr) -> Expr:
        if e.flat:
            raise _Refuse(f"AveragePool node '{op.name}' reads a flattened tensor")
        C = e.shape[0]
        kh, kw = op.kernel
        terms = []
        for t in e.terms:
            if t.kind != "ident":
                raise self._composed(op, t)
            Cs = len(t.weight)
            if t.offset == 0 and Cs == C and np.all(t.weight == t.weight[0]):
                terms.append(Term(t.source, "pool", np.asarray(float(t.weight[0]) / (kh * kw)), kernel=(kh, kw),
                                  stride=tuple(op.stride), pads=tuple(op.pads), ops=t.ops + (op.name,)))
                continue
            w = np.zeros((C, Cs, kh, kw))
            w[t.offset + np.arange(Cs), np.arange(Cs)] = (t.weight / (kh * kw))[:, None, None]
            terms.append(Term(t.source, "conv", w, stride=tuple(op.stride), pads=tuple(op.pads), ops=t.ops + (op.name,)))
        bias = op(e.bias[None])[0]
        return Expr(bias.shape, terms, bias)

    def _concat(self, op: Concat, es: list[Expr]) -> Expr:
        rank = len(es[0].shape) + 1
        axis = op.axis % rank if -rank <= op.axis < rank else None
        if axis != 1:
            raise _Refuse(f"Concat node '{op.name}' joins along axis {op.axis}; only channel concatenation (axis 1) "
                          "is supported")
        if any(e.flat and len(e.shape) > 1 for e in es):
            raise _Refuse(f"Concat node '{op.name}' joins flattened conv maps; concatenate before Flatten")
        if len({e.shape[1:] for e in es}) != 1:
            raise _Refuse(f"Concat node '{op.name}' joins tensors of shapes {[e.shape for e in es]}")
        C_tot = sum(e.shape[0] for e in es)
        terms, off = [], 0
        for e in es:
            for t in e.terms:
                if t.kind == "pool":
                    t = _pool_as_conv(t, e.shape[0])
                if t.kind == "ident":
                    terms.append(replace(t, offset=t.offset + off))
                else:
                    w = _ungroup(t.weight, t.groups) if t.kind == "conv" else t.weight
                    wide = np.zeros((C_tot,) + w.shape[1:])
                    wide[off:off + w.shape[0]] = w
                    terms.append(replace(t, weight=wide, groups=1))
            off += e.shape[0]
        return Expr((C_tot,) + es[0].shape[1:], terms, np.concatenate([e.bias for e in es], axis=0), es[0].flat)

    # -- terms -> IR projections ----------------------------------------------------------------
    def projections(self, e: Expr, dst: str, per_channel: bool = False) -> list[tuple[Term, np.ndarray, object]]:
        """(term, real weight in the IR layout without the source scaling, make_projection) per
        merged term. ``per_channel``: every weight gets an output-channel axis (no scalar pooling
        weight), for targets whose thresholds differ per channel."""
        merged: dict = {}
        for t in e.terms:
            k = t.key()
            merged[k] = replace(merged[k], weight=merged[k].weight + t.weight,
                                ops=tuple(dict.fromkeys(merged[k].ops + t.ops))) if k in merged else t
        terms = list(merged.values())
        C = e.shape[0]
        out, used = [], {}
        for t in terms:
            src = self.sources[t.source]
            n = used[src.node] = used.get(src.node, 0) + 1
            pname = f"{src.node}->{dst}" + (f".{n}" if n > 1 else "")
            in_shape, out_shape = tuple(src.shape), tuple(e.shape)
            if t.kind == "pool" and (len(terms) > 1 or per_channel):
                t = _pool_as_conv(t, C)  # per-channel thresholds need a per-channel weight
            if t.kind == "ident":
                Cs = len(t.weight)
                if len(out_shape) == 3:
                    if t.offset == 0 and Cs == C:
                        t = _depthwise_from_ident(t, C)
                    else:
                        w = np.zeros((C, Cs, 1, 1))
                        w[t.offset + np.arange(Cs), np.arange(Cs), 0, 0] = t.weight
                        t = replace(t, kind="conv", weight=w, groups=1)
                else:
                    w = np.zeros((int(np.prod(out_shape)), int(np.prod(in_shape))))
                    rest = int(np.prod(in_shape[1:])) if len(in_shape) > 1 else 1
                    cols = np.arange(Cs * rest)
                    w[t.offset * rest + cols, cols] = np.repeat(t.weight, rest)
                    t = replace(t, kind="dense", weight=w)
            out.append((t, t.weight, self._maker(t, pname, src.node, dst, in_shape, out_shape)))
        return out

    @staticmethod
    def _maker(t: Term, pname, src, dst, in_shape, out_shape):
        if t.kind == "conv":
            if len(out_shape) != 3:
                raise _Refuse(f"a convolution writes a tensor of shape {out_shape}")

            def mk(wi, e):
                return Conv2d(pname, src, dst, wi, e, in_shape, out_shape, stride=t.stride, padding=t.pads,
                              dilation=t.dilation, groups=t.groups)
            return mk
        if t.kind == "dense":
            def mk(wi, e):
                return Dense(pname, src, dst, wi, e, in_shape, out_shape)
            return mk

        def mk(wi, e):
            return SumPool2d(pname, src, dst, np.asarray(wi).reshape(()), e, in_shape, out_shape,
                             kernel=t.kernel, stride=t.stride, padding=t.pads)
        return mk


def _channel_bias(e: Expr, where: str) -> np.ndarray:
    b = np.asarray(e.bias, np.float64)
    per = b.reshape(b.shape[0], -1)
    c = per[:, 0]
    tol = 1e-9 * max(1.0, float(np.abs(b).max(initial=0.0)))
    if np.any(np.abs(per - c[:, None]) > tol):
        raise _Refuse(f"{where}: the bias differs across positions of a channel (a bias or batch norm shift "
                      "before a zero-padded convolution or padded pooling); a population's bias is one current "
                      "per channel — fold the shift into the layer before the activation")
    return c


def _finite(layer: str, node: str, ws, bias) -> None:
    if not all(np.all(np.isfinite(w)) for w in ws) or not np.all(np.isfinite(bias)):
        raise _Refuse(f"layer '{layer}' (at '{node}'): its weights or bias in level units overflow to Inf/NaN "
                      "(weights, scales or thresholds out of any float range)")
    wmax = max((float(np.abs(w).max()) for w in ws if np.size(w)), default=0.0)
    if 0.0 < wmax < 2.0**-55:
        raise _Refuse(f"layer '{layer}' (at '{node}'): its largest weight in level units is {wmax:.3g}; a threshold or "
                      "scale that makes it an integer would not fit any state width (check the model's scales)")


def _input_node(g: FGraph, input_range, bits: int) -> Input:
    """The network input: the model's own input quantizer (QDQ/QONNX on the graph input, recorded by
    DropInputQuantizer) unless ``input_range`` is given; else ``input_range`` (default 0..1) on
    ``bits`` bits, unsigned if lo >= 0, else symmetric signed."""
    q = g.meta.get("input_quantizer")
    if input_range is None and q is not None:
        qmin, qmax = q["qmin"], q["qmax"]
        ok = qmax <= 2**bits - 1 if qmin >= 0 else (qmin >= -(2 ** (bits - 1)) and qmax <= 2 ** (bits - 1) - 1)
        if not ok:  # keep its real range, on the target's grid
            lo, hi = q["scale"] * qmin, q["scale"] * qmax
            log.warning("the model's input quantizer %s has integer range [%d, %d] (zero point folded in), which the "
                        "target's %d-bit input cannot hold with zero point 0; snnc quantizes the input over its real "
                        "range [%g, %g] on %d bits instead (give --input-range to choose)", q["nodes"], qmin, qmax,
                        bits, lo, hi, bits)
            return _range_input(g, (lo, hi), bits)
        log.info("network input quantized with the model's own quantizer %s: scale %g, [%d, %d], round %s",
                 q["nodes"], q["scale"], qmin, qmax, q["rounding"])
        return Input("input", g.input_shape, scale=q["scale"], qmin=qmin, qmax=qmax, rounding=q["rounding"])
    if "input_quantizer_unusable" in g.meta and input_range is None:
        log.warning("%s; snnc quantizes the input itself over 0..1 (give --input-range)", g.meta["input_quantizer_unusable"])
    elif q is not None:
        log.info("--input-range overrides the model's input quantizer %s", q["nodes"])
    return _range_input(g, (0.0, 1.0) if input_range is None else input_range, bits)


def _range_input(g: FGraph, input_range, bits: int) -> Input:
    lo, hi = input_range
    if lo >= 0:
        qmax = 2**bits - 1
        return Input("input", g.input_shape, scale=hi / qmax, qmin=0, qmax=qmax)
    qmax = 2 ** (bits - 1) - 1
    return Input("input", g.input_shape, scale=max(-lo, hi) / qmax, qmin=-qmax, qmax=qmax)


def _main_kind(terms) -> str:
    kinds = [t.kind for t in terms]
    k = next((k for k in kinds if k != "ident"), "ident")
    return {"conv": "conv", "dense": "fc", "pool": "pool", "ident": "act"}[k]


def _window_positions_ok(size, k, s, p_lo, d, out) -> bool:
    """Does every output window of a pooling axis hold at least one element of the input?"""
    for o in range(out):
        if not any(0 <= o * s - p_lo + i * d < size for i in range(k)):
            return False
    return True


def lower(
    g: FGraph, target: TargetProfile, timesteps: int | None, input_range,
    neuron: NeuronModel | None = None, v0_mode: str = "auto",
    relu_thresholds: dict[str, float] | None = None, coding: Coding | None = None,
) -> tuple[Network, dict]:
    """Float graph -> integer Network. Returns the network and a report (per-layer facts).

    ``timesteps`` None gives T = L. Any other T keeps the T = L parameters (the SNN's levels become
    theta/T; docs/conversion.md, "T != L"). ``neuron`` is the IR neuron model of every population,
    ``v0_mode`` auto | zero | half | full.

    Mixed L (activations with different L; docs/conversion.md, "Mixed L"): T is the largest L and
    every population gets ``timesteps`` = its own L (the layerwise schedule runs each layer for its
    L steps, exact); an explicit ``timesteps`` is refused. With one L nothing changes.
    """
    if relu_thresholds is not None:
        from .lower_relu import lower_relu

        return lower_relu(g, target, timesteps, input_range, neuron, relu_thresholds, coding)
    stray = [_explain(o) for o in g.ops if isinstance(o, (Relu, Clamp, Rounding))]
    if stray:  # never lowerable, wherever they are
        raise ConversionError("cannot lower the graph:\n" + "\n".join(f"  - {p}" for p in stray))
    acts = [o for o in g.ops if isinstance(o, QuantAct)]
    if not acts:
        raise ConversionError("the model has no quantized clip activation: nothing to turn into spiking neurons")
    Ls = {a.name: a.levels for a in acts}
    mixed = len(set(Ls.values())) != 1
    if mixed and timesteps is not None:
        raise ConversionError(
            f"layers use different quantization levels L {Ls}; a network with mixed L runs each layer for its own "
            f"L steps (layerwise schedule, exact), and --timesteps {timesteps} (the T != L rate rescaling) is defined "
            "for one L only — compile without --timesteps"
        )
    # mixed L (docs/conversion.md, "Mixed L"): the network's T is the largest L (the input sends T*x_int,
    # its count unit is scale/T); every population integrates its own L steps (Population.timesteps)
    L = max(Ls.values())
    T = L if timesteps is None else int(timesteps)
    fmt = target.numeric
    neuron = neuron if neuron is not None else IFSoftReset()
    inp = _input_node(g, input_range, fmt.input_bits)
    lw = _Lowering(g)
    lw.sources[g.input_name] = Source(inp.name, tuple(g.input_shape), inp.scale / L, inp.scale)
    nodes, projs, report, problems = [inp], [], [], []
    by_name = {inp.name: inp}
    counters: dict[str, int] = {}

    def fresh(kind: str) -> str:
        counters[kind] = counters.get(kind, 0) + 1
        return f"{kind}{counters[kind]}"

    def add(node, ps):
        nodes.append(node)
        by_name[node.name] = node
        projs.extend(ps)

    for op in g.ops:
        if isinstance(op, QuantAct):
            a = op
            try:
                e = lw.expr(a.input)
                if any(lw.sources[t.source].node.startswith("<") for t in e.terms):
                    raise _Refuse("")  # reads a source that could not be lowered (reported there)
                name = fresh(_main_kind(e.terms))
                b = _channel_bias(e, f"before activation '{a.name}'")
                mats = lw.projections(e, name)
                ws = [a.alpha * lw.sources[t.source].gamma * w for t, w, _ in mats]
                _finite(name, a.name, ws, a.alpha * b)
                layer = RealLayer(name, tuple(e.shape), ws, [mk for _, _, mk in mats], a.alpha * b)
                node, ps, ex = integerize_population(layer, a.mode, a.beta, a.levels, a.lam, T, fmt, by_name,
                                                     neuron=neuron, v0_mode=v0_mode,
                                                     steps=a.levels if mixed else None)
            except _Refuse as err:
                lw.refuse(a.name, err, problems)
                continue
            add(node, ps)
            lw.sources[a.name] = Source(name, tuple(e.shape), a.gamma, a.lam, e.flat and len(e.shape) > 1,
                                        levels=a.levels)
            linears = list(dict.fromkeys(o for t, _, _ in mats for o in t.ops))
            entry = {
                "layer": name, "onnx_linear": linears[0] if linears else None, "onnx_activation": a.name,
                "quantizer": a.quantizer, "levels": a.levels, "lambda": a.lam, "exponent": ex, "shape": list(e.shape),
            }
            if len(mats) > 1 or linears[1:]:
                entry.update(onnx_linears=linears, sources=[p.source for p in ps])
            resolved, r = resolve_v0_mode(v0_mode, a.mode, a.beta)
            matched, _ = resolve_v0_mode("auto", a.mode, a.beta)
            entry.update(v0_mode=resolved, v0_matched=resolved == matched, neuron=type(node.neuron).__name__)
            if resolved != matched:  # the quantized ANN (verify's reference) keeps the quantizer's own V0
                entry["matched_v0"] = v0_for(matched, r, node.threshold).tolist()
            report.append(entry)
        elif isinstance(op, MaxPool) and op.input in lw.sources:
            try:
                if lw.sources[op.input].node.startswith("<"):
                    raise _Refuse("")
                ns, ps, entries = _lower_maxpool(op, lw, fresh, neuron, L, mixed)
            except _Refuse as err:
                lw.refuse(op.name, err, problems)
                continue
            for n in ns:
                add(n, [])
            projs.extend(ps)
            report.extend(entries)
    e, mats, layer = _readout_layer(lw, g, problems)
    node, ps, ex = integerize_readout(layer, T, fmt, by_name, levels=L)
    add(node, ps)
    linears = list(dict.fromkeys(o for t, _, _ in mats for o in t.ops))
    entry = {"layer": "readout", "onnx_linear": linears[0] if linears else None, "onnx_activation": None,
             "quantizer": None, "levels": None, "lambda": None, "exponent": ex, "shape": list(e.shape)}
    if len(mats) > 1 or linears[1:]:
        entry.update(onnx_linears=linears, sources=[p.source for p in ps])
    report.append(entry)
    out = {"layers": report, "timesteps": T, "levels": L}
    if mixed:
        out["mixed_levels"] = Ls
    return Network(nodes, projs, T), out


def _readout_layer(lw: _Lowering, g: FGraph, problems: list[str]):
    """The network's output expression as the readout's real layer; raises with every problem found
    in the whole graph (``problems`` from the activations, plus the readout's own)."""
    e = mats = layer = None
    try:
        e = lw.expr(g.output)
        if any(lw.sources[t.source].node.startswith("<") for t in e.terms):
            raise _Refuse("")
        b = _channel_bias(e, "at the network's end (readout)")
        mats = lw.projections(e, "readout")
        ws = [lw.sources[t.source].gamma * w for t, w, _ in mats]
        _finite("readout", g.output, ws, b)
        layer = RealLayer("readout", tuple(e.shape), ws, [mk for _, _, mk in mats], b)
    except _Refuse as err:
        problems.append(str(err))
    if problems:
        raise ConversionError("cannot lower the graph:\n" + "\n".join(f"  - {p}" for p in dict.fromkeys(problems) if p))
    return e, mats, layer


# ---- max pooling of counts ------------------------------------------------------------------------
def _lower_maxpool(op: MaxPool, lw: _Lowering, fresh, neuron: NeuronModel, L: int, mixed: bool = False):
    """Populations computing the max over each window of a source's counts (module docstring). The
    source's counts lie in 0..L_s (its own L); with ``mixed`` levels the populations run L_s steps."""
    src = lw.sources[op.input]
    L = src.levels if src.levels is not None else L
    steps = L if mixed else None
    if src.node == "input":
        raise _Refuse(f"MaxPool node '{op.name}' pools the network input: the input's counts T*x_int exceed the "
                      "T spikes a population can fire — retrain with AveragePool (or pool after an activation)")
    if len(src.shape) != 3:
        raise _Refuse(f"MaxPool node '{op.name}' pools a tensor of shape {src.shape}")
    C, H, W = src.shape
    kh, kw = op.kernel
    sy, sx = op.stride
    t, l, b, r = op.pads
    dy, dx = op.dilation
    oh = conv_output_size(H, kh, sy, t, b, dy)
    ow = conv_output_size(W, kw, sx, l, r, dx)
    if oh < 1 or ow < 1:
        raise _Refuse(f"MaxPool node '{op.name}': window larger than its input")
    if not (_window_positions_ok(H, kh, sy, t, dy, oh) and _window_positions_ok(W, kw, sx, l, dx, ow)):
        raise _Refuse(f"MaxPool node '{op.name}': a window lies entirely in the padding (its max is -inf)")
    out_shape = (C, oh, ow)
    base = fresh("mpool")
    nodes, projs, entries = [], [], []
    k_helper = [0]

    def population(name):
        return Population(name, out_shape, neuron=neuron, threshold=np.array(1), v0=np.array(0),
                          bias=np.array(0), levels=L, real_threshold=np.array(src.lam), timesteps=steps)

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
        entries.append(_pool_entry(name, op, "maxpool relu(b - a)", L, src.lam, out_shape))
        return combine(a, {("pop", name): 1}, 1)           # max(A) + relu(max(B) - max(A))

    winner = tournament([(i, j) for i in range(kh) for j in range(kw)])
    nodes.append(population(base))
    projs.extend(connect(winner, base))
    entries.append(_pool_entry(base, op, "maxpool output", L, src.lam, out_shape))
    lw.sources[op.name] = Source(base, out_shape, src.gamma, src.lam, levels=src.levels)
    return nodes, projs, entries


def _pool_entry(name, op, role, L, lam, shape) -> dict:
    return {"layer": name, "onnx_linear": op.name, "onnx_activation": None, "quantizer": None, "levels": L,
            "lambda": lam, "exponent": 0, "shape": list(shape), "role": role}
