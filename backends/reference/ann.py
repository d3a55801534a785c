"""The integer ANN a compiled network defines (docs/ir.md, "the quantized ANN the network equals").

    X_l = sum_s P_s(M_s) + T*B_l,   M_l = clip(floor((X_l + V0_l) / Theta_l), 0, L_l)

evaluated level by level with exact integer arithmetic. It is the yardstick the layerwise SNN
must equal neuron for neuron.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import Input, Network, Population, Readout

from .ops import apply_projection, per_channel
from .simulator import as_int_inputs


@dataclass
class IntegerANNResult:
    levels: dict[str, np.ndarray]      # population -> (B, *shape) int64 levels M; inputs: T*x_int
    readout: dict[str, np.ndarray]     # readout -> (B, *shape) int64 Y
    preactivation: dict[str, np.ndarray]  # population -> X_l + V0_l (int64), for diagnostics

    def predictions(self, readout: str | None = None) -> np.ndarray:
        name = readout or next(iter(self.readout))
        r = self.readout[name]
        return r.reshape(r.shape[0], -1).argmax(axis=1)


def run_integer_ann(net: Network, x, quantized: bool = False, clip_to: int | None = None) -> IntegerANNResult:
    """Evaluate the integer ANN. ``clip_to`` overrides the clip bound (default: each layer's L)."""
    T = net.timesteps
    x_int = as_int_inputs(net, x, quantized)
    levels, readout, pre = {}, {}, {}
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            levels[node.name] = T * x_int[node.name]
            continue
        acc = T * per_channel(node.bias, node.shape) + per_channel(node.v0, node.shape)
        for p in net.incoming(node.name):
            acc = acc + apply_projection(p, levels[p.source])
        if isinstance(node, Readout):
            readout[node.name] = np.asarray(acc, dtype=np.int64)
            continue
        assert isinstance(node, Population)
        hi = node.levels if clip_to is None else clip_to
        pre[node.name] = acc
        levels[node.name] = np.clip(np.floor_divide(acc, per_channel(node.threshold, node.shape)), 0, hi)
    return IntegerANNResult(levels, readout, pre)
