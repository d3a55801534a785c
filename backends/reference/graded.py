"""Graded units in the reference simulator (docs/ir.md, "Graded max-pool unit" and "Graded units").

A graded unit is a non-spiking nonlinear layer: it keeps running values of what it reads and sends,
per step, the increment of a function of those values. The max-pool unit (below) reads its one
source's messages element by element; the transformer units (``snnc.ir.graded``: GELU / SiLU,
LayerNorm, Softmax, the two-input MatMul) read the currents of their incoming projections per port
and step with ``snnc.ir.graded.UnitDynamics`` (``FunctionUnit``): their arithmetic is the IR's own.

Max-pool unit:

* rate coding:          S <- S + msg_t,          out_t = maxwin(S_t) - maxwin(S_{t-1})
* differential coding:  m <- m + msg_t * R_t     (m <- m + d_t from another graded unit)
                        d_t = maxwin(m_t) - maxwin(m_{t-1})   (already in units of 2^-F)

A consumer adds a graded unit's differential message d to its *encoded* state directly (no second
R_t): ``add_encoded`` below, per consumer kind. In rate coding its messages are ordinary integer
messages (summed by the consumer like any other). ``UNITS`` maps (node class, coding class) to the
implementation, so a new unit adds an entry, not a branch.
"""

from __future__ import annotations

import numpy as np

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import (GRADED_UNITS, DifferentialCoding, GradedElementwise, GradedLayerNorm, GradedMatMul, GradedMaxPool,
                     GradedSoftmax, Network, Node, RateCoding, apply_projection, graded_edge)
from snnc.ir.graded import UnitDynamics

from .neurons import MTDifferentialStepper, Stepper

_NEG = np.iinfo(np.int64).min // 4   # padding: never the max (every window holds a real element)


def is_graded(node: Node) -> bool:
    return isinstance(node, GRADED_UNITS)


def unit_label(node: Node) -> str:
    """How messages name a unit: "graded max-pool unit", "graded unit (GradedSoftmax)"..."""
    return "graded max-pool unit" if isinstance(node, GradedMaxPool) else f"graded unit ({type(node).__name__})"


def window_max(x: np.ndarray, node: GradedMaxPool) -> np.ndarray:
    """(B, C, H, W) int64 -> (B, C, OH, OW): the max of each window, padding excluded."""
    t, l, b, r = node.padding
    if any(node.padding):
        x = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=_NEG)
    (kh, kw), (sy, sx) = node.kernel, node.stride
    _, oh, ow = node.shape
    B, C, _, _ = x.shape
    sb, sc, sh, sw = x.strides
    win = np.lib.stride_tricks.as_strided(x, shape=(B, C, oh, ow, kh, kw),
                                          strides=(sb, sc, sh * sy, sw * sx, sh, sw), writeable=False)
    return win.max(axis=(-1, -2))


class MaxPoolUnit:
    """One graded unit's state in the pipelined schedule. ``step(t, msg) -> out`` with ``msg`` the
    source's message this step (B, *in_shape) and ``out`` (B, *shape) what the unit sends."""

    def __init__(self, node: GradedMaxPool, net: Network, batch: int):
        self.node, self.coding = node, net.coding
        self.edge = graded_edge(net, node)
        self.source_graded = is_graded(net.node(self.edge.source))
        self.S = np.zeros((batch,) + node.in_shape, np.int64)     # running value per source element
        self.prev = window_max(self.S, node)                        # maxwin of the previous step
        self.max_abs = 0

    def increment(self, t: int, msg: np.ndarray) -> np.ndarray:  # pragma: no cover - per coding
        raise NotImplementedError

    def step(self, t: int, msg: np.ndarray) -> np.ndarray:
        msg = np.asarray(msg, np.int64).reshape((-1,) + self.node.in_shape)
        self._check(t, msg)
        self.S = self.S + self.increment(t, msg)
        cur = window_max(self.S, self.node)
        out = cur - self.prev
        self.prev = cur
        self.max_abs = max(self.max_abs, int(np.abs(self.S).max(initial=0)))
        return out

    def limit(self, t: int) -> int:
        """Largest |source message| at step t: ``max_message`` (a graded source in differential coding
        sends d with |d| <= max_message * R_t)."""
        return self.node.max_message

    def _check(self, t: int, msg: np.ndarray) -> None:
        """Messages beyond the declared ``max_message`` would void the state bound: refuse them."""
        lim = self.limit(t)
        if np.abs(msg).max(initial=0) > lim:
            raise ValueError(f"graded max-pool unit '{self.node.name}': a source message of "
                             f"{int(np.abs(msg).max())} exceeds its max_message bound {lim} at step {t}")

    @property
    def state(self) -> np.ndarray:
        return self.S

    def step_from(self, t: int, msg: dict[str, np.ndarray]) -> np.ndarray:
        """One step, reading this step's messages of every node (``msg``): its source's, element by element."""
        return self.step(t, msg[self.edge.source])

    @property
    def updates_per_step(self) -> int:
        """Running values updated per sample and step: one per source element."""
        return int(np.prod(self.node.in_shape))


class GradedMaxRate(MaxPoolUnit):
    """Rate coding: S sums the source's messages; sum_t out_t = maxwin(S_T) exactly."""

    def increment(self, t, msg):
        return msg


class GradedMaxDifferential(MaxPoolUnit):
    """Differential coding: m sums msg * R_t (the source's encoded value, units of 2^-F), or d from a
    graded source (already encoded); sum_t d_t = maxwin(m_T) exactly."""

    def increment(self, t, msg):
        return msg if self.source_graded else msg * self.coding.reciprocal(t)

    def limit(self, t):
        return self.node.max_message * (self.coding.reciprocal(t) if self.source_graded else 1)


class FunctionUnit:
    """A transformer unit (``snnc.ir.graded``): per step, the currents of its incoming projections by
    port -- ``spiking`` from the input and populations, ``encoded`` from other graded units in
    differential coding (added without R_t) -- into ``snnc.ir.graded.UnitDynamics``."""

    def __init__(self, node, net: Network, batch: int):
        self.node = node
        self.differential = isinstance(net.coding, DifferentialCoding)
        self.inputs = [(p, node.port_of(p.name), is_graded(net.node(p.source))) for p in net.incoming(node.name)]
        self.dyn = UnitDynamics(node, batch, net.coding)

    def step_from(self, t: int, msg: dict[str, np.ndarray]) -> np.ndarray:
        spiking: dict[str, np.ndarray] = {}
        encoded: dict[str, np.ndarray] = {}
        for p, port, graded in self.inputs:
            m = msg[p.source]
            if not np.any(m):       # P(0) = 0: nothing to add (the input after step 1 in differential coding)
                continue
            into = encoded if (graded and self.differential) else spiking
            into[port] = into.get(port, 0) + apply_projection(p, m)
        return self.dyn.step(t, spiking, encoded)

    @property
    def max_abs(self) -> int:
        return self.dyn.max_abs

    @property
    def state(self) -> np.ndarray:
        return self.dyn.state

    @property
    def updates_per_step(self) -> int:
        """Running values updated per sample and step: one per element of each port."""
        return int(sum(np.prod(self.node.port_shape(p)) for p in self.node.PORTS))


UNITS: dict[tuple[type, type], type] = {
    (GradedMaxPool, RateCoding): GradedMaxRate,
    (GradedMaxPool, DifferentialCoding): GradedMaxDifferential,
    **{(cls, coding): FunctionUnit for cls in (GradedElementwise, GradedLayerNorm, GradedSoftmax, GradedMatMul)
       for coding in (RateCoding, DifferentialCoding)},
}


def graded_unit(node: Node, net: Network, batch: int):
    cls = UNITS.get((type(node), type(net.coding)))
    if cls is None:
        supported = ", ".join(f"{n.__name__} with {c.__name__}" for n, c in UNITS)
        raise UnsupportedNetworkError(f"graded unit '{node.name}': {type(node).__name__} with "
                                  f"{type(net.coding).__name__} is not supported (supported: {supported})")
    return cls(node, net, batch)


def check_graded(net: Network, layerwise: bool) -> None:
    """Fail before any work: every graded unit is wired correctly and runs in this schedule."""
    for node in net.ordered_nodes():
        if not is_graded(node):
            continue
        if layerwise:
            raise UnsupportedNetworkError(
                f"{unit_label(node)} '{node.name}': graded units run only in the pipelined schedule (the "
                "layerwise schedule's constant-current theorem is for IF and dual-threshold neurons)")
        graded_unit(node, net, 1)


# ---- consumers of a graded unit's differential messages ---------------------------------------------
def _mt_differential(st: MTDifferentialStepper, enc: np.ndarray) -> None:
    st.R = st.R + enc          # R is the encoded input r_in (units of 2^-F); step() then adds I_t * R_t


ENCODED_INPUT: dict[type, object] = {MTDifferentialStepper: _mt_differential}


def add_encoded(st: Stepper, enc, name: str) -> None:
    """Add an already-encoded input (a graded unit's differential message through a projection) to a
    population's encoded state before its step; refuse a stepper that has no encoded state."""
    fn = ENCODED_INPUT.get(type(st))
    if fn is None:
        raise UnsupportedNetworkError(f"population '{name}': {type(st).__name__} cannot read a graded unit's "
                                  "differential messages (it has no encoded input state)")
    fn(st, enc)

