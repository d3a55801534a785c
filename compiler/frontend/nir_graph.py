"""Read a NIR graph's structure: state nodes, the linear chains between them, shapes (docs/interop.md).

A NIR graph is already spiking, so it is not lowered like an ANN: every *state node* (Input, IF / LIF
/ CubaLIF neurons, an integrator ``I`` before an Output, an Output) becomes an IR node, and every path
of linear NIR nodes (Flatten, Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Scale, zero Delay) from a
state node into another becomes one IR projection. NIR sums what several edges bring into a node, as
the IR sums its projections. This module only finds that structure and the real-valued map of each
chain; ``nir_loader`` turns it into integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.ir import conv_output_size

from ..errors import UnsupportedOperatorError
from .nir_errors import NirImportError

NEURONS = ("IF", "LIF", "CubaLIF")
LINEAR = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d", "Scale", "Flatten", "Delay")
MAPS = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d")
SUPPORTED = ("Input", "Output", "I") + NEURONS + LINEAR


def kind(node) -> str:
    return type(node).__name__


@dataclass
class Chain:
    """One path source -> [linear nodes] -> target: a map (or the identity) with gains and a bias."""

    source: str                      # NIR key of the source state node
    target: str                      # NIR key of the target state node
    nodes: list[str]                 # the linear nodes, in the order they apply
    map_key: str | None = None       # the one Affine/Linear/Conv2d/SumPool2d/AvgPool2d (None: identity)
    in_shape: tuple[int, ...] = ()   # what the map reads (the source's shape)
    out_shape: tuple[int, ...] = ()  # what it writes
    weight: np.ndarray | None = None  # real weights: (out, in) dense, (O, C/g, kh, kw) conv, None pool/identity
    factor: float = 1.0              # pools: the window's factor (1, or 1/k for AvgPool2d)
    geometry: dict = field(default_factory=dict)   # conv / pool: stride, padding (t, l, b, r), ...
    bias: np.ndarray | None = None   # per output channel (C,) or per output (N,), real
    gain_in: float = 1.0             # product of scalar Scales before the map
    gain_out: np.ndarray | float = 1.0   # product of Scales after the map: scalar or per output channel


def _shape_of(arr) -> tuple[int, ...]:
    return tuple(int(s) for s in np.asarray(arr).reshape(-1))


def _pair(v, what: str, key: str) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or np.any(a != np.rint(a)):
        raise NirImportError(f"NIR node '{key}': {what} {v!r} is not one or two integers")
    return int(a[0]), int(a[1])


def channel_values(values: np.ndarray, shape: tuple[int, ...], what: str, key: str) -> np.ndarray:
    """A parameter given per element of ``shape`` (or broadcastable to it) -> one value per channel
    (axis 0); refused when it varies within a channel (the IR holds one value per channel)."""
    a = np.broadcast_to(np.asarray(values, np.float64), shape)
    if len(shape) == 1:
        return np.array(a)
    ch = a.reshape(shape[0], -1)
    if np.any(ch != ch[:, :1]):
        raise NirImportError(f"NIR node '{key}': {what} varies within a channel; snnc's IR holds one value per "
                             f"channel (axis 0 of {shape})")
    return np.array(ch[:, 0])


class GraphReader:
    """The structure of a NIR graph: state nodes, chains, shapes."""

    def __init__(self, graph):
        self.g = graph
        self.nodes = dict(graph.nodes)
        bad = [(k, kind(n)) for k, n in self.nodes.items() if kind(n) not in SUPPORTED]
        if bad:
            raise UnsupportedOperatorError(bad, list(SUPPORTED))
        self.preds: dict[str, list[str]] = {k: [] for k in self.nodes}
        self.succs: dict[str, list[str]] = {k: [] for k in self.nodes}
        for a, b in graph.edges:
            a, b = str(a), str(b)
            if a not in self.nodes or b not in self.nodes:
                raise NirImportError(f"NIR edge ({a!r}, {b!r}) names a node the graph does not have")
            self.preds[b].append(a)
            self.succs[a].append(b)
        self.states = self._state_nodes()
        self.shapes: dict[str, tuple[int, ...]] = {}

    # ---- state nodes ---------------------------------------------------------------------------
    def _state_nodes(self) -> dict[str, str]:
        """NIR key -> "input" | "neuron" | "readout" | "output" (an Output behind an I readout)."""
        out = {}
        for k, n in self.nodes.items():
            t = kind(n)
            if t == "Input":
                out[k] = "input"
            elif t in NEURONS:
                out[k] = "neuron"
            elif t == "I":
                succ = self.succs[k]
                if len(succ) != 1 or kind(self.nodes[succ[0]]) != "Output" or len(self.preds[succ[0]]) != 1:
                    raise NirImportError(f"NIR node '{k}' (an integrator I) must feed exactly one Output alone: "
                                         "snnc reads an integrator as a readout")
                out[k] = "readout"
            elif t == "Output":
                p = self.preds[k]
                if len(p) == 1 and kind(self.nodes[p[0]]) == "I":
                    out[k] = "output"
                else:
                    out[k] = "readout"
        for k, role in out.items():
            if role in ("readout", "output") and self.succs[k] and kind(self.nodes[k]) != "I":
                raise NirImportError(f"NIR node '{k}' ({kind(self.nodes[k])}) feeds {self.succs[k]}; an output is "
                                     "never a source in snnc")
        return out

    def readout_keys(self) -> list[str]:
        return [k for k, r in self.states.items() if r == "readout"]

    # ---- chains --------------------------------------------------------------------------------
    def chains_into(self, target: str) -> list[Chain]:
        chains = []
        for p in self.preds[target]:
            path, cur = [], p
            while cur not in self.states:
                if kind(self.nodes[cur]) not in LINEAR:  # pragma: no cover - SUPPORTED = states + LINEAR
                    raise NirImportError(f"NIR node '{cur}' cannot be part of a projection")
                if len(self.preds[cur]) != 1:
                    raise NirImportError(f"NIR node '{cur}' ({kind(self.nodes[cur])}) has {len(self.preds[cur])} "
                                         "inputs; a projection in snnc reads one source node (put the sum into a "
                                         "neuron)")
                path.insert(0, cur)
                cur = self.preds[cur][0]
            if self.states[cur] in ("readout", "output"):
                raise NirImportError(f"NIR node '{cur}' is an output but feeds '{target}'")
            chains.append(self._chain(cur, target, path))
        return chains

    def _chain(self, source: str, target: str, path: list[str]) -> Chain:
        maps = [k for k in path if kind(self.nodes[k]) in MAPS]
        if len(maps) > 1:
            raise NirImportError(f"NIR nodes {maps} apply two linear maps in a row between '{source}' and '{target}'; "
                                 "snnc's IR has one projection between two nodes (fold them into one first)")
        return Chain(source, target, path, maps[0] if maps else None)

    # ---- shapes and values ---------------------------------------------------------------------
    def resolve(self, chain: Chain, src_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Walk the chain from ``src_shape``: fills the chain's map, gains, bias, shapes; returns the
        shape it writes. Raises NirImportError when a node does not fit its input."""
        shape = tuple(src_shape)
        seen_map = False
        chain.in_shape = shape
        for k in chain.nodes:
            n, t = self.nodes[k], kind(self.nodes[k])
            if t == "Flatten":
                shape = (int(np.prod(shape)),)   # order-preserving: either start_dim convention reads the same
            elif t == "Delay":
                if np.any(np.asarray(n.delay) != 0):
                    raise NirImportError(f"NIR node '{k}': Delay of {np.asarray(n.delay).max():g} step(s); snnc's IR has "
                                         "no synaptic delay (only a zero Delay is imported)")
            elif t == "Scale":
                s = np.asarray(n.scale, np.float64)
                if not np.all(np.isfinite(s)):
                    raise NirImportError(f"NIR node '{k}': Scale has NaN or Inf")
                if not seen_map:
                    if np.any(s != s.reshape(-1)[0]):
                        raise NirImportError(f"NIR node '{k}': a Scale before the linear map must be one value")
                    chain.gain_in *= float(s.reshape(-1)[0])
                else:
                    chain.gain_out = chain.gain_out * channel_values(s, shape, "Scale", k)
            else:
                if seen_map:  # pragma: no cover - _chain refused two maps
                    raise NirImportError(f"NIR node '{k}': second linear map")
                seen_map = True
                shape = self._apply_map(chain, k, n, t, shape)
                chain.out_shape = shape
        if not seen_map:
            chain.out_shape = shape
        return shape

    def _apply_map(self, chain: Chain, k: str, n, t: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if t in ("Affine", "Linear"):
            w = np.asarray(n.weight, np.float64)
            if w.ndim != 2:
                raise NirImportError(f"NIR node '{k}': {t} weight of shape {w.shape}; snnc reads 2-D (out, in) weights")
            if int(np.prod(shape)) != w.shape[1]:
                raise NirImportError(f"NIR node '{k}': {t} reads {w.shape[1]} values but receives shape {shape}")
            chain.weight = w
            chain.bias = np.asarray(n.bias, np.float64).reshape(-1) if t == "Affine" else None
            if chain.bias is not None and chain.bias.size not in (1, w.shape[0]):
                raise NirImportError(f"NIR node '{k}': bias of {chain.bias.size} values for {w.shape[0]} outputs")
            return (w.shape[0],)
        if len(shape) != 3:
            raise NirImportError(f"NIR node '{k}': {t} needs a (C, H, W) input, receives {shape}")
        C, H, W = shape
        if t == "Conv2d":
            w = np.asarray(n.weight, np.float64)
            groups = int(n.groups)
            if w.ndim != 4 or groups < 1 or w.shape[1] * groups != C or w.shape[0] % groups:
                raise NirImportError(f"NIR node '{k}': Conv2d weight {w.shape} with groups={groups} does not read "
                                     f"{C} channels")
            kh, kw = w.shape[2:]
            stride, dilation = _pair(n.stride, "stride", k), _pair(n.dilation, "dilation", k)
            pad = self._padding(n.padding, (kh, kw), dilation, stride, k)
            chain.weight, chain.bias = w, np.asarray(n.bias, np.float64).reshape(-1)
            if chain.bias.size not in (1, w.shape[0]):
                raise NirImportError(f"NIR node '{k}': bias of {chain.bias.size} values for {w.shape[0]} channels")
            chain.geometry = dict(stride=stride, padding=pad, dilation=dilation, groups=groups)
            out = (w.shape[0], conv_output_size(H, kh, stride[0], pad[0], pad[2], dilation[0]),
                   conv_output_size(W, kw, stride[1], pad[1], pad[3], dilation[1]))
        else:  # SumPool2d / AvgPool2d
            kernel, stride = _pair(n.kernel_size, "kernel_size", k), _pair(n.stride, "stride", k)
            pad = self._padding(n.padding, kernel, (1, 1), stride, k)
            if t == "AvgPool2d" and any(pad):
                raise NirImportError(f"NIR node '{k}': AvgPool2d with padding (whether the padding counts in the "
                                     "average is not defined by NIR); only unpadded average pooling is imported")
            chain.factor = 1.0 if t == "SumPool2d" else 1.0 / (kernel[0] * kernel[1])
            chain.geometry = dict(kernel=kernel, stride=stride, padding=pad)
            out = (C, conv_output_size(H, kernel[0], stride[0], pad[0], pad[2]),
                   conv_output_size(W, kernel[1], stride[1], pad[1], pad[3]))
        if min(out) < 1:
            raise NirImportError(f"NIR node '{k}': {t} gives an empty output {out} from {shape}")
        return out

    @staticmethod
    def _padding(p, kernel, dilation, stride, key) -> tuple[int, int, int, int]:
        """NIR padding (int, (h, w), "valid" or "same") -> (top, left, bottom, right)."""
        if isinstance(p, (bytes, str)) or (isinstance(p, np.ndarray) and p.dtype.kind in "SU"):
            s = p.decode() if isinstance(p, bytes) else str(p if not isinstance(p, np.ndarray) else p.item())
            if s == "valid":
                return (0, 0, 0, 0)
            if s == "same":
                if stride != (1, 1):
                    raise NirImportError(f"NIR node '{key}': padding 'same' with stride {stride}")
                th, tw = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
                return (th // 2, tw // 2, th - th // 2, tw - tw // 2)
            raise NirImportError(f"NIR node '{key}': padding {s!r} is not 'same', 'valid' or integers")
        ph, pw = _pair(p, "padding", key)
        return (ph, pw, ph, pw)
