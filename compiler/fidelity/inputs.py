"""Inputs outside the network's input range: counted, so that the commands can warn (issue 13: uint8 pixels
0..255 fed to a model whose input range is 0..1 are otherwise clipped silently).

The network input quantizes x to x_int = clip(round(x / scale) + zero_point, qmin, qmax); a value is
**outside** when the clip changes it, i.e. x / scale + zero_point rounds below qmin or above qmax — it lies
more than half a step beyond the range's ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputRangeReport:
    input: str
    lo: float             # the range's ends in the input's units: (qmin - zp) * scale .. (qmax - zp) * scale
    hi: float
    values: int
    below: int
    above: int
    samples_affected: int
    data_min: float
    data_max: float

    @property
    def outside(self) -> int:
        return self.below + self.above

    def message(self) -> str | None:
        """One warning line, or None when every value is in range."""
        if not self.outside:
            return None
        return (f"{self.outside} of {self.values} input values ({self.samples_affected} samples) lie outside the input "
                f"'{self.input}' range [{self.lo:g}, {self.hi:g}] (data spans [{self.data_min:g}, {self.data_max:g}]) "
                "and are clipped; scale the data to the model's input range or compile with --input-range")


def input_range_report(net, x: np.ndarray) -> InputRangeReport:
    """How many values of ``x`` the network's (first) input clips (module docstring)."""
    inp = net.inputs[0]
    v = np.asarray(x, np.float64).reshape(len(x), -1) / inp.scale + inp.zero_point
    below = v < inp.qmin - 0.5
    above = v > inp.qmax + 0.5
    bad = below | above
    return InputRangeReport(
        inp.name, (inp.qmin - inp.zero_point) * inp.scale, (inp.qmax - inp.zero_point) * inp.scale, int(v.size),
        int(below.sum()), int(above.sum()), int(bad.any(axis=1).sum()),
        float(np.min(x)) if np.size(x) else 0.0, float(np.max(x)) if np.size(x) else 0.0)


def merge_input_ranges(parts: list[InputRangeReport]) -> InputRangeReport:
    """The reports of consecutive shards of one data set as the report of all of it (counts added, the
    data's smallest and largest value taken over the shards: the same numbers as one report over all)."""
    if not parts:
        raise ValueError("merge_input_ranges: no shard")
    first = parts[0]
    if any((p.input, p.lo, p.hi) != (first.input, first.lo, first.hi) for p in parts):
        raise ValueError("merge_input_ranges: the shards report different inputs or ranges")
    return InputRangeReport(first.input, first.lo, first.hi, sum(p.values for p in parts),
                            sum(p.below for p in parts), sum(p.above for p in parts),
                            sum(p.samples_affected for p in parts), min(p.data_min for p in parts),
                            max(p.data_max for p in parts))
