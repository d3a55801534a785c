"""How values travel between layers over the T steps (docs/ir.md, "Codings").

* ``RateCoding``: a layer's activation is the average of what it sent per step, (1/t) sum x[k].
  The input is presented every step. This is what every neuron model runs with.
* ``DifferentialCoding`` (paper 004, Definition 4.1): the activation is r[t] = r[t-1] + x[t]/t, so
  a spike only moves the value when it is sent; the input is presented once, at step 1. Only
  multi-threshold neurons run it. The 1/t factors are a fixed-point reciprocal with ``frac_bits``
  fractional bits, R_t = floor((2^F + floor(t/2)) / t) (round half up), shared by every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .errors import IRValidationError


@dataclass(frozen=True)
class Coding:
    kind: ClassVar[str] = "abstract"


@dataclass(frozen=True)
class RateCoding(Coding):
    kind: ClassVar[str] = "rate"


@dataclass(frozen=True)
class DifferentialCoding(Coding):
    kind: ClassVar[str] = "differential"
    frac_bits: int = 12

    def __post_init__(self) -> None:
        if isinstance(self.frac_bits, bool) or not isinstance(self.frac_bits, int) or not 0 <= self.frac_bits <= 30:
            raise IRValidationError("DifferentialCoding", f"frac_bits must be an int in 0..30, got {self.frac_bits!r}")

    @property
    def one(self) -> int:
        """1.0 in the fixed-point format: 2^F."""
        return 1 << self.frac_bits

    def reciprocal(self, t: int) -> int:
        """R_t = round(2^F / t), halves rounded up, in integers: floor((2^F + floor(t/2)) / t)."""
        if t < 1:
            raise ValueError(f"step t must be >= 1, got {t}")
        return (self.one + t // 2) // t


CODINGS: dict[str, type[Coding]] = {"RateCoding": RateCoding, "DifferentialCoding": DifferentialCoding}
