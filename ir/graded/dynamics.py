"""How a graded unit of this package steps over the T steps, in either coding (docs/ir.md, "Graded
units"): the one definition the reference simulator runs and the Lava processes call.

Each step t = 1..T a port p receives two kinds of current (its incoming projections, summed):
``spiking`` (from the input and from populations: messages x_int or spikes, not yet encoded) and
``encoded`` (from other graded units: their increments, already in the units the port holds).

Differential coding (F = G = the unit's ``frac_bits``, R_t = round(2^G / t)):

    m_p <- m_p + spiking_p * R_t + encoded_p          (m_p(0) = offset_p)
    y_t = F_int(m)                                     (units of 2^-G out_scale)
    d_t = y_t - y_(t-1)                                (y_0 = 0: what it has sent is y_t)

Rate coding (consumers sum messages; a value is what was sent divided by t):

    S_p <- S_p + spiking_p + encoded_p                  (S_p(0) = 0)
    m_p = S_p * R_t + offset_p                          (the mean, in units of 2^-G)
    y_t = F_int(m);   C_t = round(t * y_t / 2^G)        (C_0 = 0)
    out_t = C_t - C_(t-1)                               (what it has sent is C_t = t * F(mean))
"""

from __future__ import annotations

import numpy as np

from ..coding import Coding, DifferentialCoding
from .arith import INT, round_shift
from .functions import unit_output
from .units import GradedFunctionUnit


def reciprocal(t: int, bits: int) -> int:
    """R_t = round(2^bits / t), halves up, in integers (``DifferentialCoding.reciprocal``'s formula)."""
    if t < 1:
        raise ValueError(f"step t must be >= 1, got {t}")
    return ((1 << bits) + t // 2) // t


class UnitDynamics:
    """One unit's state over the T steps of a batch. ``step(t, spiking, encoded) -> message`` with
    dicts port -> current (B, *port shape) (a missing port or 0: nothing arrived)."""

    def __init__(self, node: GradedFunctionUnit, batch: int, coding: Coding):
        self.node = node
        self.differential = isinstance(coding, DifferentialCoding)
        self.G = node.frac_bits
        self.ports = node.PORTS
        self.offset = {p: np.broadcast_to(_channel_first(node.port_offset(p), node.port_shape(p)),
                                          (batch,) + node.port_shape(p)).astype(INT) for p in self.ports}
        self.m = {p: (self.offset[p].copy() if self.differential else np.zeros_like(self.offset[p]))
                  for p in self.ports}
        self.y = np.zeros((batch,) + node.shape, INT)     # y_(t-1) (differential) / C_(t-1) (rate)
        self.max_abs = max(_amax(v) for v in self.m.values())

    def values(self, t: int) -> dict[str, np.ndarray]:
        """The ports' values m the function reads at step t (rate coding: the running means)."""
        if self.differential:
            return self.m
        R = reciprocal(t, self.G)
        return {p: self.m[p] * R + self.offset[p] for p in self.ports}

    def step(self, t: int, spiking: dict, encoded: dict) -> np.ndarray:
        R = reciprocal(t, self.G)
        for p in self.ports:
            s, e = spiking.get(p, 0), encoded.get(p, 0)
            self.m[p] = self.m[p] + (np.asarray(s, INT) * R if self.differential else np.asarray(s, INT)) \
                + np.asarray(e, INT)
        vals = self.values(t)
        y = unit_output(self.node, vals)
        if not self.differential:
            y = round_shift(t * y, self.G)               # C_t = round(t * F(mean) / 2^G)
        out = y - self.y
        self.y = y
        self.max_abs = max(self.max_abs, *(_amax(v) for v in vals.values()), _amax(y))
        return out

    @property
    def state(self) -> np.ndarray:
        """Port a's running value (what ``SimResult.final_v`` reports for a unit)."""
        return self.m["a"]


def _channel_first(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A scalar, per-channel (axis 0) or full offset, broadcastable to ``shape``."""
    arr = np.asarray(arr, INT)
    if arr.ndim == 1 and len(shape) > 1 and arr.shape != tuple(shape):
        return arr.reshape((-1,) + (1,) * (len(shape) - 1))
    return arr


def _amax(a: np.ndarray) -> int:
    return int(np.abs(a).max(initial=0))
