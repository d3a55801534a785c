"""Graded units: non-spiking nonlinear layers of the training-free front (paper 004 Theorem 4.2).

A MaxPool reading a ReLU population (Conv -> ReLU -> MaxPool) becomes a ``GradedMaxPool`` unit and
its SumPool2d edge (docs/ir.md, "Graded max-pool unit"); the pool's output becomes a source with the
input's scale (per channel: max commutes with a positive per-channel scale). A MaxPool elsewhere (the
network input, a value between linear layers) is refused naming the node. A new graded unit kind
(docs/architecture.md, "How to add a nonlinear layer kind") adds a function like this one and an
entry in its front's ``layers``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from snnc.ir import GradedMaxPool, IRValidationError, Population, SumPool2d, conv_output_size

from ..frontend.float_graph import MaxPool
from ..metadata import LayerRecord
from .affine import RefusedUpstream, Refusal
from .front import LoweringState
from .plan import FixedNodes


def lower_graded_maxpool(op: MaxPool, state: LoweringState) -> None:
    """A ReLU's max pool -> a graded unit (Theorem 4.2), else a named refusal."""
    exprs = state.exprs
    src = exprs.sources.get(op.input)
    try:
        if src is not None and src.refused:
            raise RefusedUpstream()  # its source could not be lowered (reported there)
        if src is None or src.kind not in (Population, GradedMaxPool):
            where = "the network input" if src is not None else "a value between linear layers"
            raise Refusal(
                f"MaxPool node '{op.name}' pools '{op.input}', {where}: the training-free path max-pools only a "
                "ReLU's output (a graded unit over the ReLU population's messages) — retrain with AveragePool, "
                "or put the MaxPool right after a ReLU")
        if len(src.shape) != 3 or src.flat:
            raise Refusal(f"MaxPool node '{op.name}' pools a tensor of shape {src.shape}; graded max pooling "
                          "needs a (C, H, W) feature map")
        if tuple(op.dilation) != (1, 1):
            raise Refusal(f"MaxPool node '{op.name}': dilations {tuple(op.dilation)} are not supported by the "
                          "graded max-pool unit (windows are dense)")
        C, H, W = src.shape
        kernel = tuple(op.kernel) if tuple(op.kernel) != (0, 0) else (H, W)   # (0, 0): GlobalMaxPool
        stride = tuple(op.stride) if tuple(op.kernel) != (0, 0) else (H, W)
        pads = tuple(op.pads) if tuple(op.kernel) != (0, 0) else (0, 0, 0, 0)
        oh = conv_output_size(H, kernel[0], stride[0], pads[0], pads[2])
        ow = conv_output_size(W, kernel[1], stride[1], pads[1], pads[3])
        if oh < 1 or ow < 1:
            raise Refusal(f"MaxPool node '{op.name}': window larger than its input")
        name = state.fresh("gmaxpool")
        try:
            unit = GradedMaxPool(name, (C, oh, ow), in_shape=(C, H, W), kernel=kernel, stride=stride, padding=pads,
                                 max_message=src.max_message)
        except IRValidationError as err:
            raise Refusal(f"MaxPool node '{op.name}': {err}") from None
        edge = SumPool2d(f"{src.node}->{name}", src.node, name, np.array(1), 0, unit.in_shape, unit.shape,
                         kernel=unit.kernel, stride=unit.stride, padding=unit.padding)
    except Refusal as err:
        state.refuse(op.name, err)
        return
    origin = state.origin([op.name], None)
    record = LayerRecord(name, op.name, None, None, None, src.lam, 0, list(unit.shape), ann_macs=origin.ann_macs,
                         sources=[src.node], role="graded max-pool unit")
    state.items.append(FixedNodes([unit], [edge], [record]))
    exprs.sources[op.name] = replace(src, node=name, shape=unit.shape, flat=False, kind=GradedMaxPool,
                                     max_message=unit.max_message)
