"""Neuron models of the pipelined schedule on torch, equal to the reference's (docs/ir.md states them).

A stepper holds one population's state over the run and advances it over a chunk of K steps at
once: ``run(K, cur, const, t0, enc)`` with ``cur`` the chunk's synaptic current (K, B, *shape) (the
stateless projections of every source over those K steps, computed in one batched call), ``const`` a
current added every step (bias, a rate-coded input's current: computed once), ``t0`` the chunk's
first step (0-based) and ``enc`` (differential coding) already-encoded input from graded units. It
returns the messages the population sends over the chunk, (K, B, *shape).

IF and dual-threshold states run in the dtype the plan proved exact (float32 / int32 / int64);
multi-threshold states in int64. ``max_abs`` is the largest |state| the reference tracks (after
each integration; multi-threshold: every state it tracks), reduced once at the end.
"""

from __future__ import annotations

import torch

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import Coding, DifferentialCoding, DualThreshold, IFSoftReset, MultiThreshold, Population, RateCoding


CHANNELS_LAST_MIN_PIXELS = 256  # maps of at least 16x16 pixels run channels-last on the CPU (measured, below)


def memory_format(device, map_shape: tuple[int, ...] = ()) -> torch.memory_format:
    """The layout of a (C, H, W) map: channels-last (NHWC) on the CPU when it has at least
    ``CHANNELS_LAST_MIN_PIXELS`` pixels, where oneDNN's direct convolutions then run without reordering
    their input and output (measured, 1 thread, batch 64, 3x3: 64 channels at 32x32 102 -> 59 ms);
    smaller maps are faster in NCHW (512 channels at 2x2: 19 vs 51 ms; the digits CNN's 8x8 maps: the
    layout copies cost more than the convolutions save, layerwise 11.0 vs 8.0 ms per batch of 360).
    The values are the same in either layout."""
    if torch.device(device).type != "cpu" or len(map_shape) != 3 or map_shape[1] * map_shape[2] < CHANNELS_LAST_MIN_PIXELS:
        return torch.contiguous_format
    return torch.channels_last


def alloc(shape: tuple[int, ...], dtype: torch.dtype, device) -> torch.Tensor:
    """An uninitialized tensor; (B, C, H, W) maps, and chunks of them (K, B, C, H, W), in ``memory_format``."""
    if len(shape) == 4:
        return torch.empty(shape, dtype=dtype, device=device, memory_format=memory_format(device, shape[1:]))
    if len(shape) == 5:
        return alloc((shape[0] * shape[1],) + tuple(shape[2:]), dtype, device).view(shape)
    return torch.empty(shape, dtype=dtype, device=device)


def flat(x: torch.Tensor) -> torch.Tensor:
    """The values of ``x`` as a 1-D view of its storage order when it has one (contiguous or channels-last
    maps and chunks of them), so that reductions over all of them copy nothing."""
    if x.is_contiguous():
        return x.view(-1)
    if x.ndim >= 4:
        perm = tuple(range(x.ndim - 3)) + (x.ndim - 2, x.ndim - 1, x.ndim - 3)
        y = x.permute(perm)
        if y.is_contiguous():
            return y.view(-1)
    return x.reshape(-1)


def sum_steps(x: torch.Tensor) -> torch.Tensor:
    """x (K, ...) summed over its first axis, in x's dtype and layout (no copy for channels-last chunks)."""
    if x.ndim == 5 and not x.is_contiguous():
        y = x.permute(0, 1, 3, 4, 2)
        if y.is_contiguous():
            return y.sum(dim=0).permute(0, 3, 1, 2)
    return x.sum(dim=0)


def filled(value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` broadcast to ``shape``, materialized in the layout of ``alloc``."""
    out = alloc(shape, value.dtype, value.device)
    out.copy_(value.expand(shape))
    return out


def per_channel(arr, shape: tuple[int, ...], dtype: torch.dtype, device) -> torch.Tensor:
    """A scalar or per-channel (axis 0) parameter as a tensor broadcastable to (B, *shape)."""
    t = torch.as_tensor(arr, dtype=torch.int64)
    t = t.reshape((1,) * (len(shape) + 1)) if t.ndim == 0 else t.reshape((1, shape[0]) + (1,) * (len(shape) - 1))
    return t.to(dtype).to(device)


class MaxTracker:
    """max |x| over every tensor shown: each shows costs one min/max pass; the (min, max) pairs are
    reduced once at the end (no per-step host sync, no per-step conversions)."""

    def __init__(self):
        self._lo: list[torch.Tensor] = []
        self._hi: list[torch.Tensor] = []

    def show(self, x: torch.Tensor) -> None:
        if x.numel():
            lo, hi = torch.aminmax(flat(x))
            self._lo.append(lo)
            self._hi.append(hi)

    def value(self) -> int:
        if not self._lo:
            return 0
        lo = torch.stack(self._lo).amin()   # one dtype per tracker (its node's state dtype): exact integers
        hi = torch.stack(self._hi).amax()
        self._lo, self._hi = [lo], [hi]
        return int(max(abs(lo.item()), abs(hi.item())))


class Stepper:
    """One population's state in the pipelined schedule."""

    def __init__(self, pop: Population, batch: int, coding: Coding, dtype: torch.dtype, device):
        self.pop, self.coding, self.dtype, self.device = pop, coding, dtype, device
        self.shape = (batch,) + tuple(pop.shape)
        self.tracker = MaxTracker()

    def param(self, arr) -> torch.Tensor:
        return per_channel(arr, self.pop.shape, self.dtype, self.device)

    def run(self, K: int, cur: torch.Tensor | None, const: torch.Tensor | None, t0: int,
            enc: torch.Tensor | None, keep: bool = True) -> torch.Tensor | None:  # pragma: no cover - per model
        """The messages of the K steps (K, B, *shape), or None when not ``keep`` (only the state moves)."""
        raise NotImplementedError

    @property
    def max_abs(self) -> int:
        return self.tracker.value()

    @property
    def state(self) -> torch.Tensor:  # pragma: no cover - per model
        raise NotImplementedError

    def _inputs(self, K: int, cur, const, keep: bool = True):
        """Per step k: the current to integrate (cur[k] with const folded in, or const alone), and where
        the messages go: over the consumed current, a new (K, B, *shape) tensor, or (``keep`` False) one
        reused (B, *shape) scratch tensor."""
        if cur is None:
            if const is None:
                const = torch.zeros((1,) * len(self.shape), dtype=self.dtype, device=self.device)
            inputs = [const] * K
        else:
            if const is not None:
                cur.add_(const)
            inputs = cur
        if not keep:
            return inputs, [alloc(self.shape, self.dtype, self.device)] * K
        return inputs, (cur if cur is not None else alloc((K,) + self.shape, self.dtype, self.device))

class SpikeStepper(Stepper):
    """IF (and, with ``DualSpikeStepper``, dual-threshold) neurons: v += I + B, then the firing rule. The
    messages are written over the consumed current (same dtype). ``scale``: V0 and thresholds times
    ``scale`` (the layerwise schedule's tau; 1 pipelined)."""

    def __init__(self, pop, batch, coding, dtype, device, scale: int = 1):
        super().__init__(pop, batch, coding, dtype, device)
        self.scale = int(scale)
        self.v = filled(self.param(pop.v0) * self.scale, self.shape)
        self.thr = self.param(pop.threshold) * self.scale
        self.tracker.show(self.v)

    def run(self, K, cur, const, t0, enc, keep=True):
        inputs, out = self._inputs(K, cur, const, keep)
        for k in range(K):
            self.v.add_(inputs[k])
            self.tracker.show(self.v)
            self.fire(out[k])
        return out if keep else None

    def fire(self, s: torch.Tensor) -> None:
        torch.ge(self.v, self.thr, out=s)
        self.v.addcmul_(s, self.thr, value=-1)

    @property
    def state(self):
        return self.v


class DualSpikeStepper(SpikeStepper):
    """Dual threshold: -1 when v <= Theta_neg, not firing +1, and the net count so far >= 1."""

    def __init__(self, pop, batch, coding, dtype, device, scale: int = 1):
        super().__init__(pop, batch, coding, dtype, device, scale)
        self.neg = self.param(pop.neuron.negative_threshold(pop.threshold)) * self.scale
        self.count = filled(torch.zeros((), dtype=dtype, device=device), self.shape)

    def fire(self, s):
        pos = self.v >= self.thr
        neg = (self.v <= self.neg) & (self.count >= 1) & ~pos
        s.copy_(pos)
        s.sub_(neg.to(s.dtype))
        self.v.addcmul_(s, self.thr, value=-1)
        self.count.add_(s)


def mth(m: torch.Tensor, theta: torch.Tensor, n: int, one: int = 1) -> torch.Tensor:
    """The multi-threshold choice (docs/ir.md): the candidate in {0, +-Theta/2^(i-1)} nearest to m/one,
    halves away from zero, in current units (int64). Same comparisons as the reference."""
    a = m.abs()
    out = torch.zeros_like(m)
    for i in range(n, 0, -1):                   # smallest first, so larger thresholds override
        c = theta >> (i - 1)
        cond = (2 * a >= c * one) if i == n else (4 * a >= 3 * c * one)
        out = torch.where(cond, c, out)
    return torch.where(m < 0, -out, out)


class MTRateStepper(Stepper):
    """Multi-threshold neuron, rate coding: S += I + B, x = mth(f(S) - C), C += x (int64)."""

    def __init__(self, pop, batch, coding, dtype, device):
        super().__init__(pop, batch, coding, torch.int64, device)
        self.theta = self.param(pop.threshold)
        self.n, self.relu = pop.neuron.n, pop.neuron.relu
        self.unit = self.theta >> (self.n - 1)
        self.S = self.param(pop.v0).expand(self.shape).clone()
        self.C = torch.zeros(self.shape, dtype=torch.int64, device=device)
        self.tracker.show(self.S)

    def run(self, K, cur, const, t0, enc, keep=True):
        inputs, out = self._inputs(K, cur, const)
        for k in range(K):
            self.S.add_(inputs[k])
            y = self.S.clamp(min=0) if self.relu else self.S
            x = mth(y - self.C, self.theta, self.n)
            self.C.add_(x)
            self.tracker.show(self.S)
            self.tracker.show(self.C)
            torch.div(x, self.unit, rounding_mode="floor", out=out[k])
        return out

    @property
    def state(self):
        return (self.S.clamp(min=0) if self.relu else self.S) - self.C


class MTDifferentialStepper(Stepper):
    """Multi-threshold neuron, differential coding (paper 004 Eq. 15-16, 84-90; docs/ir.md), int64."""

    def __init__(self, pop, batch, coding, dtype, device):
        super().__init__(pop, batch, coding, torch.int64, device)
        self.one = coding.one
        self.theta = self.param(pop.threshold)
        self.n, self.relu = pop.neuron.n, pop.neuron.relu
        self.unit = self.theta >> (self.n - 1)
        self.R = (self.param(pop.v0) * self.one).expand(self.shape).clone()
        self.Yp = self._f(self.R)
        self.M = self.Yp.clone()
        self.V = torch.zeros(self.shape, dtype=torch.int64, device=device)
        self.tracker.show(self.R)
        self.tracker.show(self.M)

    def _f(self, r):
        return r.clamp(min=0) if self.relu else r

    def run(self, K, cur, const, t0, enc, keep=True):
        inputs, out = self._inputs(K, cur, const)
        for k in range(K):
            t = t0 + k + 1
            rt = self.coding.reciprocal(t)
            # out of place: Yp may be R itself (no ReLU) and must keep the previous value
            if enc is not None:
                self.R = self.R + enc[k]       # a graded unit's encoded message (no second R_t)
            self.R = self.R + inputs[k] * rt
            y = self._f(self.R)
            d = y - self.Yp
            m = self.V + self.M + t * d
            x = mth(m, self.theta, self.n, self.one)
            self.V = m - x * self.one
            self.M = self.M + d - x * rt
            self.Yp = y
            for a in (self.R, m, self.V, self.M):
                self.tracker.show(a)
            torch.div(x, self.unit, rounding_mode="floor", out=out[k])
        return out

    @property
    def state(self):
        return self.V


FIRING: dict[type, type[SpikeStepper]] = {IFSoftReset: SpikeStepper, DualThreshold: DualSpikeStepper}

STEPPERS: dict[tuple[type, type], type[Stepper]] = {
    (IFSoftReset, RateCoding): SpikeStepper,
    (DualThreshold, RateCoding): DualSpikeStepper,
    (MultiThreshold, RateCoding): MTRateStepper,
    (MultiThreshold, DifferentialCoding): MTDifferentialStepper,
}


def stepper_class(pop: Population, coding: Coding) -> type[Stepper]:
    cls = STEPPERS.get((type(pop.neuron), type(coding)))
    if cls is None:
        supported = ", ".join(f"{n.__name__} with {c.__name__}" for n, c in STEPPERS)
        raise UnsupportedNetworkError(
            f"population '{pop.name}': {type(pop.neuron).__name__} with {type(coding).__name__} is not supported "
            f"by the torch backend's pipelined schedule (supported: {supported})")
    return cls


def firing_class(pop: Population, coding: Coding) -> type[SpikeStepper]:
    """The layerwise schedule (constant current, state scaled by tau) is defined for IF and dual-threshold
    neurons in rate coding; others are refused naming the population."""
    cls = FIRING.get(type(pop.neuron))
    if cls is None or not isinstance(coding, RateCoding):
        raise UnsupportedNetworkError(
            f"population '{pop.name}': the layerwise schedule is defined for IF and dual-threshold neurons in rate "
            f"coding (the constant-current theorem); {type(pop.neuron).__name__} with {type(coding).__name__} "
            "runs in the pipelined schedule")
    return cls
