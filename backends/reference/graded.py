"""Graded units in the reference simulator (docs/ir.md, "Graded max-pool unit").

A graded unit is a non-spiking nonlinear layer: it keeps one running value per element of its one
source and sends, per step, the increment of a function of those values (here: the window maxima).

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
from snnc.ir import (GRADED_UNITS, DifferentialCoding, GradedMaxPool, Network, Node, RateCoding,
                     graded_edge)

from .neurons import MTDifferentialStepper, Stepper

_NEG = np.iinfo(np.int64).min // 4   # padding: never the max (every window holds a real element)


def is_graded(node: Node) -> bool:
    return isinstance(node, GRADED_UNITS)


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


class GradedUnit:
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


class GradedMaxRate(GradedUnit):
    """Rate coding: S sums the source's messages; sum_t out_t = maxwin(S_T) exactly."""

    def increment(self, t, msg):
        return msg


class GradedMaxDifferential(GradedUnit):
    """Differential coding: m sums msg * R_t (the source's encoded value, units of 2^-F), or d from a
    graded source (already encoded); sum_t d_t = maxwin(m_T) exactly."""

    def increment(self, t, msg):
        return msg if self.source_graded else msg * self.coding.reciprocal(t)

    def limit(self, t):
        return self.node.max_message * (self.coding.reciprocal(t) if self.source_graded else 1)


UNITS: dict[tuple[type, type], type[GradedUnit]] = {
    (GradedMaxPool, RateCoding): GradedMaxRate,
    (GradedMaxPool, DifferentialCoding): GradedMaxDifferential,
}


def graded_unit(node: Node, net: Network, batch: int) -> GradedUnit:
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
                f"graded max-pool unit '{node.name}': graded units run only in the pipelined schedule (the "
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

