"""snnc IR -> NIR graph (``nir`` 1.0.8), with snnc's semantics in the ``snnc.*`` metadata.

Mapping (docs/interop.md has the table and what a spec-only reader gets wrong):

- ``Input``      -> ``nir.Input`` (shape without batch); the quantizer in node metadata.
- ``Population`` -> ``nir.IF`` (r = 1, v_threshold = Theta per neuron, v_reset = 0); reset by
  subtraction, ``>=``, V0 and the IR's own fields in node metadata.
- ``Readout``    -> ``nir.Output``: what reaches it per step is the readout's current; its value is
  R0 plus the sum of that current over the T steps (metadata ``snnc.readout`` = "sum").
- ``Dense``      -> [``nir.Flatten`` (start_dim 0: NIR counts dimensions without the batch)] + ``nir.Affine``.
- ``Conv2d``     -> ``nir.Conv2d`` with explicit ``input_shape`` and int tuples (symmetric padding only).
- ``SumPool2d``  -> ``nir.SumPool2d`` (+ ``nir.Scale`` when w * 2^e != 1); as a depthwise ``nir.Conv2d``
  when it is the only place its target's bias can go.
- A node with several incoming projections: one NIR edge per projection into that node (NIR sums
  them); the node's per-step bias B goes into exactly one of them (the first Affine/Conv2d).

Weights are m * 2^e written as float32, exact while |m * 2^e| < 2^24 (checked); the mantissa and
exponent are also in the node metadata. A network NIR cannot express (dual-threshold, multi-threshold
neurons, graded units, differential coding, per-layer steps, values beyond float32) is refused by name
unless ``inexact=True``, which writes it anyway and lists every reason in ``snnc.inexact``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.backends.base import BackendError
from snnc.ir import (Conv2d, Dense, DifferentialCoding, DualThreshold, GradedMaxPool, IFSoftReset, Input,
                     MultiThreshold, Network, Population, Projection, Readout, SumPool2d)
from snnc.ir import nirmeta as M

FLOAT32_EXACT = 2**24   # every integer of magnitude <= 2^24 is a float32


class NirExportError(BackendError):
    """The network cannot be written as NIR (the message names the node and what to do)."""


def _require_nir():
    try:
        import nir
    except ImportError:
        raise NirExportError("NIR export needs the 'nir' package (pip install 'snnc[nir]', or nir==1.0.8)") from None
    return nir


@dataclass
class NirExport:
    """An exported graph and what the export knows about it."""

    graph: object                       # nir.NIRGraph
    keys: dict[str, str]                # IR node / projection name -> NIR node key
    exact: bool
    reasons: list[str] = field(default_factory=list)   # why not exact (with inexact=True)
    float32_bound: int = 0              # largest |value| a float32 run can meet (membrane, current, partial sum)


def _key_maker():
    used: set[str] = set()

    def key(name: str) -> str:
        k = re.sub(r"[^A-Za-z0-9_]", "_", name) or "node"
        base, i = k, 1
        while k in used:
            i += 1
            k = f"{base}_{i}"
        used.add(k)
        return k

    return key


def _int_meta(a):
    """An integer array in the smallest signed dtype that holds it (metadata stays small); a scalar as a
    Python int (HDF5 cannot compress a scalar dataset; nir.read returns it as a 0-d numpy value)."""
    a = np.asarray(a, np.int64)
    if a.ndim == 0:
        return int(a)
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if a.size == 0 or (a.min() >= info.min and a.max() <= info.max):
            return a.astype(dt)
    return a


def _float_meta(a):
    a = np.asarray(a, np.float64)
    return float(a) if a.ndim == 0 else a


def _f32(name: str, what: str, values, problems: list[str]) -> np.ndarray:
    """``values`` (integers) as float32; records a problem when float32 does not hold them exactly."""
    v = np.asarray(values, np.int64)
    if v.size and int(np.abs(v).max()) > FLOAT32_EXACT:
        problems.append(f"'{name}': {what} reaches |{int(np.abs(v).max())}| > 2^24, not exact in float32")
    return v.astype(np.float32)


def _broadcast(arr, shape) -> np.ndarray:
    """A scalar or per-channel parameter to the full ``shape``."""
    a = np.asarray(arr)
    if a.ndim == 0:
        return np.broadcast_to(a, shape)
    return np.broadcast_to(a.reshape((shape[0],) + (1,) * (len(shape) - 1)), shape)


def _per_out_channel(arr, n: int) -> np.ndarray:
    a = np.asarray(arr)
    return np.broadcast_to(a, (n,)) if a.ndim == 0 else a.reshape(n)


def _value_range(net: Network, name: str) -> tuple[int, int]:
    """What a source node sends per step: its message range (rate coding)."""
    node = net.node(name)
    if isinstance(node, Input):
        return node.qmin, node.qmax
    if isinstance(node, GradedMaxPool):
        return -node.max_message, node.max_message
    n = node.neuron
    if isinstance(n, MultiThreshold):
        return -n.unit_divisor, n.unit_divisor
    if isinstance(n, DualThreshold):
        return -1, 1
    return 0, 1


def _partial_sums(p: Projection, lo: int, hi: int) -> tuple[int, int]:
    """(largest positive, largest negative magnitude) any partial sum of this projection's current can
    reach, per output, maximised over outputs (conv borders ignored: an upper bound)."""
    w = np.asarray(p.weight, np.int64) << p.exponent
    if isinstance(p, SumPool2d):
        w = np.full((1, int(p.kernel[0] * p.kernel[1])), int(w))
    w = w.reshape(w.shape[0], -1)
    top = np.maximum(np.maximum(w * hi, w * lo), 0).sum(axis=1)
    bot = np.minimum(np.minimum(w * hi, w * lo), 0).sum(axis=1)
    return int(top.max(initial=0)), int(-bot.min(initial=0))


def float32_bound(net: Network) -> int:
    """The largest |value| a float32 pipelined run of the exported graph can meet: per node, the sum
    over its projections of their partial sums plus |B| (one step's current), and |V0| + T times that
    (the membrane or the readout's running sum)."""
    worst = 0
    for node in net.nodes:
        inc = net.incoming(node.name)
        if not inc:
            continue
        pos = neg = 0
        for p in inc:
            lo, hi = _value_range(net, p.source)
            a, b = _partial_sums(p, lo, hi)
            pos, neg = pos + a, neg + b
        bias = np.abs(np.asarray(getattr(node, "bias", 0), np.int64)).max(initial=0)
        v0 = np.abs(np.asarray(getattr(node, "v0", 0), np.int64)).max(initial=0)
        cur = max(pos, neg) + int(bias)
        worst = max(worst, cur, int(v0) + net.timesteps * cur)
    return worst


def _ungrouped(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weight (O, C/g, kh, kw) as the equal ungrouped one (O, C, kh, kw): zeros outside
    each output channel's group (exact; zero weights cause no synaptic operation)."""
    O, cg = w.shape[:2]
    og = O // groups
    full = np.zeros((O, cg * groups) + w.shape[2:], w.dtype)
    for g in range(groups):
        full[g * og:(g + 1) * og, g * cg:(g + 1) * cg] = w[g * og:(g + 1) * og]
    return full


def _fields_json(obj, skip: tuple[str, ...]) -> str:
    out = {}
    for f in dataclasses.fields(obj):
        if f.name in skip:
            continue
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            continue
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return M.dumps(out)


def _neuron_json(pop: Population) -> str:
    return M.dumps({"type": type(pop.neuron).__name__, "fields": dataclasses.asdict(pop.neuron)})


class _Builder:
    def __init__(self, net: Network, inexact: bool):
        self.nir = _require_nir()
        self.net, self.inexact = net, inexact
        self.nodes: dict[str, object] = {}
        self.edges: list[tuple[str, str]] = []
        self.keys: dict[str, str] = {}
        self.reasons: list[str] = []
        self.key = _key_maker()

    def not_exact(self, why: str) -> None:
        if not self.inexact:
            raise NirExportError(f"cannot export to NIR exactly: {why}. Give --inexact to write it anyway "
                                 "(the file then says it is not exact, and why, in snnc.inexact)")
        self.reasons.append(why)

    # ---- nodes -------------------------------------------------------------------------------
    def add_node(self, node) -> None:
        nir, k = self.nir, self.key(node.name)
        self.keys[node.name] = k
        shape = tuple(node.shape)
        meta = {M.KIND: type(node).__name__, M.NAME: node.name}
        if isinstance(node, Input):
            meta.update({M.FIELDS: _fields_json(node, ()),
                         M.PRESENTATION: "first_step" if isinstance(self.net.coding, DifferentialCoding) else "every_step"})
            self.nodes[k] = nir.Input(input_type=np.array(shape), metadata=meta)
        elif isinstance(node, Population):
            if not isinstance(node.neuron, IFSoftReset):
                self.not_exact(f"population '{node.name}' has {type(node.neuron).__name__} neurons; NIR's neurons "
                               "(IF, LIF, CubaLIF) fire one kind of binary spike, exported here as IF")
            problems: list[str] = []
            thr = _f32(node.name, "threshold", _broadcast(node.threshold, shape), problems)
            for what, arr in (("v0", node.v0), ("bias", node.bias)):
                _f32(node.name, what, arr, problems)
            for pr in problems:
                self.not_exact(pr)
            meta.update({M.FIELDS: _fields_json(node, ("neuron",)), M.NEURON: _neuron_json(node),
                         M.RESET: M.RESET_SUBTRACT, M.COMPARE: M.COMPARE_GE, M.V0: _int_meta(node.v0),
                         M.THRESHOLD: _int_meta(node.threshold), M.BIAS: _int_meta(node.bias),
                         M.REAL_THRESHOLD: _float_meta(node.real_threshold)})
            self.nodes[k] = nir.IF(r=np.ones(shape, np.float32), v_threshold=np.ascontiguousarray(thr),
                                   v_reset=np.zeros(shape, np.float32), metadata=meta)
        elif isinstance(node, Readout):
            meta.update({M.FIELDS: _fields_json(node, ()), M.READOUT: "sum", M.V0: _int_meta(node.v0),
                         M.BIAS: _int_meta(node.bias)})
            self.nodes[k] = nir.Output(output_type=np.array(shape), metadata=meta)
        elif isinstance(node, GradedMaxPool):
            self.not_exact(f"graded unit '{node.name}' (a window max of encoded values) has no NIR node; "
                           "exported as an identity Scale after its SumPool2d edge, which sums instead")
            meta[M.FIELDS] = _fields_json(node, ())
            self.nodes[k] = nir.Scale(scale=np.ones(shape, np.float32), metadata=meta)
        else:  # pragma: no cover - every IR node kind is handled above
            raise NirExportError(f"node '{node.name}': {type(node).__name__} has no NIR form")

    # ---- projections -------------------------------------------------------------------------
    def bias_holders(self) -> dict[str, str]:
        """target -> the projection whose NIR node carries the target's bias (the first Dense/Conv2d;
        a SumPool2d when it is the only incoming projection and the bias is not zero)."""
        out = {}
        for node in self.net.nodes:
            if not isinstance(node, (Population, Readout)):
                continue
            inc = self.net.incoming(node.name)
            slot = [p for p in inc if isinstance(p, (Dense, Conv2d))]
            if slot:
                out[node.name] = slot[0].name
            elif inc and np.any(np.asarray(node.bias) != 0):
                out[node.name] = inc[0].name
        return out

    def add_projection(self, p: Projection, carries_bias: bool) -> None:
        nir, net = self.nir, self.net
        src, dst = net.node(p.source), net.node(p.target)
        k = self.key(p.name)
        self.keys[p.name] = k
        problems: list[str] = []
        w = _f32(p.name, "weight * 2^exponent", np.asarray(p.weight, np.int64) << p.exponent, problems)
        for pr in problems:
            self.not_exact(pr)
        problems.clear()
        meta = {M.KIND: type(p).__name__, M.NAME: p.name, M.FIELDS: _fields_json(p, ()),
                M.EXPONENT: int(p.exponent), M.MANTISSA: _int_meta(p.weight)}
        bias = getattr(dst, "bias", np.array(0)) if carries_bias else np.array(0)
        chain_in, chain_out = k, k
        if isinstance(p, Dense):
            if len(p.out_shape) != 1:
                raise NirExportError(f"projection '{p.name}': a dense map into '{dst.name}' of shape {dst.shape}; "
                                     "NIR's Affine writes a vector and NIR has no reshape")
            n_out = int(p.out_shape[0])
            b = _f32(p.name, "bias", _per_out_channel(bias, n_out), problems)
            self.nodes[k] = nir.Affine(weight=np.ascontiguousarray(w), bias=np.ascontiguousarray(b), metadata=meta)
            if len(p.in_shape) > 1:
                fk = self.key(f"{p.name}_flatten")
                self.nodes[fk] = nir.Flatten(input_type=np.array(p.in_shape), start_dim=0, end_dim=-1,
                                             metadata={M.KIND: "Flatten", M.NAME: p.name})
                self.edges.append((fk, k))
                chain_in = fk
        elif isinstance(p, Conv2d) or (isinstance(p, SumPool2d) and carries_bias):
            if isinstance(p, SumPool2d):  # the bias needs a slot: the same map as a depthwise conv
                C = p.in_shape[0]
                w = np.full((C, 1) + tuple(p.kernel), float(w), np.float32)
                stride, dilation, groups = p.stride, (1, 1), C
            else:
                stride, dilation, groups = p.stride, p.dilation, p.groups
            if groups > 1:  # nir 1.0.8 types a grouped conv's input as weight.shape[1] (= C/groups) channels,
                w = _ungrouped(w, groups)  # so nir.write/read refuse it: written as the same conv, block-diagonal
                groups = 1
            t, l, bo, r = p.padding
            if (t, l) != (bo, r):
                raise NirExportError(f"projection '{p.name}': padding (top, left, bottom, right) = {p.padding} is not "
                                     "symmetric; NIR's Conv2d pads (height, width) on both sides alike")
            n_out = int(p.out_shape[0])
            b = _f32(p.name, "bias", _per_out_channel(bias, n_out), problems)
            self.nodes[k] = nir.Conv2d(input_shape=tuple(int(s) for s in p.in_shape[1:]),
                                       weight=np.ascontiguousarray(w), stride=tuple(int(s) for s in stride),
                                       padding=(int(t), int(l)), dilation=tuple(int(d) for d in dilation),
                                       groups=int(groups), bias=np.ascontiguousarray(b), metadata=meta)
        elif isinstance(p, SumPool2d):
            t, l, bo, r = p.padding
            if (t, l) != (bo, r):
                raise NirExportError(f"projection '{p.name}': padding {p.padding} is not symmetric; NIR's "
                                     "SumPool2d pads (height, width) on both sides alike")
            self.nodes[k] = nir.SumPool2d(kernel_size=np.array(p.kernel), stride=np.array(p.stride),
                                          padding=np.array((t, l)), metadata=meta)
            scale = int(np.asarray(p.weight)) << p.exponent
            if scale != 1:
                sk = self.key(f"{p.name}_scale")
                self.nodes[sk] = nir.Scale(scale=np.full(tuple(p.out_shape), scale, np.float32),
                                           metadata={M.KIND: "SumPool2dScale", M.NAME: p.name})
                self.edges.append((k, sk))
                chain_out = sk
        else:  # pragma: no cover
            raise NirExportError(f"projection '{p.name}': {type(p).__name__} has no NIR form")
        for pr in problems:   # biases beyond float32
            self.not_exact(pr)
        self.edges.append((self.keys[src.name], chain_in))
        self.edges.append((chain_out, self.keys[dst.name]))


def to_nir(net: Network, inexact: bool = False) -> NirExport:
    """The NIR graph of ``net`` (``nir.NIRGraph``, type-checked by nir), or NirExportError naming what NIR
    cannot express; ``inexact=True`` writes it anyway and lists the reasons."""
    b = _Builder(net, inexact)
    if isinstance(net.coding, DifferentialCoding):
        b.not_exact("differential coding (the input presented once, values encoded with 1/t) has no NIR form")
    if net.mixed_steps:
        b.not_exact(f"populations run their own number of steps {net.mixed_steps} (layerwise only); a NIR graph "
                    "steps every node every step")
    for node in net.nodes:
        b.add_node(node)
    holders = b.bias_holders()
    for p in net.projections:
        b.add_projection(p, holders.get(p.target) == p.name)
    bound = float32_bound(net)
    if bound > FLOAT32_EXACT:
        b.not_exact(f"a float32 run can meet values up to {bound} > 2^24 (membranes, currents or partial sums)")
    meta = {
        M.G_FORMAT: M.FORMAT, M.G_VERSION: M.VERSION, M.G_TIMESTEPS: int(net.timesteps),
        M.G_SCHEDULE: "pipelined",
        M.G_CODING: M.dumps({"type": type(net.coding).__name__, "fields": dataclasses.asdict(net.coding)}),
        M.G_EXACT: int(not b.reasons), M.G_INEXACT: M.dumps(b.reasons),
        M.G_FLOAT32_BOUND: int(bound), M.G_FLOAT32_EXACT: int(bound <= FLOAT32_EXACT),
        M.G_ORDER: M.dumps({"nodes": [n.name for n in net.nodes], "projections": [p.name for p in net.projections]}),
        M.G_METADATA: M.dumps(net.metadata),
        M.G_SEMANTICS: "snnc integer SNN: IF neurons fire when v >= threshold and subtract it, start at snnc.v0; "
                       "the input is presented every step; outputs are summed over snnc.timesteps steps; "
                       "see snnc docs/interop.md",
    }
    try:
        graph = b.nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta, type_check=True)
    except ValueError as e:  # nir's own type check: a bug of this exporter, not of the user's network
        raise RuntimeError(f"the exported NIR graph does not type-check in nir: {e}") from e
    return NirExport(graph, b.keys, not b.reasons, list(b.reasons), bound)


def _atomic(path: str | os.PathLike, write) -> Path:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NirExportError(f"cannot write '{path}': folder '{folder}' does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise NirExportError(f"cannot write '{path}': {e.strerror}") from None
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def export_nir(net: Network, path: str | os.PathLike, inexact: bool = False) -> NirExport:
    """Write ``net`` as a NIR file (``nir.write``, HDF5) atomically; returns the export record."""
    exp = to_nir(net, inexact)
    nir = _require_nir()
    _atomic(path, lambda tmp: nir.write(tmp, exp.graph))
    return exp


@dataclass
class ReferenceRun:
    """Reference spike trains to write beside an export (``nir.write_data``).

    ``x_int``: input name -> (N, *shape) integer input; ``spikes``: population -> (T, N, *shape) spike
    trains; ``readout``: readout -> (N, *shape) final values (R0 + the summed current)."""

    x_int: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray]
    readout: dict[str, np.ndarray]


def write_reference_data(exp: NirExport, path: str | os.PathLike, run: ReferenceRun, timesteps: int) -> Path:
    """``nir.write_data`` of a reference run, keyed by the export's NIR node keys: inputs
    {"value": x_int every step}, populations {"spikes": (N, T, neurons)}, readouts {"final_value":
    (N, 1, outputs) with dt = T}. Values are integers (spikes bool, signed spikes int8)."""
    nir = _require_nir()
    nodes = {}
    for name, x in run.x_int.items():
        n = x.shape[0]
        grid = np.repeat(x.reshape(n, 1, -1), timesteps, axis=1).astype(np.int64)
        nodes[exp.keys[name]] = nir.NIRNodeData(observables={"value": nir.TimeGriddedData(grid, dt=1.0)})
    for name, tr in run.spikes.items():
        t, n = tr.shape[:2]
        grid = np.moveaxis(tr.reshape(t, n, -1), 0, 1)
        grid = grid.astype(bool) if grid.min(initial=0) >= 0 and grid.max(initial=0) <= 1 else grid.astype(np.int8)
        nodes[exp.keys[name]] = nir.NIRNodeData(observables={"spikes": nir.TimeGriddedData(grid, dt=1.0)})
    for name, r in run.readout.items():
        grid = np.asarray(r, np.int64).reshape(r.shape[0], 1, -1)
        nodes[exp.keys[name]] = nir.NIRNodeData(observables={"final_value": nir.TimeGriddedData(grid, dt=float(timesteps))})
    data = nir.NIRGraphData(nodes=nodes)
    return _atomic(path, lambda tmp: nir.write_data(tmp, data))
