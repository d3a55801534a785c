"""Exactness of a network's graded units (the transformer's LayerNorm, softmax, GELU / SiLU and two-input
MatMul units): every message a unit sent in the reference simulator, recomputed from the messages its
sources sent with the IR's equations (``snnc.ir.graded``: the ports' running values, then the unit's
integer function; docs/ir.md, "Graded units"). Equal, integer for integer, or the unit is named.

It is what can be exact in a training-free transformer: its multi-threshold populations approximate
the float model (measured by ``verify_float``), its units compute exactly what the IR defines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.backends.reference import simulate
from snnc.ir import DifferentialCoding, GradedFunctionUnit, Network, Schedule, apply_projection
from snnc.ir.graded import reciprocal, round_shift, unit_output


@dataclass
class UnitCheck:
    units: int
    messages_compared: int
    mismatched: dict[str, int] = field(default_factory=dict)   # unit -> messages that differ

    @property
    def exact(self) -> bool:
        return self.units > 0 and not self.mismatched


def _offset(u: GradedFunctionUnit, port: str) -> np.ndarray:
    off, shape = np.asarray(u.port_offset(port), np.int64), u.port_shape(port)
    if off.ndim == 1 and len(shape) > 1 and off.shape != tuple(shape):
        off = off.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(off, shape)


def check_units(net: Network, x: np.ndarray, state_bits: int | None = None) -> UnitCheck:
    """Replay every graded unit of ``net`` on inputs ``x`` (module docstring)."""
    units = [n for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    if not units:
        return UnitCheck(0, 0)
    res = simulate(net, x, Schedule.PIPELINED, record=True, state_bits=state_bits)
    diff = isinstance(net.coding, DifferentialCoding)
    x_int = {n.name: n.quantize(x) for n in net.inputs}

    def sent(name: str, t: int) -> np.ndarray:
        if name in x_int:
            return x_int[name] if (t == 1 or not diff) else np.zeros_like(x_int[name])
        return np.asarray(res.spikes[name][t - 1], np.int64)

    out = UnitCheck(len(units), 0)
    for u in units:
        G = u.frac_bits
        m = {p: np.zeros((len(x),) + tuple(u.port_shape(p)), np.int64) for p in u.PORTS}
        off = {p: _offset(u, p) for p in u.PORTS}
        prev = 0
        bad = 0
        for t in range(1, net.timesteps + 1):
            for p in net.incoming(u.name):
                cur = apply_projection(p, sent(p.source, t)).reshape(m[u.port_of(p.name)].shape)
                spiking = not isinstance(net.node(p.source), GradedFunctionUnit)
                m[u.port_of(p.name)] += cur * reciprocal(t, G) if (diff and spiking) else cur
            if diff:
                y = unit_output(u, {p: m[p] + off[p] for p in u.PORTS})
            else:
                y = round_shift(t * unit_output(u, {p: m[p] * reciprocal(t, G) + off[p] for p in u.PORTS}), G)
            got = np.asarray(res.spikes[u.name][t - 1], np.int64)
            bad += int(np.count_nonzero(got != y - prev))
            out.messages_compared += got.size
            prev = y
        if bad:
            out.mismatched[u.name] = bad
    return out

