"""analysis/format.check_format: a finished network against the target's number formats (used on NIR
imports; a compiled ONNX model fits by construction, checked here on the digits CNN)."""

import numpy as np
import pytest

from snnc.compiler.analysis.format import check_format, format_problems
from snnc.compiler.api import compile_model
from snnc.compiler.errors import ConversionError
from snnc.compiler.targets import load_target
from snnc.ir import Dense, Input, Network, Population, Readout

from snnc_testutil import DIGITS_MODEL


def test_compiled_network_fits_its_target():
    net, _ = compile_model(DIGITS_MODEL)
    assert format_problems(net, load_target("loihi").numeric) == []


def test_every_violation_is_listed():
    fmt = load_target("loihi").numeric
    net = Network([Input("in", (3,), qmin=0, qmax=1000), Population("p", (2,), threshold=np.array(4), bias=np.array(8193)),
                   Readout("r", (2,))],
                  [Dense("in->p", "in", "p", np.array([[200, 0, 1], [1, 1, 1]]), 9, (3,), (2,)),
                   Dense("p->r", "p", "r", np.eye(2, dtype=np.int64), 0, (2,), (2,))], 4)
    with pytest.raises(ConversionError) as e:
        check_format(net, fmt)
    msg = str(e.value)
    for part in ("'in->p': weight mantissas 0..200 outside -128..127", "'in->p': exponent 9 outside 0..7",
                 "'p': bias 8193", "input 'in': integer range 0..1000"):
        assert part in msg, msg
