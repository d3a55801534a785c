"""Graded max-pool units on torch (docs/ir.md, "Graded max-pool unit"), equal to the reference's.

rate coding:          S <- S + msg_t,                     out_t = maxwin(S_t) - maxwin(S_{t-1})
differential coding:  m <- m + msg_t * R_t (or + d_t),    d_t   = maxwin(m_t) - maxwin(m_{t-1})

int64 throughout; the window max pads with a value that is never the max (every window holds a real
element, validated by the IR).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import GRADED_UNITS, DifferentialCoding, GradedMaxPool, Network, Node, RateCoding, graded_edge

from .neurons import MaxTracker

_NEG = -(2**63) // 4


def is_graded(node: Node) -> bool:
    return isinstance(node, GRADED_UNITS)


def window_max(x: torch.Tensor, node: GradedMaxPool) -> torch.Tensor:
    """(B, C, H, W) int64 -> (B, C, OH, OW): the max of each window, padding excluded."""
    t, l, b, r = node.padding
    if any(node.padding):
        x = F.pad(x, (l, r, t, b), value=_NEG)
    (kh, kw), (sy, sx) = node.kernel, node.stride
    return x.unfold(2, kh, sy).unfold(3, kw, sx).amax(dim=(-1, -2))


class GradedUnit:
    """One graded unit's state over the run: ``run(K, msgs, t0)`` reads its source's messages over a
    chunk of K steps (K, B, *in_shape) and returns its own (K, B, *shape), int64."""

    def __init__(self, node: GradedMaxPool, net: Network, batch: int, device):
        self.node, self.coding = node, net.coding
        self.edge = graded_edge(net, node)
        self.source_graded = is_graded(net.node(self.edge.source))
        self.S = torch.zeros((batch,) + tuple(node.in_shape), dtype=torch.int64, device=device)
        self.prev = window_max(self.S, node)
        self.tracker = MaxTracker()

    def increment(self, t: int, msg: torch.Tensor) -> torch.Tensor:  # pragma: no cover - per coding
        raise NotImplementedError

    def limit(self, t: int) -> int:
        return self.node.max_message

    def run(self, K: int, msgs: torch.Tensor, t0: int) -> torch.Tensor:
        msgs = msgs.to(torch.int64).reshape((K, -1) + tuple(self.node.in_shape))
        self._check(t0, msgs)
        out = torch.empty((K, msgs.shape[1]) + tuple(self.node.shape), dtype=torch.int64, device=msgs.device)
        for k in range(K):
            self.S.add_(self.increment(t0 + k + 1, msgs[k]))
            cur = window_max(self.S, self.node)
            torch.sub(cur, self.prev, out=out[k])
            self.prev = cur
            self.tracker.show(self.S)
        return out

    def _check(self, t0: int, msgs: torch.Tensor) -> None:
        """Messages beyond the declared ``max_message`` would void the state bound: refuse them (the
        reference's check and message, at the first step that exceeds)."""
        peaks = msgs.abs().reshape(msgs.shape[0], -1).amax(dim=1).tolist() if msgs.numel() else []
        for k, peak in enumerate(peaks):
            lim = self.limit(t0 + k + 1)
            if peak > lim:
                raise ValueError(f"graded max-pool unit '{self.node.name}': a source message of {int(peak)} "
                                 f"exceeds its max_message bound {lim} at step {t0 + k + 1}")

    @property
    def max_abs(self) -> int:
        return self.tracker.value()

    @property
    def state(self) -> torch.Tensor:
        return self.S


class GradedMaxRate(GradedUnit):
    def increment(self, t, msg):
        return msg


class GradedMaxDifferential(GradedUnit):
    def increment(self, t, msg):
        return msg if self.source_graded else msg * self.coding.reciprocal(t)

    def limit(self, t):
        return self.node.max_message * (self.coding.reciprocal(t) if self.source_graded else 1)


UNITS: dict[tuple[type, type], type[GradedUnit]] = {
    (GradedMaxPool, RateCoding): GradedMaxRate,
    (GradedMaxPool, DifferentialCoding): GradedMaxDifferential,
}


def graded_unit(node: Node, net: Network, batch: int, device) -> GradedUnit:
    cls = UNITS.get((type(node), type(net.coding)))
    if cls is None:
        supported = ", ".join(f"{n.__name__} with {c.__name__}" for n, c in UNITS)
        raise UnsupportedNetworkError(f"graded unit '{node.name}': {type(node).__name__} with "
                                      f"{type(net.coding).__name__} is not supported (supported: {supported})")
    return cls(node, net, batch, device)


def check_graded(net: Network, layerwise: bool) -> None:
    """Fail before any work: every graded unit is wired correctly and runs in this schedule."""
    for node in net.ordered_nodes():
        if not is_graded(node):
            continue
        if layerwise:
            raise UnsupportedNetworkError(
                f"graded max-pool unit '{node.name}': graded units run only in the pipelined schedule (the "
                "layerwise schedule's constant-current theorem is for IF and dual-threshold neurons)")
        graded_unit(node, net, 1, "cpu")
