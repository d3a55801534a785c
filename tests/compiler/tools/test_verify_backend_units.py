"""``verify_against_backend`` compares every graded unit's messages, not only the populations' spikes: a
backend that changes one message of one unit is DIFFERENT, naming the unit and the step; a unit the backend
does not record is listed as unchecked (never counted as compared)."""

from __future__ import annotations

import numpy as np
from transformer_nets import block_inputs, transformer_block

from snnc.backends.reference import simulate
from snnc.compiler.tools.verify import format_backend_report, verify_against_backend
from snnc.ir import GradedFunctionUnit


class Altered:
    """A backend that returns the reference's run with ``change`` applied to its recorded trains."""

    name = "altered"

    def __init__(self, change):
        self.change = change

    def run(self, net, x, schedule, record=False):
        res = simulate(net, x, schedule=schedule, record=record)
        self.change(res.spikes)
        return res


def _run(change):
    net = transformer_block(T=2)
    return net, verify_against_backend(net, block_inputs(2), Altered(change), "pipelined")


def test_identical_runs_compare_every_unit_message():
    net, rep = _run(lambda s: None)
    units = [n for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    assert rep.exact and rep.units_compared == len(units) and not rep.units_unchecked
    assert rep.unit_messages_compared == 2 * 2 * sum(int(np.prod(u.shape)) for u in units)


def test_one_changed_unit_message_is_a_mismatch_naming_the_unit():
    def change(spikes):
        spikes["sm"][1, 0, 0, 0, 0] += 1

    _, rep = _run(change)
    assert not rep.exact and rep.mismatches == 1
    assert rep.first_mismatch == "graded unit 'sm', timestep 2 (of its 2)"
    assert "DIFFERENT" in format_backend_report("b.snnc", "altered", rep)


def test_a_unit_the_backend_does_not_record_is_unchecked():
    _, rep = _run(lambda s: s.pop("av"))
    assert rep.units_unchecked == ["av"] and rep.units_compared == 4
    text = format_backend_report("b.snnc", "altered", rep)
    assert "unchecked: av" in text and "IDENTICAL where compared (graded units unchecked" in text
