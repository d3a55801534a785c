"""The graded units' own arithmetic (compiler/analysis/unit_ops.py), counted by hand on the tiny transformer
block of tests/transformer_nets.py (LayerNorm over 4 features x 3 tokens, Q K^T of 2 heads with d = 2, softmax
over 3 keys, A V, GELU), in both codings: per unit and step, then the network over its T steps."""

from __future__ import annotations

import pytest
from transformer_nets import CODINGS, transformer_block

from snnc.compiler.analysis.unit_ops import UnitOps, network_unit_ops, unit_ops
from snnc.compiler.errors import SnncError
from snnc.ir import GradedFunctionUnit

TOK, SCORES = 4 * 3, 2 * 3 * 3          # a token tensor (4 features, 3 tokens), the scores (2 heads, 3 x 3)


def _port(n: int, differential: bool, graded: bool = False) -> UnitOps:
    if differential:                     # m += s R_t (a MAC) for spikes, m += e (an add) for a unit's messages
        return UnitOps(0, n) if graded else UnitOps(n, 0)
    return UnitOps(n, 2 * n)            # m += s; m R_t + offset


def _message(n: int, differential: bool) -> UnitOps:
    return UnitOps(0, n) if differential else UnitOps(n, 2 * n)   # (rate: round(t F / 2^G)) then y - y_prev


def hand_counts(differential: bool, ln) -> dict[str, UnitOps]:
    bits = 2 * ln.norm_bits + 2 + 2 * ln.sqrt_bits + 1          # V 2^(2P): D = 4 adds log2 D = 2 bits
    isqrt = 2 * ((bits + 1) // 2)
    return {
        "ln": _port(TOK, differential) + UnitOps(4 * TOK, 6 * TOK + 3 * (1 + isqrt)) + _message(TOK, differential),
        "qk": _port(TOK, differential) + _port(TOK, differential) + UnitOps(2 * SCORES, SCORES)
        + _message(SCORES, differential),
        "sm": _port(SCORES, differential, graded=True) + UnitOps(3 * SCORES, 10 * SCORES) + _message(SCORES, differential),
        "av": _port(SCORES, differential, graded=True) + _port(TOK, differential) + UnitOps(3 * TOK, TOK)
        + _message(TOK, differential),
        "act": _port(TOK, differential) + UnitOps(TOK, 5 * TOK) + _message(TOK, differential),
    }


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_each_unit_counts_its_ports_function_and_message(coding):
    net = transformer_block(CODINGS[coding](), T=4)
    want = hand_counts(coding == "differential", net.node("ln"))
    got = {u.name: unit_ops(net, u) for u in net.nodes if isinstance(u, GradedFunctionUnit)}
    assert got == want
    total = UnitOps(sum(v.macs for v in want.values()), sum(v.adds for v in want.values())).times(4)
    assert network_unit_ops(net) == total


def test_the_count_grows_with_t_and_refuses_an_unknown_unit():
    T2, T8 = (network_unit_ops(transformer_block(T=T)) for T in (2, 8))
    assert (T8.macs, T8.adds) == (4 * T2.macs, 4 * T2.adds)

    class Strange(GradedFunctionUnit):
        pass

    net = transformer_block(T=2)
    u = net.node("act")
    u.__class__ = Strange
    with pytest.raises(SnncError, match="graded unit 'act': no operation count for Strange"):
        unit_ops(net, u)
