"""Lava processes for the parts of the IR that Lava has no exact process for.

* ``IFSoftResetNeuron``: integrate-and-fire with soft reset (docs/ir.md, "Population"), both
  schedules, per-neuron threshold / initial potential / bias (the emitter broadcasts the IR's
  per-channel values to the full shape).
* ``DualThresholdNeuron``: paper 000's dual-threshold neuron (``snnc.ir.DualThreshold``): the same
  process plus a per-neuron ``neg`` Var (the negative threshold Theta_neg, scaled like ``thr``).
  Each active step, after integrating: +1 when ``v >= thr`` (``v -= thr``); else -1 when
  ``v <= neg`` and the net count before this step is >= 1 (``v += thr``). Its ``s_out`` carries
  signed spikes (-1/0/1), so projections from it need a graded message (``emit.py``).
* ``Accumulator``: the non-spiking readout (docs/ir.md, "Readout"). Lava's LIF cannot be used:
  its fixed-point model scales currents and biases (``<< 6``, 12-bit decays), so ``R0 + sum of
  currents + T*B`` would not come out integer-exact.

Both run on a *local* step ``t = (time_step - 1) % period + 1``: one Lava run processes several
samples back to back, ``period`` steps each, and every process re-initializes its state at t = 1.
Timing parameters (computed by ``emit.py``):

``pipelined`` (mode 0): the node is active for t in [start, start + T); each active step
    ``v += a_in + bias``; a population then fires ``v >= thr`` and subtracts ``thr``.
``layerwise`` (mode 1): for t in [2, start] incoming currents are summed into ``acc`` (the
    sources' counts arrive as graded messages); at t = start the constant current
    ``cur = acc + bias`` is latched (``bias`` is already T*B); the population then runs
    ``v += cur`` for t in [start, start + T) and, at its last active step, sends its spike count
    on ``c_out`` (graded) for the next layer. The readout sets ``v = v_init + cur`` at t = start.

``thr``, ``v_init``, ``bias`` (and ``neg``) hold the schedule's values (layerwise: T*Theta, T*V0,
T*B, T*Theta_neg); the
fixed_pt models use int64 state and integer arithmetic only.
"""

from __future__ import annotations

import numpy as np

from .compat import ensure_lava

ensure_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402

PIPELINED, LAYERWISE = 0, 1


class IFSoftResetNeuron(AbstractProcess):
    """Integrate-and-fire neurons with soft reset (see module docstring for the timing)."""

    def __init__(self, *, shape, thr, v_init, bias, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        shape = tuple(shape)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)   # spikes (0/1) every step
        self.c_out = OutPort(shape=shape)   # layerwise: spike count, once, at the last active step
        self.thr = Var(shape=shape, init=np.broadcast_to(thr, shape).copy())
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.bias = Var(shape=shape, init=np.broadcast_to(bias, shape).copy())
        self.v = Var(shape=shape, init=0)
        self.acc = Var(shape=shape, init=0)
        self.count = Var(shape=shape, init=0)
        self.timing = Var(shape=(4,), init=np.array([mode, timesteps, start, period]))


class DualThresholdNeuron(IFSoftResetNeuron):
    """Dual-threshold neurons: IF with soft reset plus a negative threshold ``neg`` (< 0).

    ``s_out`` sends signed spikes (-1/0/1); ``count`` is the net count (in [0, T]).
    """

    def __init__(self, *, shape, thr, neg, v_init, bias, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        super().__init__(shape=shape, thr=thr, v_init=v_init, bias=bias, mode=mode, timesteps=timesteps,
                         start=start, period=period, name=name)
        shape = tuple(shape)
        self.neg = Var(shape=shape, init=np.broadcast_to(neg, shape).copy())


class Accumulator(AbstractProcess):
    """Non-spiking integer readout; sends its value (graded) on ``r_out`` every step."""

    def __init__(self, *, shape, v_init, bias, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        shape = tuple(shape)
        self.a_in = InPort(shape=shape)
        self.r_out = OutPort(shape=shape)
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.bias = Var(shape=shape, init=np.broadcast_to(bias, shape).copy())
        self.v = Var(shape=shape, init=0)
        self.acc = Var(shape=shape, init=0)
        self.timing = Var(shape=(4,), init=np.array([mode, timesteps, start, period]))


class _NeuronLogic:
    def run_spk(self) -> None:
        mode, T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.a_in.recv()
        if t == 1:
            self.v = self.v_init.copy()
            self.acc = np.zeros_like(self.acc)
            self.count = np.zeros_like(self.count)
        s = np.zeros_like(self.v)
        c = np.zeros_like(self.v)
        active = start <= t < start + T
        if mode == PIPELINED:
            if active:
                self.v = self.v + a + self.bias
        else:
            if 2 <= t <= start:
                self.acc = self.acc + a
            if active:
                if t == start:
                    self.acc = self.acc + self.bias  # the constant current I = sum P(N) + T*B
                self.v = self.v + self.acc
        if active:
            s = self._fire()
            self.v = self.v - s * self.thr
            self.count = self.count + s
            if mode == LAYERWISE and t == start + T - 1:
                c = self.count
        self.s_out.send(s)
        self.c_out.send(c)

    def _fire(self) -> np.ndarray:
        """Spikes of this step from the integrated ``v`` (``count``: net count before the step)."""
        return (self.v >= self.thr).astype(self.v.dtype)


class _DualNeuronLogic(_NeuronLogic):
    def _fire(self) -> np.ndarray:
        pos = self.v >= self.thr
        neg = ~pos & (self.v <= self.neg) & (self.count >= 1)
        return pos.astype(self.v.dtype) - neg.astype(self.v.dtype)   # -1 adds thr back to v


class _AccumulatorLogic:
    def run_spk(self) -> None:
        mode, T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.a_in.recv()
        if t == 1:
            self.v = self.v_init.copy()
            self.acc = np.zeros_like(self.acc)
        if mode == PIPELINED:
            if start <= t < start + T:
                self.v = self.v + a + self.bias
        else:
            if 2 <= t <= start:
                self.acc = self.acc + a
            if t == start:
                self.v = self.v_init + self.acc + self.bias
        self.r_out.send(self.v)


@implements(proc=IFSoftResetNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIFSoftResetFixed(_NeuronLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=1)   # binary: 0/1
    c_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    thr: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    timing: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)


@implements(proc=IFSoftResetNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyIFSoftResetFloat(_NeuronLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    c_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    thr: np.ndarray = LavaPyType(np.ndarray, float)
    v_init: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    count: np.ndarray = LavaPyType(np.ndarray, float)
    timing: np.ndarray = LavaPyType(np.ndarray, int)


@implements(proc=DualThresholdNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyDualThresholdFixed(_DualNeuronLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=2)   # signed: -1/0/1
    c_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    thr: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    neg: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    count: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    timing: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)


@implements(proc=DualThresholdNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyDualThresholdFloat(_DualNeuronLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    c_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    thr: np.ndarray = LavaPyType(np.ndarray, float)
    neg: np.ndarray = LavaPyType(np.ndarray, float)
    v_init: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    count: np.ndarray = LavaPyType(np.ndarray, float)
    timing: np.ndarray = LavaPyType(np.ndarray, int)


@implements(proc=Accumulator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyAccumulatorFixed(_AccumulatorLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=32)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=32)
    v_init: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    acc: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    timing: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)


@implements(proc=Accumulator, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyAccumulatorFloat(_AccumulatorLogic, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v_init: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    acc: np.ndarray = LavaPyType(np.ndarray, float)
    timing: np.ndarray = LavaPyType(np.ndarray, int)
