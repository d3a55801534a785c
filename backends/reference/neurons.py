"""How each neuron model runs in the reference simulator (docs/ir.md states the equations).

* ``Firing`` / ``DualFiring``: the spike rule of IF and dual-threshold neurons on a given state,
  for either schedule (``scale`` = 1 pipelined, T layerwise: thresholds scale with the state).
* Pipelined steppers: one object per population holding its state, ``step(t, current) ->
  messages``. A message is what the population sends this step: a spike 0/1, a signed spike
  -1/0/1, or a multi-threshold neuron's graded value +-2^(n-i) (in units of its finest threshold).

The registries map neuron model (and coding) classes to their implementation, so a new model adds
an entry, not a branch.
"""

from __future__ import annotations

import numpy as np

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import (Coding, DifferentialCoding, DualThreshold, IFSoftReset, MultiThreshold, Population, RateCoding,
                     per_channel)


class Firing:
    """IF: spike when v >= Theta, subtract Theta. ``step(v, count) -> (spikes, v)``."""

    def __init__(self, pop: Population, scale: int):
        self.thr = scale * per_channel(pop.threshold, pop.shape)

    def step(self, v: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = (v >= self.thr).astype(np.int64)
        return s, v - s * self.thr


class DualFiring(Firing):
    """Dual threshold: also -1 when v <= Theta_neg and the net count is >= 1 (adds Theta back)."""

    def __init__(self, pop: Population, scale: int):
        super().__init__(pop, scale)
        self.neg = scale * pop.neuron.negative_threshold(per_channel(pop.threshold, pop.shape))

    def step(self, v: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = v >= self.thr
        neg = ~pos & (v <= self.neg) & (count >= 1)
        s = pos.astype(np.int64) - neg.astype(np.int64)
        return s, v - s * self.thr


FIRING: dict[type, type[Firing]] = {IFSoftReset: Firing, DualThreshold: DualFiring}


def mth(m: np.ndarray, theta: np.ndarray, n: int, one: int = 1) -> np.ndarray:
    """Multi-threshold choice (paper 004 Eq. 6 with "no spike" as a candidate): the value in
    {0, +-Theta/2^(i-1), i = 1..n} nearest to m/one, halves away from zero. Returns the chosen
    value in current units (int64). With c_i = Theta/2^(i-1): |m| >= (3/4) c_i one picks c_i for
    i < n, |m| >= (1/2) c_n one picks c_n; the largest c_i that qualifies wins."""
    a = np.abs(m)
    out = np.zeros(np.broadcast_shapes(m.shape, theta.shape), np.int64)
    for i in range(n, 0, -1):               # smallest first, so larger thresholds override
        c = theta >> (i - 1)
        cond = (2 * a >= c * one) if i == n else (4 * a >= 3 * c * one)
        out = np.where(cond, c, out)
    return np.where(m < 0, -out, out)


class Stepper:
    """One population's state in the pipelined schedule."""

    def __init__(self, pop: Population, batch: int, coding: Coding):
        self.pop = pop
        self.shape = (batch,) + pop.shape
        self.bias = per_channel(pop.bias, pop.shape)
        self.max_abs = 0

    def _track(self, *arrays: np.ndarray) -> None:
        for a in arrays:
            self.max_abs = max(self.max_abs, int(np.abs(a).max(initial=0)))

    def step(self, t: int, cur: np.ndarray, count: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    @property
    def state(self) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


class SpikeStepper(Stepper):
    """IF and dual-threshold neurons: v += I + B, then the model's firing rule."""

    def __init__(self, pop: Population, batch: int, coding: Coding):
        super().__init__(pop, batch, coding)
        self.v = np.broadcast_to(per_channel(pop.v0, pop.shape), self.shape).astype(np.int64)
        self.fire = FIRING[type(pop.neuron)](pop, 1)
        self._track(self.v)

    def step(self, t, cur, count):
        v = self.v + cur + self.bias
        self._track(v)
        s, self.v = self.fire.step(v, count)
        return s

    @property
    def state(self):
        return self.v


class MTRateStepper(Stepper):
    """Multi-threshold neuron, rate coding (docs/ir.md): S = V0 + sum (I + B) over the steps so far,
    Y = max(S, 0) (relu) or S, the neuron fires mth(Y - C) and C sums what it fired."""

    def __init__(self, pop: Population, batch: int, coding: Coding):
        super().__init__(pop, batch, coding)
        self.theta = per_channel(pop.threshold, pop.shape)
        self.n, self.relu = pop.neuron.n, pop.neuron.relu
        self.unit = self.theta >> (self.n - 1)
        self.S = np.broadcast_to(per_channel(pop.v0, pop.shape), self.shape).astype(np.int64)
        self.C = np.zeros(self.shape, np.int64)
        self._track(self.S)

    def step(self, t, cur, count):
        self.S = self.S + cur + self.bias
        y = np.maximum(self.S, 0) if self.relu else self.S
        x = mth(y - self.C, self.theta, self.n)
        self.C = self.C + x
        self._track(self.S, self.C)
        return x // self.unit

    @property
    def state(self):
        y = np.maximum(self.S, 0) if self.relu else self.S
        return y - self.C


class MTDifferentialStepper(Stepper):
    """Multi-threshold neuron, differential coding (paper 004 Eq. 15-16 and 84-90, fixed point with
    F fractional bits, R_t = round(2^F / t)); see docs/ir.md for the equations."""

    def __init__(self, pop: Population, batch: int, coding: Coding):
        super().__init__(pop, batch, coding)
        self.coding, self.one = coding, coding.one
        self.theta = per_channel(pop.threshold, pop.shape)
        self.n, self.relu = pop.neuron.n, pop.neuron.relu
        self.unit = self.theta >> (self.n - 1)
        self.R = np.broadcast_to(per_channel(pop.v0, pop.shape) * self.one, self.shape).astype(np.int64)
        self.Yp = self._f(self.R)
        self.M = self.Yp.copy()
        self.V = np.zeros(self.shape, np.int64)
        self._track(self.R, self.M)

    def _f(self, r: np.ndarray) -> np.ndarray:
        return np.maximum(r, 0) if self.relu else r

    def step(self, t, cur, count):
        rt = self.coding.reciprocal(t)
        self.R = self.R + cur * rt
        y = self._f(self.R)
        d = y - self.Yp
        m = self.V + self.M + t * d
        x = mth(m, self.theta, self.n, self.one)
        self.V = m - x * self.one
        self.M = self.M + d - x * rt
        self.Yp = y
        self._track(self.R, m, self.V, self.M)
        return x // self.unit

    @property
    def state(self):
        return self.V


STEPPERS: dict[tuple[type, type], type[Stepper]] = {
    (IFSoftReset, RateCoding): SpikeStepper,
    (DualThreshold, RateCoding): SpikeStepper,
    (MultiThreshold, RateCoding): MTRateStepper,
    (MultiThreshold, DifferentialCoding): MTDifferentialStepper,
}


def stepper(pop: Population, batch: int, coding: Coding) -> Stepper:
    cls = STEPPERS.get((type(pop.neuron), type(coding)))
    if cls is None:
        supported = ", ".join(f"{n.__name__} with {c.__name__}" for n, c in STEPPERS)
        raise UnsupportedNetworkError(
            f"population '{pop.name}': {type(pop.neuron).__name__} with {type(coding).__name__} is not supported "
            f"by the reference simulator's pipelined schedule (supported: {supported})")
    return cls(pop, batch, coding)


def check_layerwise(pop: Population, coding: Coding) -> Firing:
    """The layerwise schedule (constant current, state scaled by T) is defined for IF and dual-threshold
    neurons in rate coding; others are refused with a message naming the population."""
    cls = FIRING.get(type(pop.neuron))
    if cls is None or not isinstance(coding, RateCoding):
        raise UnsupportedNetworkError(
            f"population '{pop.name}': the layerwise schedule is defined for IF and dual-threshold neurons in rate "
            f"coding (the constant-current theorem); {type(pop.neuron).__name__} with {type(coding).__name__} "
            "runs in the pipelined schedule")
    return cls
