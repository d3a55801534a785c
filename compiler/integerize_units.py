"""The integers of a transformer graded unit (``lowering.transformer.GradedPlan``) for the coding's G.

A port's scale s (one unit of its running value m is worth s 2^-G) is a power of two: the coarsest
with every incoming weight |w| / s within the target's weight mantissa (exponent 0), times 2^k. The
projections carry W = round(w / s), the port starts at offset = round(b 2^G / s) (paper 004 Theorem
4.5: a bias is an initial value). The unit's tables and constants follow (``graded_params.py``): an
elementwise table over the port's *provable* range (``analysis.unit_bounds.port_ranges``), LayerNorm's
constants, softmax's exp table with out_one = 2^G, a MatMul's shift with its output scale exactly 1
(s_a s_b 2^(shift - G) = 1). Every unit's output scale is 1 (``lowering.transformer.UNIT_OUT_SCALE``).
If any intermediate could reach 2^62 (the units' int64 arithmetic), k grows (coarser ports) and the
unit is built again; the first k that fits wins.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from snnc.ir import (Coding, DifferentialCoding, GradedElementwise, GradedLayerNorm, GradedMatMul, GradedSoftmax,
                     Node)

from .analysis.bounds import bound_node
from .analysis.envelopes import BoundInput
from .analysis.unit_bounds import port_ranges
from .errors import StateOverflowError
from .graded_params import EXP_BITS, UnitParameterError, elementwise_table, exp_table, half_up, layernorm_constants
from .lowering.plan import FixedNodes
from .lowering.transformer import UNIT_OUT_SCALE, GradedPlan, PortPlan
from .targets import NumericFormat

log = logging.getLogger(__name__)

#: the fractional bits of a unit in rate coding (differential coding: the network's F)
RATE_FRAC_BITS = 12
#: how many times a unit's ports may be made coarser (x2) before it is refused
MAX_COARSEN = 40


def unit_frac_bits(coding: Coding) -> int:
    return coding.frac_bits if isinstance(coding, DifferentialCoding) else RATE_FRAC_BITS


def port_exponent(port: PortPlan, fmt: NumericFormat) -> int:
    """log2 of the finest power-of-two port scale with every |w| / scale <= the weight mantissa."""
    wmax = max(float(np.abs(w).max(initial=0.0)) for w in port.weights)
    if wmax <= 0:
        return 0
    return math.ceil(math.log2(wmax / fmt.weight_max))


def _port_integers(port: PortPlan, scale: float, G: int, fmt: NumericFormat):
    projs = []
    for w, mk in zip(port.weights, port.make):
        wi = np.clip(half_up(w / scale), fmt.weight_min, fmt.weight_max).astype(np.int64)
        projs.append(mk(wi, 0))
    offset = half_up(port.bias * 2.0**G / scale)
    if offset.size and np.all(offset == offset.reshape(-1)[0]):
        offset = np.asarray(offset.reshape(-1)[0])
    return projs, offset


def _build(plan: GradedPlan, scales: dict[str, float], offsets: dict[str, np.ndarray], G: int, projs, sources,
           T: int, coding: Coding) -> Node:
    spec, name, shape = plan.spec, plan.name, plan.shape
    if spec.kind is GradedLayerNorm:
        c = layernorm_constants(spec.gamma, spec.beta, spec.eps, scales["a"], UNIT_OUT_SCALE, G)
        return GradedLayerNorm(name, shape, axis=spec.axis, gamma=c.gamma, beta=c.beta, eps=c.eps,
                               norm_bits=c.norm_bits, sqrt_bits=c.sqrt_bits, offset=offsets["a"], frac_bits=G,
                               in_scale=scales["a"], out_scale=UNIT_OUT_SCALE)
    if spec.kind is GradedSoftmax:
        et = exp_table(scales["a"], G)
        return GradedSoftmax(name, shape, axis=spec.axis, table=et.table, lo=et.lo, shift=et.shift,
                             exp_bits=EXP_BITS, out_one=1 << G, offset=offsets["a"], frac_bits=G,
                             in_scale=scales["a"], out_scale=UNIT_OUT_SCALE)
    if spec.kind is GradedElementwise:   # the table covers the port's provable range
        probe = GradedElementwise(name, shape, function=spec.function, table=np.array([0, 0]), offset=offsets["a"],
                                  frac_bits=G, in_scale=scales["a"], out_scale=UNIT_OUT_SCALE)
        lo, hi = port_ranges(BoundInput(probe, projs, sources, {}, T, coding))["a"]
        et = elementwise_table(spec.function, scales["a"], UNIT_OUT_SCALE, G, int(lo.min()), int(hi.max()))
        return GradedElementwise(name, shape, function=spec.function, table=et.table, lo=et.lo, shift=et.shift,
                                 offset=offsets["a"], frac_bits=G, in_scale=scales["a"], out_scale=UNIT_OUT_SCALE)
    if spec.kind is GradedMatMul:
        shift = G - round(math.log2(scales["a"] * scales["b"]))
        if shift < 0:
            raise UnitParameterError(f"MatMul port scales {scales} are too coarse for an output scale of 1")
        a_inputs = tuple(p.name for p in projs if p.name.endswith(".a"))
        return GradedMatMul(name, shape, a_shape=plan.ports[0].shape, b_shape=plan.ports[1].shape,
                            a_view=spec.a_view, b_view=spec.b_view, a_index=spec.a_index, b_index=spec.b_index,
                            out_index=spec.out_index, a_inputs=a_inputs, shift=shift, a_offset=offsets["a"],
                            b_offset=offsets["b"], frac_bits=G, a_scale=scales["a"], b_scale=scales["b"],
                            out_scale=UNIT_OUT_SCALE)
    raise TypeError(f"unit '{name}': no integerizer for {spec.kind.__name__}")


def integerize_unit(plan: GradedPlan, fmt: NumericFormat, coding: Coding, T: int, sources: dict[str, Node],
                    envelopes: dict) -> tuple[FixedNodes, dict]:
    """(the unit and its projections, its envelope): the finest port scales whose intermediates all
    stay below 2^62 (module docstring); StateOverflowError naming the unit when none does."""
    G = unit_frac_bits(coding)
    base = {p.port: port_exponent(p, fmt) for p in plan.ports}
    last = None
    for k in range(MAX_COARSEN + 1):
        scales = {p.port: 2.0 ** (base[p.port] + k) for p in plan.ports}
        projs, offsets = [], {}
        for p in plan.ports:
            pr, off = _port_integers(p, scales[p.port], G, fmt)
            projs += pr
            offsets[p.port] = off
        try:
            unit = _build(plan, scales, offsets, G, projs, sources, T, coding)
            _, env = bound_node(unit, projs, sources, T, coding, envelopes)
        except (StateOverflowError, UnitParameterError) as err:
            last = err
            continue
        if k:
            log.info("graded unit '%s': ports %d times coarser than the weights allow (int64 intermediates)", plan.name,
                     2**k)
        return FixedNodes([unit], projs, [plan.record]), env
    raise StateOverflowError(f"graded unit '{plan.name}' ({plan.spec.kind.__name__}): no port scale keeps its "
                             f"integer function within int64 ({last}); use fewer fractional bits (--frac-bits) or "
                             "fewer timesteps")
