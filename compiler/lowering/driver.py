"""The one lowering driver: a float graph -> a ``LoweredGraph`` (the network in real arithmetic).

The front chosen by the conversion checks the graph and decides T and L; the driver builds the input
node, then walks the ops in graph order and hands every op whose type the front registers to its
layer lowering (``Front.layers``); the linear ops between them become those layers' projections
(``affine.Expressions``). Refusals are collected and reported all at once, with the readout's.
"""

from __future__ import annotations

import logging

from snnc.ir import Input

from ..frontend.float_graph import FGraph
from ..metadata import Conversion
from .affine import Source
from .endpoints import input_node, linear_ops, readout_layer
from .front import LoweringOptions, LoweringState
from .plan import LoweredGraph, ReadoutPlan
from .registry import front_for

log = logging.getLogger(__name__)


def lower_graph(g: FGraph, conversion: Conversion, options: LoweringOptions) -> LoweredGraph:
    """Float graph (after the passes) -> the network in real arithmetic, ready for the integerizer.

    ``options.timesteps`` None gives T = L (quantized). Any other T keeps the T = L parameters (the
    SNN's levels become theta/T; docs/conversion.md, "T != L"). Raises ConversionError naming every
    layer that cannot be lowered."""
    front = front_for(conversion)
    setup = front.prepare(g, options)
    inp = input_node(g, options.input_range, options.input_bits)
    exprs = front.expressions(g)
    exprs.sources[g.input_name] = Source(inp.name, tuple(g.input_shape), inp.scale / setup.input_levels, inp.scale,
                                         kind=Input, max_message=max(abs(inp.qmin), abs(inp.qmax)))
    state = LoweringState(g, options, setup, exprs)
    for op in g.ops:
        lower_layer = front.layer_for(op)
        if lower_layer is not None:
            lower_layer(op, state)
    e, maps, layer = readout_layer(exprs, g, state.problems)
    linears = linear_ops(maps)
    joined = front.readout_lists_joins and (len(maps) > 1 or len(linears) > 1)
    origin = state.origin(linears, None, onnx_linears=linears if joined else None,
                          sources=[m.source for m in maps] if joined else None)
    readout = ReadoutPlan(layer, front.readout_levels(setup), origin)
    log.info("lowered %d nonlinear layers (%s): T=%d, L=%s", len(state.items), conversion.value, setup.timesteps,
             setup.levels)
    return LoweredGraph(conversion, inp, state.items, readout, setup.timesteps, setup.levels, setup.mixed_levels)
