"""The target's number formats, checked on a finished network (what the integerizer guarantees by
construction for a compiled ONNX model; a network from elsewhere, e.g. a NIR graph, is checked here).

Weight mantissas in [weight_min, weight_max], exponents in [weight_exp_min, weight_exp_max], every
population's and readout's per-step bias a representable mantissa << exponent, the input's integer
range within the target's input bits. ``check_format`` raises ``ConversionError`` listing every
violation (node, value, what the target allows).
"""

from __future__ import annotations

import numpy as np

from snnc.ir import Network, Population, Readout, SumPool2d

from ..errors import ConversionError
from ..targets import NumericFormat


def format_problems(net: Network, fmt: NumericFormat) -> list[str]:
    out = []
    for p in net.projections:
        w = np.asarray(p.weight, np.int64)
        if w.size and (w.min() < fmt.weight_min or w.max() > fmt.weight_max):
            out.append(f"projection '{p.name}': weight mantissas {int(w.min())}..{int(w.max())} outside "
                       f"{fmt.weight_min}..{fmt.weight_max}")
        if not fmt.weight_exp_min <= p.exponent <= fmt.weight_exp_max and not (isinstance(p, SumPool2d) and p.exponent == 0):
            out.append(f"projection '{p.name}': exponent {p.exponent} outside {fmt.weight_exp_min}..{fmt.weight_exp_max}")
    for n in net.nodes:
        if isinstance(n, (Population, Readout)):
            for b in np.unique(np.asarray(n.bias, np.int64)):
                if fmt.representable_bias(int(b)) != int(b):
                    out.append(f"node '{n.name}': bias {int(b)} is not a {fmt.bias_mant_bits}-bit mantissa times "
                               f"2^0..2^{fmt.bias_exp_max}")
                    break
    bits = fmt.input_bits
    for i in net.inputs:
        ok = i.qmax <= 2**bits - 1 if i.qmin >= 0 else (i.qmin >= -(2 ** (bits - 1)) and i.qmax <= 2 ** (bits - 1) - 1)
        if not ok:
            out.append(f"input '{i.name}': integer range {i.qmin}..{i.qmax} does not fit the target's {bits}-bit input")
    return out


def check_format(net: Network, fmt: NumericFormat) -> None:
    problems = format_problems(net, fmt)
    if problems:
        raise ConversionError("the network does not fit the target's number formats:\n"
                              + "\n".join(f"  - {p}" for p in problems))
