"""The pipelined schedule on torch, layer by layer over chunks of steps (docs/torch_backend.md).

In the pipelined schedule a node's current at step t depends only on its sources' messages at step t,
and the graph is a DAG: so for a chunk of K steps the network runs node by node in topological order,
each projection applied once to the source's whole chunk of messages (K*B samples in one GEMM or
convolution), then the neuron loop over the K steps (elementwise). State carries over from chunk to
chunk; a chunk's messages are freed as soon as their last consumer has read them, so memory is
bounded by the chunk (``chunk_steps``), not by T, unless spikes are recorded.

A rate-coded input sends x_int every step: its current is computed once and added every step.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.base import Keep, SimResult, train_dtype
from snnc.ir import Dense, DifferentialCoding, Input, Network, Population, Schedule

from .graded import graded_unit, is_graded
from .linear import TORCH_DTYPES, TorchProjection, check_reference_limit
from .neurons import MaxTracker, Stepper, per_channel, stepper_class, sum_steps
from .opcount import OpCounter
from .plan import ExactnessPlan

class _Readout:
    """A readout's accumulator: rate coding r += I + B, differential r += I * R_t + enc (docs/ir.md)."""

    def __init__(self, node, batch: int, net: Network, device):
        self.node, self.coding = node, net.coding
        self.diff = isinstance(net.coding, DifferentialCoding)
        scale = net.coding.one if self.diff else 1
        self.acc = (per_channel(node.v0, node.shape, torch.int64, device) * scale).expand(
            (batch,) + tuple(node.shape)).clone()
        self.tracker = MaxTracker()
        self.tracker.show(self.acc)

    def run(self, K: int, cur, const, t0: int, enc) -> None:
        if cur is None:
            cur = torch.zeros((K,) + tuple(self.acc.shape), dtype=torch.int64, device=self.acc.device)
        if self.diff:
            r = torch.tensor([self.coding.reciprocal(t0 + k + 1) for k in range(K)], dtype=torch.int64,
                             device=cur.device).reshape((K,) + (1,) * (cur.ndim - 1))
            add = cur * r
            if enc is not None:
                add = add + enc
        else:
            add = cur if const is None else cur + const
        path = torch.cumsum(add, dim=0) + self.acc
        self.tracker.show(path)
        self.acc = path[-1].clone()


class Pipelined:
    def __init__(self, net: Network, projections: dict[str, TorchProjection], plan: ExactnessPlan,
                 x: dict[str, torch.Tensor], device, record: bool, counter: OpCounter | None, chunk_steps: int,
                 keep: Keep = Keep.ALL):
        """``keep=Keep.READOUTS``: no counts, encoded values or final states are accumulated or converted
        (memory: the states, one chunk of messages and the readouts)."""
        self.keep, self.full = keep, keep is Keep.ALL
        self.net, self.projections, self.plan, self.x = net, projections, plan, x
        self.device, self.record, self.counter = device, record, counter
        self.T = net.timesteps
        self.B = next(iter(x.values())).shape[0]
        self.diff = isinstance(net.coding, DifferentialCoding)
        self.K = max(1, min(int(chunk_steps), self.T))
        self.steppers: dict[str, Stepper] = {}
        self.units = {}
        self.readouts: dict[str, _Readout] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.encoded: dict[str, torch.Tensor] = {}
        self.trains: dict[str, np.ndarray] = {}
        self._input_current: dict[tuple[str, torch.dtype], torch.Tensor] = {}
        for node in net.ordered_nodes():
            shape = (self.B,) + tuple(node.shape)
            if isinstance(node, Input):
                if self.full:
                    self.counts[node.name] = (1 if self.diff else self.T) * x[node.name]
            elif is_graded(node):
                self.units[node.name] = graded_unit(node, net, self.B, device)
                if self.full:
                    self.counts[node.name] = None   # the sum of its messages (its differential encoded value)
                if record:
                    self.trains[node.name] = np.zeros((self.T,) + shape, np.int64)
            elif isinstance(node, Population):
                st = self.plan.states.get(node.name)
                dtype = TORCH_DTYPES[st.arith] if st is not None else torch.int64
                self.steppers[node.name] = stepper_class(node, net.coding)(node, self.B, net.coding, dtype, device)
                if self.full:
                    self.counts[node.name] = None
                if self.diff and self.full:
                    self.encoded[node.name] = torch.zeros(shape, dtype=torch.int64, device=device)
                if record:
                    self.trains[node.name] = np.zeros((self.T,) + shape, train_dtype(node))
            else:
                self.readouts[node.name] = _Readout(node, self.B, net, device)

    # ---- currents -----------------------------------------------------------------------------------
    def input_current(self, p, dtype: torch.dtype) -> torch.Tensor:
        """P(x_int) of a projection from an input, computed once per run (B, *out_shape)."""
        key = (p.name, dtype)
        cur = self._input_current.get(key)
        if cur is None:
            x = self.x[p.source]
            check_reference_limit(p, self.plan.projections[p.name], x)
            cur = self.projections[p.name].apply(x, self.plan.projections[p.name], dtype)
            self._input_current[key] = cur
        return cur

    def currents(self, node, K: int, t0: int, live: dict[str, torch.Tensor], dtype: torch.dtype):
        """(cur (K, B, *shape) or None, const (B|1, *shape) or None, enc (K, B, *shape) or None) in ``dtype``.

        The bias is folded into the first projection's own bias when that projection computes in
        ``dtype`` (a float): the state bound, which covers |current + bias|, keeps it exact."""
        cur = enc = None
        const = None
        bias = getattr(node, "bias", None)
        has_bias = bias is not None and not self.diff and bool(np.any(bias != 0))
        shape = (K, self.B) + tuple(node.shape)
        for p in self.net.incoming(node.name):
            src = self.net.node(p.source)
            if isinstance(src, Input):
                c = self.input_current(p, dtype)
                if self.diff:   # presented once, at step 1
                    if t0 == 0:
                        if cur is None:
                            cur = torch.zeros(shape, dtype=dtype, device=self.device)
                        cur[0].add_(c)
                else:
                    const = c if const is None else const + c
                continue
            s = live[p.source]
            pplan = self.plan.projections[p.name]
            check_reference_limit(p, pplan, s, K)
            fold = None
            if has_bias and cur is None and not (self.diff and is_graded(src)):
                fold = self._bias_for(node, p, pplan, dtype)
                has_bias = has_bias and fold is None
            y = self.projections[p.name].apply(s.reshape((K * self.B,) + tuple(s.shape[2:])), pplan, dtype, fold)
            y = y.reshape(shape)
            if self.diff and is_graded(src):
                enc = y if enc is None else enc.add_(y)
            elif cur is None:
                cur = y
            else:
                cur.add_(y)
        if has_bias:
            b = per_channel(bias, node.shape, dtype, self.device)
            const = b if const is None else const + b
        return cur, const, enc

    def _bias_for(self, node, p, pplan, dtype: torch.dtype) -> torch.Tensor | None:
        """The bias as a per-output-channel vector for projection ``p``'s map, when it can be folded."""
        if not dtype.is_floating_point or TORCH_DTYPES[pplan.arith] != dtype:
            return None
        if isinstance(p, Dense) and len(node.shape) != 1:
            return None
        c = node.shape[0]
        b = np.broadcast_to(np.asarray(node.bias, dtype=np.int64), (c,))
        return torch.as_tensor(b.astype(np.float64), dtype=dtype).to(self.device)

    # ---- the run ------------------------------------------------------------------------------------
    def run(self) -> SimResult:
        consumers = {n.name: len(self.net.outgoing(n.name)) for n in self.net.nodes}
        for t0 in range(0, self.T, self.K):
            K = min(self.K, self.T - t0)
            live: dict[str, torch.Tensor] = {}
            left = dict(consumers)
            for node in self.net.ordered_nodes():
                if isinstance(node, Input):
                    continue
                name = node.name
                if name in self.units:
                    unit = self.units[name]
                    msgs = unit.run(K, live[unit.edge.source], t0)
                elif name in self.steppers:
                    st = self.steppers[name]
                    cur, const, enc = self.currents(node, K, t0, live, st.dtype)
                    msgs = st.run(K, cur, const, t0, enc)
                else:
                    cur, const, enc = self.currents(node, K, t0, live, torch.int64)
                    self.readouts[name].run(K, cur, const, t0, enc)
                    msgs = None
                for p in self.net.incoming(name):   # free what no one reads any more
                    left[p.source] -= 1
                    if left[p.source] == 0:
                        live.pop(p.source, None)
                if msgs is not None:
                    self._collect(node, msgs, t0)
                    if left[name] > 0:
                        live[name] = msgs
        return self._result()

    def _collect(self, node, msgs: torch.Tensor, t0: int) -> None:
        K = msgs.shape[0]
        name = node.name
        if self.record:
            self.trains[name][t0:t0 + K] = msgs.cpu().numpy().astype(self.trains[name].dtype)
        if self.counter is not None:
            self.counter.add(name, t0, msgs)
        if not self.full:
            return
        part = sum_steps(msgs)   # exact in the messages' dtype: at most T messages of at most 2^(n-1)
        if name in self.steppers and self.T * getattr(node.neuron, "unit_divisor", 1) < 2**15:
            part = part.to(torch.int16)   # |count| <= T * 2^(n-1): held compactly over the run
        self.counts[name] = part if self.counts[name] is None else self.counts[name].add_(part)
        if self.diff and name in self.steppers:
            r = torch.tensor([self.net.coding.reciprocal(t0 + k + 1) for k in range(K)], dtype=torch.int64,
                             device=msgs.device).reshape((K,) + (1,) * (msgs.ndim - 1))
            self.encoded[name] += (msgs.to(torch.int64) * r).sum(dim=0)

    def _result(self) -> SimResult:
        def np64(t: torch.Tensor) -> np.ndarray:
            return t.to(dtype=torch.int64, memory_format=torch.contiguous_format).cpu().numpy()

        maxabs = {name: r.tracker.value() for name, r in self.readouts.items()}
        for name, st in {**self.steppers, **self.units}.items():
            maxabs[name] = st.max_abs
        if not self.full:
            for st in (*self.steppers.values(), *self.units.values()):
                release(st)
            acc = {name: np64(r.acc) for name, r in self.readouts.items()}
            return SimResult(Schedule.PIPELINED, self.T, {}, dict(acc), None, final_v=dict(acc),
                             phase={p.name: 0 for p in self.net.populations}, max_abs_state=maxabs,
                             encoded={} if self.diff else None, kept=self.keep)
        # node by node: its counts and final state converted, then its torch tensors freed, so that the
        # peak is the result plus one node's state (the result's dicts are assembled in the reference's order)
        conv_counts, conv_v, conv_enc = {}, {}, {}
        for node in self.net.ordered_nodes():
            k = node.name
            if k in self.counts:
                conv_counts[k] = np64(self.counts.pop(k))
            if k in self.encoded and k not in self.units:
                conv_enc[k] = np64(self.encoded.pop(k))
            st = self.steppers.get(k) or self.units.get(k)
            if st is not None:
                conv_v[k] = np64(st.state)
                release(st)
        counts = {k: conv_counts[k] for k in conv_counts}
        encoded = {}
        for node in self.net.ordered_nodes():   # a graded unit's messages are already encoded: its counts
            if node.name in self.units:
                encoded[node.name] = counts[node.name]
            elif node.name in conv_enc:
                encoded[node.name] = conv_enc[node.name]
        final_v = {k: conv_v[k] for k in (*self.steppers, *self.units)}
        acc = {name: np64(r.acc) for name, r in self.readouts.items()}
        final_v.update(acc)
        return SimResult(
            Schedule.PIPELINED, self.T, counts, dict(acc),
            self.trains if self.record else None, final_v=final_v,
            phase={p.name: 0 for p in self.net.populations}, max_abs_state=maxabs,
            encoded=encoded if self.diff else None,
        )


def release(obj) -> None:
    """Drop an object's tensors (its state, once read into the result): the run's peak memory is then
    the result plus one layer's state, not every layer's state twice."""
    for k, v in list(vars(obj).items()):
        if isinstance(v, torch.Tensor):
            setattr(obj, k, None)
