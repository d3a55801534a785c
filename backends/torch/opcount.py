"""Operation counts (``count_ops``), the reference's ``NodeOps`` per node and step, from whole chunks.

events[t]: non-zero messages a node sent at step t (over the batch); sops_out[t]: those events times
the non-zero synapses each reaches (``fanout``, conv borders counted); sops_in[t]: what its sources'
events delivered; updates: state updates over the run. All int64, exact.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.base import NodeOps
from snnc.ir import Input, Network, fanout

from .graded import is_graded


class OpCounter:
    def __init__(self, net: Network, batch: int, device, pipelined: bool):
        T = net.timesteps
        mixed = net.mixed_steps
        K = max([T, *mixed.values()])
        self.out = {n.name: [(p.target, torch.as_tensor(fanout(p).reshape(-1), dtype=torch.int64).to(device))
                             for p in net.outgoing(n.name)] for n in net.nodes}
        self.ops = {n.name: NodeOps(np.zeros(K, np.int64), np.zeros(K, np.int64), np.zeros(K, np.int64), 0)
                    for n in net.nodes}
        for n in net.nodes:
            if isinstance(n, Input):
                continue
            if pipelined and is_graded(n):   # one update per source element (its running value) per step
                self.ops[n.name].updates = T * batch * int(np.prod(n.in_shape))
            else:
                self.ops[n.name].updates = mixed.get(n.name, T) * batch * n.size

    def add(self, name: str, t0: int, msgs: torch.Tensor) -> None:
        """``msgs``: (K, B, *shape) messages of steps t0 .. t0+K-1; non-zero ones are events."""
        K = msgs.shape[0]
        ev = (msgs != 0).reshape(K, msgs.shape[1], -1).sum(dim=1, dtype=torch.int64)   # (K, size)
        self._record(name, t0, ev)

    def add_constant(self, name: str, steps: int, values: torch.Tensor) -> None:
        """An input presented ``steps`` times (steps 0..steps-1): the same events every step."""
        ev = (values != 0).reshape(values.shape[0], -1).sum(dim=0, dtype=torch.int64)
        self._record(name, 0, ev.unsqueeze(0).expand(steps, -1))

    def _record(self, name: str, t0: int, ev: torch.Tensor) -> None:
        K = ev.shape[0]
        ops = self.ops[name]
        ops.events[t0:t0 + K] += ev.sum(dim=1).cpu().numpy()
        for target, fan in self.out[name]:
            n = (ev * fan).sum(dim=1).cpu().numpy()
            ops.sops_out[t0:t0 + K] += n
            self.ops[target].sops_in[t0:t0 + K] += n
