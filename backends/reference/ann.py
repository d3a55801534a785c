"""The integer ANN a compiled network defines (docs/ir.md, "the integer ANN").

For a number of steps tau (default: the network's T):

    X_l = sum_s P_s(M_s) + tau*B_l,   M_l = clip(floor((X_l + V0_l) / Theta_l), 0, tau)

evaluated level by level with exact integer arithmetic; the input counts tau*x_int.

* tau = T: the integer network the layerwise SNN equals neuron for neuron, for any T
  (docs/ir.md, theorem) and for every neuron model (a dual-threshold neuron never fires a
  negative spike under a constant current).
* tau = L: the quantized ANN itself (levels 0..L), the reference a T != L network's firing rates
  are compared with (a = lambda*M/L against lambda*N/T).
* mixed levels (populations with their own ``timesteps`` tau_p = their L): each population uses
  its tau_p (bias tau_p*B, clip at tau_p), the input counts T*x_int; that is the quantized ANN and
  the network the layerwise SNN equals at once (only tau = T is defined for such a network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import GradedMaxPool, Input, Network, Population, Readout, apply_projection, as_int_inputs, per_channel

from .graded import is_graded, window_max


@dataclass
class IntegerANNResult:
    levels: dict[str, np.ndarray]      # population -> (B, *shape) int64 levels M; inputs: tau*x_int
    readout: dict[str, np.ndarray]     # readout -> (B, *shape) int64 Y (see run_integer_ann)
    preactivation: dict[str, np.ndarray]  # population -> X_l + V0_l (int64), for diagnostics
    timesteps: int = 0                 # tau

    def predictions(self, readout: str | None = None) -> np.ndarray:
        name = readout or next(iter(self.readout))
        r = self.readout[name]
        return r.reshape(r.shape[0], -1).argmax(axis=1)


def run_integer_ann(net: Network, x, quantized: bool = False, timesteps: int | None = None) -> IntegerANNResult:
    """Evaluate the integer ANN over ``timesteps`` = tau steps (default: the network's T).

    Readout: with tau = T, Y = R0 + sum P(M) + T*B, the value the SNN's readout ends with. The
    compiler scales the readout offset R0 with T (R0 = round(b*S*T/L)), so for tau != T the
    readout returned is T*(sum P(M) + tau*B) + tau*R0: the value with R0 rescaled to tau, times T
    to stay an integer. Only its argmax (predictions) is meant to be compared.
    """
    T = net.timesteps
    tau = T if timesteps is None else int(timesteps)
    if tau < 1:
        raise ValueError(f"timesteps must be >= 1, got {tau}")
    mixed = net.mixed_steps
    if mixed and tau != T:
        raise ValueError(f"a network with mixed levels (per-population steps {mixed}) defines its integer ANN at "
                         f"tau = T = {T} only (each population at its own L), not tau = {tau}")
    x_int = as_int_inputs(net, x, quantized)
    levels, readout, pre = {}, {}, {}
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            levels[node.name] = tau * x_int[node.name]
            continue
        if isinstance(node, GradedMaxPool):  # graded max-pool unit: the max over each window of its source's levels
            levels[node.name] = window_max(levels[net.incoming(node.name)[0].source], node)
            continue
        if is_graded(node):
            raise UnsupportedNetworkError(
                f"graded unit '{node.name}' ({type(node).__name__}): the integer ANN of levels is defined for "
                "quantized networks; a transformer converted training-free is compared with its float model "
                "(snnc verify --against ann measures it)")
        tau_p = mixed.get(node.name, tau)
        acc = tau_p * per_channel(node.bias, node.shape)
        for p in net.incoming(node.name):
            acc = acc + apply_projection(p, levels[p.source])
        v0 = per_channel(node.v0, node.shape)
        if isinstance(node, Readout):
            y = acc + v0 if tau == T else T * acc + tau * v0
            readout[node.name] = np.asarray(y, dtype=np.int64)
            continue
        if not isinstance(node, Population):  # pragma: no cover - the IR has no other node kinds
            raise TypeError(f"node '{node.name}': {type(node).__name__}")
        acc = acc + v0
        pre[node.name] = acc
        levels[node.name] = np.clip(np.floor_divide(acc, per_channel(node.threshold, node.shape)), 0, tau_p)
    return IntegerANNResult(levels, readout, pre, tau)
