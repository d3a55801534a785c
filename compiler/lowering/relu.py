"""The training-free front: a plain float ReLU network -> multi-threshold populations (paper 004;
docs/training_free.md).

Every ReLU becomes a population of multi-threshold neurons with a calibrated threshold (per layer or
per channel); a max pool of a ReLU becomes a graded max-pool unit (``graded.py``, Theorem 4.2). A
message is worth theta_s / 2^(n-1) of its source, so a target population sees w' = W gamma_s / theta_t
per step (in units of its own threshold).
"""

from __future__ import annotations

import numpy as np

from snnc.ir import MultiThreshold

from ..errors import ConversionError
from ..frontend.float_graph import Clamp, FGraph, MaxPool, QuantAct, Relu, Rounding
from ..metadata import Conversion
from .affine import Refusal, Source, explain
from .endpoints import channel_bias, check_finite, linear_ops, main_kind
from .front import Front, FrontSetup, LoweringOptions, LoweringState
from .graded import lower_graded_maxpool
from .plan import MultiThresholdPopulation, RealLayer
from .tokens import TokenExpressions, spiking_points
from .transformer import TRANSFORMER_LAYERS, has_transformer_ops


def prepare(g: FGraph, options: LoweringOptions) -> FrontSetup:
    """Refuse what is not a plain ReLU net converted with multi-threshold neurons and calibrated
    thresholds at a given T (a ReLU has no quantization levels to take T from)."""
    if not isinstance(options.neuron, MultiThreshold):
        raise ConversionError(
            f"plain ReLU networks are converted with multi-threshold neurons (--neuron multi-threshold:N), "
            f"not {type(options.neuron).__name__}")
    bad = [explain(o) for o in g.ops if isinstance(o, (QuantAct, Clamp, Rounding))]
    if bad:
        raise ConversionError("a network converted from calibration data must have plain ReLUs only:\n"
                              + "\n".join(f"  - {p}" for p in bad))
    relus = [o for o in g.ops if isinstance(o, Relu)]
    points = list(spiking_points(g)) if has_transformer_ops(g) else []
    if not relus and not points:
        raise ConversionError("the model has no ReLU: nothing to turn into spiking neurons")
    thresholds = options.relu_thresholds or {}
    missing = [r.name for r in relus if r.name not in thresholds] + [p for p in points if p not in thresholds]
    if missing:
        raise ConversionError(f"no calibrated threshold for ReLU / transformer node(s) {missing}")
    if options.timesteps is None:
        raise ConversionError("a plain ReLU network has no quantization levels L to take T from: give --timesteps")
    return FrontSetup(timesteps=int(options.timesteps), levels=None, mixed_levels={}, input_levels=1)


def _out_axis(theta: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per-output-channel thresholds shaped to divide a weight in the IR layout (axis 0 = output)."""
    return theta if theta.ndim == 0 else theta.reshape((-1,) + (1,) * (w.ndim - 1))


def lower_relu(op: Relu, state: LoweringState) -> None:
    """A ReLU -> a population of multi-threshold neurons with base threshold theta from calibration."""
    exprs, neuron = state.exprs, state.options.neuron
    theta = np.asarray(state.options.relu_thresholds[op.name], np.float64)
    try:
        if theta.size == 0 or not np.all(np.isfinite(theta) & (theta > 0)):
            raise Refusal(f"ReLU '{op.name}': calibrated threshold(s) {theta} not all positive numbers")
        e = exprs.expr(op.input)
        if theta.ndim and theta.size != e.shape[0]:
            raise Refusal(f"ReLU '{op.name}': {theta.size} calibrated thresholds for {e.shape[0]} channels")
        exprs.check_usable(e)
        name = state.fresh(main_kind(e.terms))
        b = channel_bias(e, f"before ReLU '{op.name}'")
        per_channel = theta.ndim == 1 and not np.all(theta == theta[0])
        if not per_channel:
            theta = np.asarray(theta.reshape(-1)[0])
        maps = exprs.projections(e, name, per_channel=per_channel)
        ws = [exprs.sources[m.term.source].gamma * m.weight / _out_axis(theta, m.weight) for m in maps]
        check_finite(name, op.name, ws, b / theta)
    except Refusal as err:
        state.refuse(op.name, err)
        return
    linears = linear_ops(maps)
    origin = state.origin(linears, op.name, onnx_linears=linears if len(linears) > 1 else None)
    layer = RealLayer(name, tuple(e.shape), ws, [m.make for m in maps], b / theta)
    state.items.append(MultiThresholdPopulation(layer, neuron, theta, per_channel, origin))
    flat = e.flat and len(e.shape) > 1
    if per_channel:  # a message of channel c is worth theta_c / 2^(n-1): carried by the ident terms
        exprs.sources[op.name] = Source(name, tuple(e.shape), 1.0, float(theta.max()), flat,
                                        channel_scale=theta / neuron.unit_divisor, max_message=neuron.unit_divisor)
    else:
        exprs.sources[op.name] = Source(name, tuple(e.shape), float(theta) / neuron.unit_divisor, float(theta), flat,
                                        max_message=neuron.unit_divisor)


TRAINING_FREE_FRONT = Front(
    conversion=Conversion.TRAINING_FREE,
    prepare=prepare,
    layers={Relu: lower_relu, MaxPool: lower_graded_maxpool, **TRANSFORMER_LAYERS},
    readout_levels=lambda setup: 1,
    readout_lists_joins=False,
    expressions=TokenExpressions,
)
