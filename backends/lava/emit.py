"""IR -> Lava processes (docs/lava.md has the mapping and the timing).

``build(net, x, schedule)`` returns a :class:`LavaBuild`; unpack it as
``processes, inputs, probes = build(...)``. Nothing is run here.

Layout. A (C, H, W) node lives in Lava as (W, H, C) (= (X, Y, C), what ``lava.proc.conv`` uses);
any other node keeps its IR shape. Dense projections read the flattened Lava layout, so their
weight columns (and rows, for a 3-D target) are permuted to match.

Projections (all Lava's own processes, ``fixed_pt`` models):
* ``Dense`` -> ``lava.proc.dense.process.Dense`` with ``sign_mode=MIXED``, ``num_weight_bits=9``
  (its fixed-point model clips to [-256, 255] and truncates ``8 - num_weight_bits + 1`` LSBs, so
  every int8 mantissa passes unchanged) and ``weight_exp=e`` (applied as ``<< e``).
  A Dense whose weight density (nonzero fraction) is below ``SPARSE_DENSITY_THRESHOLD`` becomes
  ``lava.proc.sparse.process.Sparse`` (weights as a ``scipy.sparse.csr_matrix``) with the same
  parameters: its fixed-point model clips, truncates and shifts exactly like Dense's, and it has the
  same one-step delay (``build(..., sparse=True/False)`` forces the choice).
* ``Conv2d`` -> ``lava.proc.conv.process.Conv``. Lava's kernel is a true convolution, so the
  ONNX (correlation) kernel is flipped; Lava 0.10's fixed-point Conv model ignores
  ``weight_exp``, so the weights are passed as ``mantissa << e`` (the product is identical).
* ``SumPool2d`` -> ``Conv`` with ``groups = C`` and a constant kernel ``w << e``.
* A Conv2d / SumPool2d whose kernel, stride, padding, dilation or groups exceeds 127 (Lava Conv holds
  them as int8 and would wrap: ``groups = 128`` sends zeros), or whose source is a graded function unit
  (no static message bound: int32 currents, guarded at run time) -> ``Sparse`` of its synapse matrix
  (widths.py), with the Dense parameters above.
Graded sources (the input, layerwise counts) use ``num_message_bits=24``; binary spikes use 0;
signed spikes (dual-threshold populations, pipelined) use ``SIGNED_SPIKE_BITS = 2``; the graded
messages of a multi-threshold population (0, +-1, ..., +-2^(n-1)) use n + 1 (two's complement).

Neuron models. ``NEURON_EMITTERS`` maps each IR neuron model class (``type(pop.neuron)``) to a
``NeuronEmitter``: per network coding class the Lava process and its extra constructor arguments,
the message bits its per-step spikes need, and whether it runs layerwise; a model or model x coding
missing there raises ``UnsupportedNetworkError`` naming the population and the supported combinations.
``CODING_EMITTERS`` maps the coding class to how the input is presented (every step / at the first
step only) and which readout process accumulates it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import (GRADED_UNITS, Coding, Conv2d, Dense, DifferentialCoding, DualThreshold, GradedFunctionUnit,
                     GradedMaxPool, IFSoftReset, Input, MultiThreshold, Network, Node, Population, Projection, RateCoding, Readout, Schedule,
                     SumPool2d, as_int_inputs, graded_edge, per_channel)

from .compat import ensure_lava

ensure_lava()

from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense as LavaDense  # noqa: E402
from lava.proc.io.sink import RingBuffer as Sink  # noqa: E402
from lava.proc.io.source import RingBuffer as Source  # noqa: E402
from lava.proc.sparse.process import Sparse as LavaSparse  # noqa: E402
from lava.utils.weightutils import SignMode  # noqa: E402

from .processes import (LAYERWISE, PIPELINED, Accumulator, DelayLine, DifferentialAccumulator,  # noqa: E402
                        DualThresholdNeuron, GradedFunctionProcess, GradedMaxPoolUnit, IFSoftResetNeuron, Int64Probe,
                        MTDifferentialNeuron, MTRateNeuron)
from .widths import (CONV_CURRENT_LIMIT, INT32_CURRENT_LIMIT, MessageGuard, check_sparse_weights,  # noqa: E402
                     conv_fits_lava, conv_matrix, message_guards)

GRADED_BITS = 24
# A signed spike (-1/0/1) is a two's-complement 2-bit payload; Lava's Dense/Sparse/Conv read it by
# value only with num_message_bits > 0 (with 0 they take `s_in.astype(bool)`: -1 would count as +1).
SIGNED_SPIKE_BITS = 2
# A Dense table stores every entry (one weight each); CSR stores, per nonzero, a weight plus a column
# index (plus one row pointer per row), i.e. about twice the bytes per stored entry, so it breaks
# even near density 1/2 and below 1/4 it is at least ~2x smaller (also less work per step: the
# sparse product touches only the nonzeros). Below this nonzero fraction Dense -> Lava Sparse.
SPARSE_DENSITY_THRESHOLD = 0.25


@dataclass
class LavaBuild:
    """Processes of one emitted network plus what is needed to run it and read it back."""

    processes: dict[str, object]          # IR node / projection name -> Lava process
    inputs: dict[str, object]             # input name -> source RingBuffer
    probes: dict[str, object]             # population -> sink RingBuffer (int32), readout -> Int64Probe
    schedule: Schedule
    timesteps: int
    batch: int
    period: int                           # Lava steps per sample
    start: dict[str, int] = field(default_factory=dict)   # local step a node starts at (1-based)
    end: dict[str, int] = field(default_factory=dict)     # local step its result is final
    guards: dict[str, MessageGuard] = field(default_factory=dict)   # graded function unit -> width guard

    @property
    def num_steps(self) -> int:
        return self.batch * self.period

    def __iter__(self):
        return iter((self.processes, self.inputs, self.probes))


def to_lava(a: np.ndarray, nd: int) -> np.ndarray:
    """IR layout -> Lava layout on the trailing ``nd`` axes (a (C,H,W) block becomes (W,H,C))."""
    if nd != 3:
        return a
    lead = a.ndim - 3
    return np.transpose(a, tuple(range(lead)) + (lead + 2, lead + 1, lead))


def from_lava(a: np.ndarray, nd: int) -> np.ndarray:
    return to_lava(a, nd)  # the (2, 1, 0) permutation is its own inverse


def lava_shape(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    return shape[::-1] if len(shape) == 3 else shape


def _full(node, arr) -> np.ndarray:
    """Per-layer / per-channel parameter -> full Lava-layout array."""
    full = np.broadcast_to(per_channel(arr, node.shape)[0], node.shape).astype(np.int64)
    return to_lava(full, len(node.shape))


def _flat_perm(shape) -> np.ndarray:
    """perm[k] = IR C-order flat index of the k-th element of the flattened Lava layout."""
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    return to_lava(idx, len(shape)).reshape(-1)


def _timing(net: Network, schedule: Schedule) -> tuple[dict[str, int], dict[str, int], int]:
    T = net.timesteps
    start, end = {}, {}
    if schedule is Schedule.PIPELINED:
        depth = net.depth()  # longest paths: sources at smaller depths go through delay lines (build)
        for node in net.ordered_nodes():
            if isinstance(node, Input):
                continue
            start[node.name] = depth[node.name] + 1
            end[node.name] = start[node.name] + T - 1
    else:
        finish = {}
        for node in net.ordered_nodes():
            if isinstance(node, Input):
                finish[node.name] = 1
                continue
            start[node.name] = 1 + max(finish[p.source] for p in net.incoming(node.name))
            if isinstance(node, Population):  # its own steps (mixed L), else T
                finish[node.name] = end[node.name] = start[node.name] + net.steps(node) - 1
            else:
                end[node.name] = start[node.name]
    return start, end, max(end.values())


@dataclass(frozen=True)
class EmitContext:
    """What an emitter's ``extra`` may need besides the node."""

    coding: Coding
    timesteps: int
    scale: int                    # the schedule's state scale: T layerwise, 1 pipelined

    @property
    def one(self) -> int:
        """1.0 in the coding's fixed point (2^F differential, 1 rate)."""
        return getattr(self.coding, "one", 1)

    def recip_table(self) -> np.ndarray:
        """R_t = coding.reciprocal(t) for t = 1..T (differential coding), int64."""
        return np.array([self.coding.reciprocal(t) for t in range(1, self.timesteps + 1)], np.int64)


def _no_extra(node: Node, ctx: EmitContext) -> dict:
    return {}


@dataclass(frozen=True)
class LavaProcess:
    """A Lava process class (processes.py) plus the constructor arguments it needs beyond the common
    ones (``thr``, ``v_init``, ``bias`` and the timing); ``extra`` may also override a common one."""

    process: type
    extra: Callable[[Node, EmitContext], dict] = _no_extra


def _bits_or_call(v, pop: Population) -> int:
    return int(v(pop)) if callable(v) else int(v)


@dataclass(frozen=True)
class NeuronEmitter:
    """How one IR neuron model is emitted."""

    codings: Mapping[type, LavaProcess]   # network coding class -> process
    spike_bits: int | Callable[[Population], int]   # num_message_bits of projections fed by its per-step spikes
    max_message: int | Callable[[Population], int] = 1   # largest |message| per step (Conv overflow warning)
    layerwise: bool = True                # runs in the layerwise schedule (sends its count on c_out)

    def bits(self, pop: Population) -> int:
        return _bits_or_call(self.spike_bits, pop)

    def message_max(self, pop: Population) -> int:
        return _bits_or_call(self.max_message, pop)


def _dual_extra(node: Population, ctx: EmitContext) -> dict:
    # Theta_neg = -ceil(Theta / neg_divisor) per neuron, scaled like the threshold (layerwise: T*Theta_neg)
    return {"neg": ctx.scale * node.neuron.negative_threshold(_full(node, node.threshold))}


def _mt_rate_extra(node: Population, ctx: EmitContext) -> dict:
    return {"mt": [node.neuron.n, int(node.neuron.relu), 1]}


def _mt_differential_extra(node: Population, ctx: EmitContext) -> dict:
    # states in units of 2^-F: R(0) = V0 * 2^F; R_1..R_T precomputed so the model is integer-only
    return {"mt": [node.neuron.n, int(node.neuron.relu), ctx.one], "v_init": ctx.one * _full(node, node.v0),
            "recip": ctx.recip_table()}


def _differential_readout_extra(node: Readout, ctx: EmitContext) -> dict:
    return {"v_init": ctx.one * _full(node, node.v0), "recip": ctx.recip_table()}


NEURON_EMITTERS: dict[type, NeuronEmitter] = {
    IFSoftReset: NeuronEmitter({RateCoding: LavaProcess(IFSoftResetNeuron)}, spike_bits=0),
    DualThreshold: NeuronEmitter({RateCoding: LavaProcess(DualThresholdNeuron, _dual_extra)},
                                 spike_bits=SIGNED_SPIKE_BITS),
    # graded messages 0, +-1, ..., +-2^(n-1): n + 1 bits two's complement (n = 1: the 2-bit signed spike)
    MultiThreshold: NeuronEmitter({RateCoding: LavaProcess(MTRateNeuron, _mt_rate_extra),
                                   DifferentialCoding: LavaProcess(MTDifferentialNeuron, _mt_differential_extra)},
                                  spike_bits=lambda pop: pop.neuron.n + 1,
                                  max_message=lambda pop: pop.neuron.unit_divisor, layerwise=False),
}


@dataclass(frozen=True)
class CodingEmitter:
    """How one network coding is emitted: input presentation and the readout process."""

    input_steps: Callable[[int], int]     # T -> how many first steps present x_int (pipelined)
    readout: LavaProcess
    layerwise: bool = True


CODING_EMITTERS: dict[type, CodingEmitter] = {
    RateCoding: CodingEmitter(lambda T: T, LavaProcess(Accumulator)),              # x_int every step
    DifferentialCoding: CodingEmitter(lambda T: 1, LavaProcess(DifferentialAccumulator, _differential_readout_extra),
                                      layerwise=False),                            # x_int once, at step 1
}


def _supported() -> str:
    return ", ".join(sorted(f"{n.__name__} with {c.__name__}" for n, em in NEURON_EMITTERS.items() for c in em.codings))


def neuron_emitter(pop: Population, coding: Coding | None = None,
                   schedule: Schedule = Schedule.PIPELINED) -> tuple[NeuronEmitter, LavaProcess]:
    """The emitter of ``pop``'s neuron model and its process for ``coding``; UnsupportedNetworkError
    naming the population for a model, coding or schedule Lava has no process for."""
    coding = RateCoding() if coding is None else coding
    em = NEURON_EMITTERS.get(type(pop.neuron))
    proc = None if em is None else em.codings.get(type(coding))
    if proc is None:
        raise UnsupportedNetworkError(
            f"population '{pop.name}': neuron model {type(pop.neuron).__name__} with {type(coding).__name__} has "
            f"no Lava process (supported: {_supported()})"
        )
    if schedule is Schedule.LAYERWISE and not em.layerwise:
        raise UnsupportedNetworkError(
            f"population '{pop.name}': {type(pop.neuron).__name__} neurons run only in the pipelined schedule "
            "(the layerwise schedule's constant-current theorem is for IF and dual-threshold neurons in rate coding)"
        )
    return em, proc


def coding_emitter(net: Network, schedule: Schedule) -> CodingEmitter:
    ce = CODING_EMITTERS.get(type(net.coding))
    if ce is None:
        raise UnsupportedNetworkError(f"network coding {type(net.coding).__name__} has no Lava emission "
                                  f"(supported: {sorted(c.__name__ for c in CODING_EMITTERS)})")
    if schedule is Schedule.LAYERWISE and not ce.layerwise:
        names = [n.name for n in net.readouts]
        raise UnsupportedNetworkError(f"readout '{names[0]}': {type(net.coding).__name__} runs only in the pipelined "
                                  "schedule")
    return ce


def _source_max(src, T: int, layerwise: bool, per_step: int = 1) -> int:
    """Largest |value| a source sends in one message (``per_step``: a population's largest message;
    ``T``: the steps the source runs, its own for a population with mixed levels)."""
    if isinstance(src, Input):
        m = max(abs(src.qmin), abs(src.qmax))
        return m * T if layerwise else m   # layerwise sends T*x_int once; pipelined x_int per step
    return T if layerwise else per_step


def _projection(p: Projection, net: Network, bits: int, layerwise: bool, tag: str = "fixed_pt",
                sparse: bool | None = None, per_step: int = 1):
    """The Lava process of projection ``p``; ``bits``: its ``num_message_bits`` (0 = binary spikes)."""
    src, dst = net.node(p.source), net.node(p.target)
    if isinstance(p, Dense):
        w = p.weight[np.ix_(_flat_perm(p.out_shape), _flat_perm(src.shape))].astype(np.int64)
        if tag == "floating_pt":  # Lava's float Dense/Sparse models ignore weight_exp: pre-shift instead
            w, kw = w << p.exponent, {}
        else:
            kw = dict(weight_exp=int(p.exponent), num_weight_bits=9, sign_mode=SignMode.MIXED)
        if sparse is None:
            sparse = np.count_nonzero(w) < SPARSE_DENSITY_THRESHOLD * w.size
        w = w.astype(np.int32)
        if sparse:
            return LavaSparse(weights=csr_matrix(w), num_message_bits=bits, name=p.name, **kw)
        return LavaDense(weights=w, num_message_bits=bits, name=p.name, **kw)
    if isinstance(p, (Conv2d, SumPool2d)) and (not conv_fits_lava(p) or isinstance(src, GradedFunctionUnit)):
        return _unrolled_conv(p, bits, tag)   # a unit's messages have no static bound: int32, guarded at run time
    c_in, h, w_in = p.in_shape
    if isinstance(p, Conv2d):
        kern = p.weight[:, :, ::-1, ::-1].astype(np.int64)      # correlation -> convolution
        stride, dil, groups = p.stride, p.dilation, p.groups
    elif isinstance(p, SumPool2d):
        kern = np.full((c_in, 1) + tuple(p.kernel), int(p.weight), np.int64)
        stride, dil, groups = p.stride, (1, 1), c_in
    else:
        raise UnsupportedNetworkError(f"projection '{p.name}': {type(p).__name__} has no Lava mapping")
    pad_t, pad_l, pad_b, pad_r = p.padding
    kh, kw = kern.shape[2:]
    oh = (h + 2 * pad_t - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w_in + 2 * pad_l - dil[1] * (kw - 1) - 1) // stride[1] + 1
    if (oh, ow) != tuple(p.out_shape[1:]):
        raise UnsupportedNetworkError(
            f"projection '{p.name}': padding {p.padding} (t, l, b, r) is not expressible by Lava's "
            "symmetric Conv padding"
        )
    lava_w = np.transpose(kern, (0, 3, 2, 1)).astype(np.int64) << p.exponent   # (O, kw, kh, C/g)
    smax = _source_max(src, net.steps(src) if isinstance(src, Population) else net.timesteps, layerwise, per_step)
    worst = int(np.abs(lava_w).reshape(lava_w.shape[0], -1).sum(axis=1).max(initial=0)) * smax
    if worst > CONV_CURRENT_LIMIT:
        warnings.warn(
            f"projection '{p.name}': worst-case current {worst} exceeds Lava Conv's 24-bit output; "
            "Lava would wrap it (results are exact only while every actual current fits)",
            RuntimeWarning, stacklevel=3,
        )
    return Conv(weight=lava_w.astype(np.int32), input_shape=lava_shape(p.in_shape),
                padding=(pad_l, pad_t), stride=(stride[1], stride[0]), dilation=(dil[1], dil[0]),
                groups=groups, num_message_bits=bits, name=p.name)


def _unrolled_conv(p: Projection, bits: int, tag: str):
    """A convolution Lava's Conv cannot hold exactly (widths.py) as a Lava ``Sparse`` on the flattened
    Lava layouts, with the Dense path's weight parameters."""
    m = conv_matrix(p)[_flat_perm(p.out_shape)][:, _flat_perm(p.in_shape)]
    check_sparse_weights(p, m)
    if tag == "floating_pt":
        m, kw = m * (1 << p.exponent), {}
    else:
        kw = dict(weight_exp=int(p.exponent), num_weight_bits=9, sign_mode=SignMode.MIXED)
    return LavaSparse(weights=csr_matrix(m.astype(np.int32)), num_message_bits=bits, name=p.name, **kw)


def refuse_unmappable(net: Network, schedule: Schedule = Schedule.PIPELINED) -> None:
    """Nodes Lava cannot run fail here, before anything is built: never dropped, never run as something
    else. Graded max-pool units run as ``GradedMaxPoolUnit`` in the pipelined schedule only (their IR
    edge is a SumPool2d that is *not* emitted as a window sum: the source is wired to the unit)."""
    for node in net.ordered_nodes():
        if isinstance(node, GRADED_UNITS) and schedule is Schedule.LAYERWISE:
            what = "graded max-pool unit" if isinstance(node, GradedMaxPool) else f"graded {type(node).__name__} unit"
            raise UnsupportedNetworkError(
                f"{what} '{node.name}': graded units run only in the pipelined schedule (the "
                "layerwise schedule's constant-current theorem is for IF and dual-threshold neurons)")
        if isinstance(node, GRADED_UNITS) and not isinstance(node, (GradedMaxPool, GradedFunctionUnit)):
            raise UnsupportedNetworkError(f"graded unit '{node.name}': {type(node).__name__} has no Lava process in snnc")
        if not isinstance(node, (Input, Population, Readout, GradedMaxPool, GradedFunctionUnit)):
            raise UnsupportedNetworkError(f"node '{node.name}': {type(node).__name__} has no Lava emission in snnc")


def build(net: Network, x, schedule: Schedule | str = Schedule.PIPELINED, quantized: bool = False,
          tag: str = "fixed_pt", sparse: bool | None = None) -> LavaBuild:
    """Emit ``net`` as connected Lava processes for the batch ``x`` (samples run back to back).

    ``tag`` is the Lava model tag the graph will be run with ("fixed_pt", or "floating_pt" for
    which Dense weights are passed pre-shifted because Lava's float Dense ignores ``weight_exp``).
    ``sparse``: None emits each IR Dense as Lava ``Sparse`` when its density is below
    ``SPARSE_DENSITY_THRESHOLD`` (else Lava ``Dense``); True / False forces Sparse / Dense for all.
    """
    schedule = Schedule(schedule)
    net.check_schedule(schedule.value)  # mixed L: layerwise only (names the layers and their L)
    refuse_unmappable(net, schedule)
    x_int = as_int_inputs(net, x, quantized)
    T = net.timesteps
    B = next(iter(x_int.values())).shape[0]
    # unsupported models, codings and schedules fail before any work
    emitters = {pop.name: neuron_emitter(pop, net.coding, schedule) for pop in net.populations}
    coding = coding_emitter(net, schedule)
    start, end, period = _timing(net, schedule)
    mode = LAYERWISE if schedule is Schedule.LAYERWISE else PIPELINED
    scale = T if mode == LAYERWISE else 1
    ctx = EmitContext(net.coding, T, scale)
    diff = isinstance(net.coding, DifferentialCoding)
    procs, inputs, probes = {}, {}, {}
    guards = message_guards(net)
    for node in net.ordered_nodes():
        nd, shp = len(node.shape), lava_shape(node.shape)
        if isinstance(node, Input):
            data = np.zeros((B, period) + shp, np.int64)
            xl = to_lava(x_int[node.name], nd)[:, None]
            if mode == PIPELINED:
                data[:, :coding.input_steps(T)] = xl  # x_int every step (rate) / at step 1 only (differential)
            else:
                data[:, :1] = T * xl                  # the count T*x_int, once, as a graded value
            data = np.moveaxis(data.reshape((B * period,) + shp), 0, -1)
            procs[node.name] = inputs[node.name] = Source(data=data.astype(np.int32))
            continue
        kw = dict(shape=shp, mode=mode, timesteps=T, start=start[node.name], period=period, name=node.name)
        if isinstance(node, Population):
            lp = emitters[node.name][1]
            pctx = ctx
            if mode == LAYERWISE and net.steps(node) != T:  # mixed L: its own steps tau_p scale its state
                pctx = EmitContext(net.coding, net.steps(node), net.steps(node))
                kw["timesteps"] = pctx.timesteps
            args = dict(thr=pctx.scale * _full(node, node.threshold), v_init=pctx.scale * _full(node, node.v0),
                        bias=pctx.scale * _full(node, node.bias))
            args.update(lp.extra(node, pctx))
            proc = lp.process(**args, **kw)
            out = proc.s_out
            sink = Sink(shape=shp, buffer=B * period)
        elif isinstance(node, GradedMaxPool):
            edge = graded_edge(net, node)
            proc = GradedMaxPoolUnit(
                shape=shp, in_shape=lava_shape(node.in_shape), kernel=node.kernel, stride=node.stride,
                padding=node.padding, recip=ctx.recip_table() if diff else np.ones(T, np.int64),
                graded=[int(diff), int(isinstance(net.node(edge.source), GRADED_UNITS))],
                timesteps=T, start=start[node.name], period=period, name=node.name)
            out = proc.s_out
            sink = Int64Probe(shape=shp, buffer=B * period)  # differential increments are values times 2^F
        elif isinstance(node, GradedFunctionUnit):
            # one sample's state (samples run back to back; the dynamics restart at each sample's t = 1)
            guard = guards.get(node.name)
            proc = GradedFunctionProcess(node=node, coding=net.coding, timesteps=T, start=start[node.name],
                                         period=period, limit=INT32_CURRENT_LIMIT if guard is None else guard.limit,
                                         name=node.name)
            out = proc.s_out
            sink = Int64Probe(shape=shp, buffer=B * period)
        elif isinstance(node, Readout):
            args = dict(v_init=_full(node, node.v0), bias=scale * _full(node, node.bias))
            args.update(coding.readout.extra(node, ctx))
            proc = coding.readout.process(**args, **kw)
            out = proc.r_out
            sink = Int64Probe(shape=shp, buffer=B * period)   # readout values can exceed Lava's int32 sink
        else:  # pragma: no cover
            raise UnsupportedNetworkError(f"node '{node.name}': {type(node).__name__}")
        out.connect(sink.a_in)
        procs[node.name], probes[node.name] = proc, sink
    depth = net.depth()
    delays: dict[tuple[str, int], DelayLine] = {}
    for p in net.projections:
        src, dst = net.node(p.source), net.node(p.target)
        per_step = 1
        if isinstance(src, Input) or mode == LAYERWISE:
            bits = GRADED_BITS                      # input values, layerwise counts
        elif isinstance(src, GradedMaxPool):        # graded increments (differential: values times 2^F)
            bits = GRADED_BITS
            per_step = src.max_message * (ctx.one if diff else 1)
        elif isinstance(src, GradedFunctionUnit):   # a unit's increments (units of 2^-G of its output scale)
            bits, per_step = GRADED_BITS, 1
        else:                                       # per-step spikes: binary (0), signed (2), MT graded (n + 1)
            em = emitters[src.name][0]
            bits, per_step = em.bits(src), em.message_max(src)
        lp = _projection(p, net, bits, mode == LAYERWISE, tag, sparse, per_step)
        sp = procs[p.source]
        out = sp.s_out if isinstance(src, Input) else (sp.c_out if mode == LAYERWISE else sp.s_out)
        lag = depth[p.target] - 1 - depth[p.source]
        if mode == PIPELINED and lag > 0:  # a skip connection: align with the longest path
            key = (p.source, lag)
            if key not in delays:
                delays[key] = DelayLine(shape=lava_shape(src.shape), delay=lag, period=period,
                                        name=f"{p.source}.delay{lag}")
                out.connect(delays[key].s_in)
                procs[delays[key].name] = delays[key]
            out = delays[key].s_out
        if isinstance(dst, GradedMaxPool):  # the unit reads every element of its source: no projection process
            out.connect(procs[p.target].s_in)
            continue
        dshape = dst.input_shape(p) if isinstance(dst, GradedFunctionUnit) else dst.shape
        if isinstance(lp, (LavaDense, LavaSparse)):
            (out.flatten() if len(src.shape) != 1 else out).connect(lp.s_in)
            a = lp.a_out if len(dshape) == 1 else lp.a_out.reshape(lava_shape(dshape))
        else:
            out.connect(lp.s_in)
            a = lp.a_out
        # a graded unit's differential messages are already encoded: the consumer adds them without R_k
        encoded = diff and isinstance(src, GRADED_UNITS)
        if isinstance(dst, GradedFunctionUnit):
            port = dst.port_of(p.name)
            a.connect(getattr(procs[p.target], f"{port}e_in" if encoded else f"{port}_in"))
        else:
            a.connect(procs[p.target].e_in if encoded else procs[p.target].a_in)
        procs[p.name] = lp
    return LavaBuild(procs, inputs, probes, schedule, T, B, period, start, end, guards)
