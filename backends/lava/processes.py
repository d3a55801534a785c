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

Multi-threshold neurons (``snnc.ir.MultiThreshold``, paper 004; docs/ir.md, "Codings"), pipelined
schedule only, same active window [start, start + T) with the neuron's own step k = t - start + 1:

* ``MTRateNeuron`` (rate coding): state ``S`` (running input sum, ``S(0) = V0``) and ``C`` (what
  was sent); each active step ``S += a_in + bias``, ``x = MTH(f(S) - C)``, ``C += x``.
* ``MTDifferentialNeuron`` (differential coding, F fractional bits): state ``R, Y, M, V`` in units
  of 2^-F, ``R(0) = v_init = V0 * 2^F``; the reciprocal R_k = round(2^F / k) is read from the
  per-process table ``recip`` (k = 1..T, precomputed by the emitter), so the model is integer-only.
* both send the graded message ``x / (Theta / 2^(n-1))`` in {0, +-1, +-2, ..., +-2^(n-1)} on
  ``s_out``; ``mt = [n, relu, one]`` (one = 1 in rate coding, 2^F in differential coding).
* ``DifferentialAccumulator``: the readout in differential coding, ``v(0) = v_init = R0 * 2^F``,
  ``v += a_in * recip[k - 1]`` each active step (no bias).
* ``DelayLine``: passes its input on ``delay`` steps later (a ring buffer of ``delay`` messages,
  cleared at local step 1). In the pipelined schedule every projection adds one Lava step, so a
  projection from a source at depth d_s into a node at depth d (longest paths) goes through a
  delay line of d - 1 - d_s steps: residual joins and max-pool tournaments then see all their
  sources' step-k messages at the same step, as in the reference simulator.
* ``GradedMaxPoolUnit``: the graded max-pool unit (``snnc.ir.GradedMaxPool``, paper 004 Theorem 4.2;
  docs/ir.md, "Graded max-pool unit"). Its source's ``s_out`` is connected to its ``s_in`` directly
  (no projection process: it needs every element, not a window sum), so it holds each message one
  step, as a projection would. Active steps k = 1..T: ``S += msg`` (rate), ``S += msg * R_k``
  (differential) or ``S += d`` (differential, from another graded unit); it sends
  ``maxwin(S) - maxwin(S before)``. ``e_in`` of the differential neuron and readout takes a graded
  unit's projected differential messages, which are already encoded (added without R_k).
* ``GradedFunctionProcess``: a transformer's graded unit (``snnc.ir.graded``: LayerNorm, softmax,
  GELU / SiLU, two-input MatMul; paper 004 Theorems 4.2 and 4.3). Each port p has ``p_in`` (the
  projected messages of the input and of populations, times R_k in differential coding) and
  ``pe_in`` (other graded units' projected differential messages, already encoded); active steps
  k = 1..T run the IR's own dynamics (``snnc.ir.graded.UnitDynamics``: the one definition the
  reference simulator runs) and send the increment of the unit's integer function on ``s_out``.
* ``Int64Probe``: a ring-buffer sink whose fixed_pt model keeps int64 (Lava's own sink is int32,
  too narrow for differential readouts, which hold values times 2^F).
"""

from __future__ import annotations

import numpy as np

from snnc.backends.base import UnsupportedNetworkError

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


class MTRateNeuron(AbstractProcess):
    """Multi-threshold neurons, rate coding: ``S += a_in + bias``; send MTH(f(S) - C) / unit; ``C += x``."""

    def __init__(self, *, shape, thr, v_init, bias, mt, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        _pipelined_only(mode, name)
        super().__init__(shape=shape, name=name)
        shape = tuple(shape)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)   # graded: 0, +-1, ..., +-2^(n-1) (units of Theta / 2^(n-1))
        self.thr = Var(shape=shape, init=np.broadcast_to(thr, shape).copy())
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.bias = Var(shape=shape, init=np.broadcast_to(bias, shape).copy())
        self.mt = Var(shape=(3,), init=np.asarray(mt, np.int64))               # [n, relu, one = 1]
        self.S = Var(shape=shape, init=0)
        self.C = Var(shape=shape, init=0)
        self.timing = Var(shape=(4,), init=np.array([mode, timesteps, start, period]))


class MTDifferentialNeuron(AbstractProcess):
    """Multi-threshold neurons, differential coding (paper 004 Eq. 15-16, 84-90; docs/ir.md).

    ``v_init`` is V0 * 2^F (state units); ``recip[k - 1]`` = R_k for the neuron's own step k = 1..T.
    Differential coding has no per-step bias, so ``bias`` must be zero (it is the initial value V0).
    """

    def __init__(self, *, shape, thr, v_init, bias, mt, recip, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        _pipelined_only(mode, name)
        if np.any(np.asarray(bias) != 0):
            raise ValueError(f"population '{name}': differential coding has no per-step bias (got a nonzero one)")
        super().__init__(shape=shape, name=name)
        shape = tuple(shape)
        recip = np.asarray(recip, np.int64)
        if recip.shape != (timesteps,):
            raise ValueError(f"population '{name}': recip must hold R_1..R_T ({timesteps} values), got {recip.shape}")
        self.a_in = InPort(shape=shape)
        self.e_in = InPort(shape=shape)     # graded units' projected differential messages (already encoded)
        self.s_out = OutPort(shape=shape)   # graded: 0, +-1, ..., +-2^(n-1) (units of Theta / 2^(n-1))
        self.thr = Var(shape=shape, init=np.broadcast_to(thr, shape).copy())
        self.v_init = Var(shape=shape, init=np.broadcast_to(v_init, shape).copy())
        self.mt = Var(shape=(3,), init=np.asarray(mt, np.int64))               # [n, relu, one = 2^F]
        self.recip = Var(shape=(timesteps,), init=recip)
        self.R = Var(shape=shape, init=0)
        self.Y = Var(shape=shape, init=0)
        self.M = Var(shape=shape, init=0)
        self.V = Var(shape=shape, init=0)
        self.timing = Var(shape=(4,), init=np.array([mode, timesteps, start, period]))


class DifferentialAccumulator(Accumulator):
    """The readout in differential coding: ``v(0) = v_init`` (= R0 * 2^F), ``v += a_in * R_k``."""

    def __init__(self, *, shape, v_init, bias, recip, mode: int, timesteps: int, start: int,
                 period: int, name: str | None = None) -> None:
        if mode != PIPELINED:
            raise UnsupportedNetworkError(f"readout '{name}': differential coding runs only in the pipelined schedule")
        if np.any(np.asarray(bias) != 0):
            raise ValueError(f"readout '{name}': differential coding has no per-step bias (got a nonzero one)")
        super().__init__(shape=shape, v_init=v_init, bias=bias, mode=mode, timesteps=timesteps, start=start,
                         period=period, name=name)
        recip = np.asarray(recip, np.int64)
        if recip.shape != (timesteps,):
            raise ValueError(f"readout '{name}': recip must hold R_1..R_T ({timesteps} values), got {recip.shape}")
        self.recip = Var(shape=(timesteps,), init=recip)
        self.e_in = InPort(shape=tuple(shape))   # graded units' projected differential messages (already encoded)


class DelayLine(AbstractProcess):
    """``s_out`` at step t sends what ``s_in`` received at step t - ``delay`` (zeros before)."""

    def __init__(self, *, shape, delay: int, period: int, name: str | None = None) -> None:
        if int(delay) < 1:
            raise ValueError(f"delay line '{name}': delay must be >= 1, got {delay}")
        super().__init__(shape=shape, name=name)
        shape = tuple(shape)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.buf = Var(shape=(int(delay),) + shape, init=np.zeros((int(delay),) + shape, np.int64))
        self.timing = Var(shape=(2,), init=np.array([int(delay), int(period)]))


class GradedMaxPoolUnit(AbstractProcess):
    """Graded max-pool unit (see module docstring); ``shape`` / ``in_shape`` in Lava layout (W, H, C)."""

    def __init__(self, *, shape, in_shape, kernel, stride, padding, graded: list, recip, timesteps: int,
                 start: int, period: int, name: str | None = None) -> None:
        super().__init__(shape=shape, name=name)
        shape, in_shape = tuple(shape), tuple(in_shape)
        self.s_in = InPort(shape=in_shape)
        self.s_out = OutPort(shape=shape)
        self.S = Var(shape=in_shape, init=0)
        self.held = Var(shape=in_shape, init=0)              # the message received last step
        self.prev = Var(shape=shape, init=0)
        # [kh, kw, sy, sx, pad t, l, b, r]; graded = [differential, source is a graded unit]
        self.geom = Var(shape=(8,), init=np.array(tuple(kernel) + tuple(stride) + tuple(padding)))
        self.graded = Var(shape=(2,), init=np.asarray(graded, np.int64))
        self.recip = Var(shape=(timesteps,), init=np.asarray(recip, np.int64))
        self.timing = Var(shape=(3,), init=np.array([timesteps, start, period]))


class GradedFunctionProcess(AbstractProcess):
    """A transformer graded unit (see module docstring). ``node``: the IR unit (its integers are the
    definition), ``coding``: the network's coding; ports in Lava layout (a (C, H, W) block as (W, H, C));
    ports a unit does not have are (1,) and stay unconnected."""

    def __init__(self, *, node, coding, timesteps: int, start: int, period: int, limit: int,
                 name: str | None = None) -> None:
        super().__init__(shape=_lava(node.shape), node=node, coding=coding, name=name)
        for port in ("a", "b"):
            shp = _lava(node.port_shape(port)) if port in node.PORTS else (1,)
            setattr(self, f"{port}_in", InPort(shape=shp))
            setattr(self, f"{port}e_in", InPort(shape=shp))
        self.s_out = OutPort(shape=_lava(node.shape))
        self.timing = Var(shape=(3,), init=np.array([timesteps, start, period]))
        self.limit = Var(shape=(1,), init=np.array([int(limit)], np.int64))   # largest |message| kept exact
        self.over = Var(shape=(1,), init=np.zeros(1, np.int64))               # largest |message| above it


def _lava(shape) -> tuple[int, ...]:
    """A node's shape in Lava layout ((C, H, W) -> (W, H, C))."""
    shape = tuple(shape)
    return shape[::-1] if len(shape) == 3 else shape


def _flip(a: np.ndarray) -> np.ndarray:
    """IR <-> Lava layout of one sample (its own inverse)."""
    return np.transpose(a, (2, 1, 0)) if a.ndim == 3 else a


class Int64Probe(AbstractProcess):
    """Ring-buffer sink (``lava.proc.io.sink.RingBuffer``'s interface: ``a_in``, ``data`` of shape
    ``shape + (buffer,)``) whose fixed_pt model stores int64 instead of int32."""

    def __init__(self, *, shape, buffer: int, name: str | None = None) -> None:
        super().__init__(shape=shape, buffer=buffer, name=name)
        shape = tuple(shape)
        self.a_in = InPort(shape=shape)
        self.data = Var(shape=shape + (buffer,), init=np.zeros(shape + (buffer,), np.int64))


def _pipelined_only(mode: int, name) -> None:
    if mode != PIPELINED:
        raise UnsupportedNetworkError(
            f"population '{name}': multi-threshold neurons run only in the pipelined schedule (the layerwise "
            "schedule's constant-current theorem is for IF and dual-threshold neurons in rate coding)")


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


def mth(m: np.ndarray, thr: np.ndarray, n: int, one: int) -> np.ndarray:
    """Multi-threshold choice (docs/ir.md; the reference's ``neurons.mth``): the candidate in
    {0, +-thr/2^(i-1), i = 1..n} nearest to m/one, halves away from zero. Integer-only for int64
    arrays; exact for float arrays of integers (thr is a multiple of 2^(n-1), so the divisions are exact)."""
    a = np.abs(m)
    out = np.zeros_like(m)
    for i in range(n, 0, -1):               # smallest first, so larger thresholds override
        c = thr // (1 << (i - 1))
        cond = (2 * a >= c * one) if i == n else (4 * a >= 3 * c * one)
        out = np.where(cond, c, out)
    return np.where(m < 0, -out, out)


class _MTLogic:
    """Shared by both codings: timing, reset at local step 1, the active window and the message."""

    def run_spk(self) -> None:
        mode, T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.a_in.recv()
        enc = self._encoded_in()
        if t == 1:
            self._reset()
        x = np.zeros_like(self.thr)
        if start <= t < start + T:
            n, relu, one = (int(v) for v in self.mt)
            if enc is not None:
                self.R = self.R + enc.astype(self.R.dtype)   # before this step's I * R_k (docs/ir.md)
            x = self._step(t - start + 1, a.astype(self.thr.dtype), n, bool(relu), one)
            x = x // (self.thr // (1 << (n - 1)))             # graded message, units of Theta / 2^(n-1)
        self.s_out.send(x)

    @staticmethod
    def _f(v: np.ndarray, relu: bool) -> np.ndarray:
        return np.maximum(v, 0) if relu else v

    def _encoded_in(self):
        return None


class _MTRateLogic(_MTLogic):
    def _reset(self) -> None:
        self.S = self.v_init.copy()
        self.C = np.zeros_like(self.C)

    def _step(self, k, a, n, relu, one):
        self.S = self.S + a + self.bias
        x = mth(self._f(self.S, relu) - self.C, self.thr, n, one)
        self.C = self.C + x
        return x


class _MTDifferentialLogic(_MTLogic):
    def _encoded_in(self):
        return self.e_in.recv()

    def _reset(self) -> None:
        relu = bool(int(self.mt[1]))
        self.R = self.v_init.copy()                           # V0 * 2^F
        self.Y = self._f(self.R, relu)
        self.M = self.Y.copy()
        self.V = np.zeros_like(self.V)

    def _step(self, k, a, n, relu, one):
        rt = self.recip[k - 1]                                # R_k = round(2^F / k)
        self.R = self.R + a * rt
        y = self._f(self.R, relu)
        d = y - self.Y
        m = self.V + self.M + k * d
        x = mth(m, self.thr, n, one)
        self.V = m - x * one
        self.M = self.M + d - x * rt
        self.Y = y
        return x


class _DifferentialAccumulatorLogic:
    def run_spk(self) -> None:
        mode, T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.a_in.recv()
        enc = self.e_in.recv()
        if t == 1:
            self.v = self.v_init.copy()                       # R0 * 2^F
        if start <= t < start + T:
            self.v = self.v + a.astype(self.v.dtype) * self.recip[t - start] + enc.astype(self.v.dtype)
        self.r_out.send(self.v)


class _DelayLogic:
    def run_spk(self) -> None:
        delay, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.s_in.recv()
        if t == 1:
            self.buf = np.zeros_like(self.buf)
        slot = (t - 1) % delay
        out = self.buf[slot].copy()              # received at step t - delay
        self.buf[slot] = a
        self.s_out.send(out)


def window_max_lava(S: np.ndarray, geom, out_shape) -> np.ndarray:
    """(W, H, C) int64 -> (OW, OH, C): the max of each window, padding excluded (never the max:
    every window holds a real element)."""
    kh, kw, sy, sx, t, l, b, r = (int(v) for v in geom)
    x = np.transpose(S, (2, 1, 0))                                   # (C, H, W)
    if t or l or b or r:
        x = np.pad(x, ((0, 0), (t, b), (l, r)), constant_values=np.iinfo(np.int64).min // 4)
    ow, oh, _ = out_shape
    out = np.full((x.shape[0], oh, ow), np.iinfo(np.int64).min, np.int64)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, x[:, i:i + sy * (oh - 1) + 1:sy, j:j + sx * (ow - 1) + 1:sx])
    return np.transpose(out, (2, 1, 0))


class _GradedMaxLogic:
    def run_spk(self) -> None:
        T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        a = self.s_in.recv().astype(np.int64)
        if t == 1:
            self.S = np.zeros_like(self.S)
            self.held = np.zeros_like(self.held)
            self.prev = np.zeros_like(self.prev)
        out = np.zeros_like(self.prev)
        if start <= t < start + T:
            k = t - start + 1
            differential, source_graded = (int(v) for v in self.graded)
            inc = self.held * (self.recip[k - 1] if differential and not source_graded else 1)
            self.S = self.S + inc
            cur = window_max_lava(self.S, self.geom, self.prev.shape)
            out = cur - self.prev
            self.prev = cur
        self.held = a
        self.s_out.send(out)


class _GradedFunctionLogic:
    def run_spk(self) -> None:
        from snnc.ir.graded import UnitDynamics

        T, start, period = (int(x) for x in self.timing)
        t = (self.time_step - 1) % period + 1
        node = self.proc_params["node"]
        cur = {p: (self.a_in.recv(), self.ae_in.recv()) if p == "a" else (self.b_in.recv(), self.be_in.recv())
               for p in ("a", "b")}
        if t == 1:
            self.dyn = UnitDynamics(node, 1, self.proc_params["coding"])
        out = np.zeros(_lava(node.shape), np.int64)
        if start <= t < start + T:
            k = t - start + 1
            spiking = {p: _flip(np.asarray(cur[p][0]).astype(np.int64))[None] for p in node.PORTS}
            encoded = {p: _flip(np.asarray(cur[p][1]).astype(np.int64))[None] for p in node.PORTS}
            out = _flip(self.dyn.step(k, spiking, encoded)[0])
            big = int(np.abs(out).max(initial=0))
            if big > int(self.limit[0]):      # a current it causes could wrap in Lava: the backend refuses the run
                self.over = np.maximum(self.over, big)
        self.s_out.send(out)


class _ProbeLogic:
    def run_spk(self) -> None:
        data = self.a_in.recv()
        self.data[..., (self.time_step - 1) % self.data.shape[-1]] = data


# ---- ProcessModels -------------------------------------------------------------------------------
# Each process gets a fixed_pt model (int64 values, declared precisions as documentation: Lava's CPU
# models do not enforce them) and a floating_pt model (floats), generated from one port/Var table:
# (name, kind, fixed-point precision); kind "in" / "out" is a port, "var" a Var, "int" a Var that stays
# an integer in the floating_pt model too (timing tables, the MT parameters).
# Multi-threshold widths: messages n + 1 bits signed (+-2^(n-1)); rate-coded S and C the IF state
# width; differential R, Y, M, V and the readout hold values times 2^F, so they need about F more bits
# than the values themselves -- int64 here, as in the reference simulator.

_IF_PORTS = (("a_in", "in", 32), ("s_out", "out", 1), ("c_out", "out", 24), ("thr", "var", 24),
             ("v_init", "var", 24), ("bias", "var", 24), ("v", "var", 24), ("acc", "var", 32),
             ("count", "var", 24), ("timing", "int", 32))
_MODEL_TABLES = {
    # process: (logic mixin, ports/Vars)
    IFSoftResetNeuron: (_NeuronLogic, _IF_PORTS),                                # s_out binary: 0/1
    DualThresholdNeuron: (_DualNeuronLogic, tuple(
        ("s_out", "out", 2) if p[0] == "s_out" else p for p in _IF_PORTS) + (("neg", "var", 24),)),  # -1/0/1
    Accumulator: (_AccumulatorLogic, (
        ("a_in", "in", 32), ("r_out", "out", 32), ("v_init", "var", 32), ("bias", "var", 32), ("v", "var", 32),
        ("acc", "var", 32), ("timing", "int", 32))),
    MTRateNeuron: (_MTRateLogic, (
        ("a_in", "in", 32), ("s_out", "out", 17), ("thr", "var", 24), ("v_init", "var", 24), ("bias", "var", 24),
        ("mt", "int", 32), ("S", "var", 24), ("C", "var", 24), ("timing", "int", 32))),
    MTDifferentialNeuron: (_MTDifferentialLogic, (
        ("a_in", "in", 32), ("e_in", "in", 64), ("s_out", "out", 17), ("thr", "var", 24), ("v_init", "var", 64), ("mt", "int", 32),
        ("recip", "var", 32), ("R", "var", 64), ("Y", "var", 64), ("M", "var", 64), ("V", "var", 64),
        ("timing", "int", 32))),
    DifferentialAccumulator: (_DifferentialAccumulatorLogic, (
        ("a_in", "in", 32), ("e_in", "in", 64), ("r_out", "out", 64), ("v_init", "var", 64), ("bias", "var", 32), ("recip", "var", 32),
        ("v", "var", 64), ("acc", "var", 32), ("timing", "int", 32))),
    Int64Probe: (_ProbeLogic, (("a_in", "in", 64), ("data", "var", 64))),
    GradedMaxPoolUnit: (_GradedMaxLogic, (
        ("s_in", "in", 32), ("s_out", "out", 64), ("S", "var", 64), ("held", "var", 32), ("prev", "var", 64),
        ("geom", "int", 32), ("graded", "int", 32), ("recip", "var", 32), ("timing", "int", 32))),
    GradedFunctionProcess: (_GradedFunctionLogic, (
        ("a_in", "in", 64), ("ae_in", "in", 64), ("b_in", "in", 64), ("be_in", "in", 64), ("s_out", "out", 64),
        ("timing", "int", 32), ("limit", "int", 64), ("over", "int", 64))),
    DelayLine: (_DelayLogic, (("s_in", "in", 32), ("s_out", "out", 32), ("buf", "var", 32), ("timing", "int", 32))),
}
_PORT_TYPES = {"in": PyInPort.VEC_DENSE, "out": PyOutPort.VEC_DENSE}


def _lava_type(kind: str, fixed: bool, precision: int) -> LavaPyType:
    cls = _PORT_TYPES.get(kind, np.ndarray)
    if fixed:
        return LavaPyType(cls, np.int64, precision=precision)
    return LavaPyType(cls, int if kind == "int" else float)


def _make_models() -> dict[str, type]:
    models = {}
    for proc, (logic, table) in _MODEL_TABLES.items():
        base = proc.__name__.removesuffix("Neuron")
        for tag_name, fixed, suffix in (("fixed_pt", True, "Fixed"), ("floating_pt", False, "Float")):
            ns = {name: _lava_type(kind, fixed, prec) for name, kind, prec in table}
            ns.update(__module__=__name__, __qualname__=f"Py{base}{suffix}")  # Lava matches models by module
            cls = type(PyLoihiProcessModel)(f"Py{base}{suffix}", (logic, PyLoihiProcessModel), ns)
            cls = implements(proc=proc, protocol=LoihiProtocol)(requires(CPU)(tag(tag_name)(cls)))
            models[cls.__name__] = cls
    return models


# module-level names: Lava finds ProcessModels by scanning this module's members
globals().update(_make_models())
