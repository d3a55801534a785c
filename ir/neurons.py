"""Neuron models of the IR's populations: small frozen dataclasses, registered by class name.

A population's dynamics are its neuron model's (docs/ir.md states each as equations): a new model
adds a class here and an entry in ``NEURON_MODELS``; docs/architecture.md lists the other files a
new model touches (every backend, the state bounds, the lowering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import IRValidationError
from .validation import INT_DTYPE


@dataclass(frozen=True)
class NeuronModel:
    """Base of neuron models. Subclasses are registered by class name for serialization."""

    kind: ClassVar[str] = "abstract"


@dataclass(frozen=True)
class IFSoftReset(NeuronModel):
    """Integrate-and-fire, no leak, spike when v >= threshold, reset by subtraction.

    At most one spike per timestep (docs/ir.md, "Population").
    """

    kind: ClassVar[str] = "if_soft_reset"


@dataclass(frozen=True)
class DualThreshold(NeuronModel):
    """Paper 000's dual-threshold neuron (Eq. 4-5) in integers, soft reset both ways.

    Per step, after integrating: a positive spike (+1) when v >= Theta (v -= Theta); otherwise a
    negative spike (-1) when v <= Theta_neg and the neuron's net count so far is >= 1 (v += Theta).
    Theta_neg = -ceil(Theta / neg_divisor), the integer form of theta' = -theta/neg_divisor, so always
    <= -1 (paper 000 writes theta' = -1e-3, an absolute value; for Theta <= neg_divisor both read
    "v < 0", docs/ir.md).
    Net counts stay in [0, T]; spikes carry their sign to the next layer.
    """

    kind: ClassVar[str] = "dual_threshold"
    neg_divisor: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.neg_divisor, bool) or not isinstance(self.neg_divisor, (int, np.integer)):
            raise IRValidationError("DualThreshold", f"neg_divisor must be an int >= 1, got {self.neg_divisor!r}")
        if self.neg_divisor < 1:
            raise IRValidationError("DualThreshold", f"neg_divisor must be >= 1, got {self.neg_divisor}")
        object.__setattr__(self, "neg_divisor", int(self.neg_divisor))

    def negative_threshold(self, threshold: np.ndarray) -> np.ndarray:
        """Theta_neg = -ceil(Theta / neg_divisor), integer arithmetic only (Theta > 0)."""
        th = np.asarray(threshold, dtype=INT_DTYPE)
        return -((th + self.neg_divisor - 1) // self.neg_divisor)


@dataclass(frozen=True)
class MultiThreshold(NeuronModel):
    """Paper 004's multi-threshold neuron (Eq. 1-6, App. J) with an optional ReLU on its input.

    Thresholds Theta, Theta/2, ..., Theta/2^(n-1) and their negatives; per step it emits at most one
    of them (or nothing): the candidate in {0, +-Theta/2^(i-1)} nearest to the membrane potential,
    halves rounded away from zero. A spike is sent as the graded message +-2^(n-i) (the value in
    units of the finest threshold Theta/2^(n-1)), so Theta must be a multiple of 2^(n-1).
    ``relu``: the neuron encodes max(encoded input, 0) (a converted ReLU layer); else the identity.
    Its dynamics depend on the network's coding (rate or differential; docs/ir.md).
    """

    kind: ClassVar[str] = "multi_threshold"
    n: int = 1
    relu: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or not 1 <= self.n <= 16:
            raise IRValidationError("MultiThreshold", f"n (thresholds per sign) must be an int in 1..16, got {self.n!r}")
        if not isinstance(self.relu, (bool, np.bool_)):
            raise IRValidationError("MultiThreshold", f"relu must be a bool, got {self.relu!r}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "relu", bool(self.relu))

    @property
    def unit_divisor(self) -> int:
        """Theta / (finest threshold): messages are counted in units of Theta / 2^(n-1)."""
        return 2 ** (self.n - 1)

    def check_population(self, pop: "Population") -> None:
        if np.any(pop.threshold % self.unit_divisor):
            raise IRValidationError(
                pop.name, f"multi-threshold neurons with n={self.n} need thresholds that are multiples of "
                f"2^(n-1) = {self.unit_divisor}, so that every threshold Theta/2^(i-1) is an integer")


NEURON_MODELS: dict[str, type[NeuronModel]] = {
    "IFSoftReset": IFSoftReset, "DualThreshold": DualThreshold, "MultiThreshold": MultiThreshold,
}

