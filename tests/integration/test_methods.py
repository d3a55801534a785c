"""Papers 000 and 003's conversion methods: V0 modes, the dual-threshold neuron, T != L.

Each check runs the compiled network (reference simulator / integer ANN), not just its parameters.
"""

import dataclasses

import numpy as np
import pytest

from snnc.ir import Schedule

from snnc.backends.reference import run_integer_ann, simulate
from snnc.compiler.analysis.bounds import check_network, value_range
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.config import CompileConfig, NeuronKind, V0Mode
from snnc.compiler.tools.verify import reference_network, verify_against_ann
from snnc.ir import Dense, DualThreshold, IFSoftReset, Input, Network, Population, Readout

from snnc_testutil import DIGITS_DATA, zoo_model


@pytest.fixture(scope="module")
def digits():
    z = np.load(DIGITS_DATA)
    return z["x"][:80], z["y"][:80]


@pytest.fixture(scope="module")
def round4():
    return import_model(zoo_model("round", 4))


@pytest.mark.parametrize("quantizer", ["floor", "round", "ceil"])
def test_only_the_matched_v0_is_exact_at_t_equals_l(quantizer, digits):
    """Issue 4, done-when: for floor/round/ceil models the matched V0 (layerwise, T = L) is exact and
    every mismatched V0 is not (trained zoo models, L = 4)."""
    x, y = digits
    imp = import_model(zoo_model(quantizer, 4))
    matched = {"floor": "zero", "round": "half", "ceil": "full"}[quantizer]
    for v0 in ("auto", "zero", "half", "full"):
        net = compile_imported(imp, CompileConfig(v0=v0))
        rep = verify_against_ann(net, x, y, Schedule.LAYERWISE, None)
        is_matched = v0 in ("auto", matched)
        assert rep.exact == is_matched, (quantizer, v0, rep.neurons_mismatched)
        assert all(L["v0_matched"] == is_matched for L in net.metadata["layers"] if "v0_mode" in L)
        if not is_matched:
            assert rep.neurons_mismatched > 0.01 * rep.neurons_compared


def test_reference_network_restores_the_matched_v0(round4):
    auto = compile_imported(round4, CompileConfig())
    zero = compile_imported(round4, CompileConfig(v0="zero"))
    assert all(np.all(p.v0 == 0) for p in zero.populations)
    back = reference_network(zero)
    for a, b in zip(auto.populations, back.populations):
        assert np.array_equal(a.v0, b.v0) and np.array_equal(a.threshold, b.threshold)
    assert reference_network(auto) is auto


def _fig2_net(neuron):
    """Paper 000, Fig. 2: a neuron receiving +2, -2, +2, -2 (theta = 1) should end with 0 spikes."""
    inp = Input("x", (2,), scale=1.0, qmin=0, qmax=1)
    # a fires at steps 1 and 3 (v0 1, theta 2, current 1); b at steps 2 and 4 (v0 0)
    src = Population("src", (2,), threshold=2, v0=[1, 0], bias=0, levels=4)
    tgt = Population("tgt", (1,), neuron=neuron, threshold=1, v0=0, bias=0, levels=4)
    r = Readout("r", (1,))
    projs = [Dense("x->src", "x", "src", np.eye(2, dtype=np.int64), 0, (2,), (2,)),
             Dense("src->tgt", "src", "tgt", np.array([[2, -2]]), 0, (2,), (1,)),
             Dense("tgt->r", "tgt", "r", np.array([[1]]), 0, (1,), (1,))]
    return Network([inp, src, tgt, r], projs, 4)


def test_dual_threshold_cancels_the_unevenness_error_of_paper_000_fig2():
    x = np.ones((1, 2), np.int64)
    s_if = simulate(_fig2_net(IFSoftReset()), x, Schedule.PIPELINED, record=True, quantized=True)
    s_dt = simulate(_fig2_net(DualThreshold()), x, Schedule.PIPELINED, record=True, quantized=True)
    assert s_if.spikes["src"][:, 0].tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    assert s_if.spikes["tgt"][:, 0, 0].tolist() == [1, 0, 1, 0]     # Fig. 2(c): N = 2, ANN says 0
    assert s_dt.spikes["tgt"][:, 0, 0].tolist() == [1, -1, 1, -1]   # Fig. 2(d): net N = 0
    assert s_dt.counts["tgt"].tolist() == [[0]] and s_if.counts["tgt"].tolist() == [[2]]
    assert s_dt.readout["r"].tolist() == [[0]]                      # negative spikes travel with their sign
    assert run_integer_ann(_fig2_net(DualThreshold()), x, quantized=True).levels["tgt"].tolist() == [[0]]


def test_dual_threshold_negative_threshold_and_net_count_condition():
    """No negative spike before a positive one; Theta_neg = -ceil(Theta/d) decides how low v must go."""
    inp = Input("x", (1,), scale=1.0, qmin=-10, qmax=10)
    pop = Population("p", (1,), neuron=DualThreshold(neg_divisor=2), threshold=6, v0=0, bias=0, levels=8)
    net = Network([inp, pop, Readout("r", (1,))],
                  [Dense("x->p", "x", "p", np.array([[1]]), 0, (1,), (1,)),
                   Dense("p->r", "p", "r", np.array([[1]]), 0, (1,), (1,))], 8)
    # constant negative current: v falls below Theta_neg = -3 at once, but the neuron never fired
    s = simulate(net, np.array([[-5]]), Schedule.PIPELINED, record=True, quantized=True)
    assert np.all(s.spikes["p"] == 0)


def test_dual_threshold_equals_if_in_the_layerwise_schedule(round4, digits):
    x, _ = digits
    for T in (2, 4, 8):
        a = simulate(compile_imported(round4, CompileConfig(timesteps=T)), x, Schedule.LAYERWISE, record=True)
        net_dt = compile_imported(round4, CompileConfig(timesteps=T, neuron="dual-threshold"))
        assert all(isinstance(p.neuron, DualThreshold) for p in net_dt.populations)
        b = simulate(net_dt, x, Schedule.LAYERWISE, record=True)
        for p in a.spikes:
            assert np.array_equal(a.spikes[p], b.spikes[p]), (T, p)
        # ... but not in the pipelined one, where it fires negative spikes and cuts the unevenness error
        pa = verify_against_ann(compile_imported(round4, CompileConfig(timesteps=T)), x, None, Schedule.PIPELINED, None)
        pb = verify_against_ann(net_dt, x, None, Schedule.PIPELINED, None)
        if T == 4:
            assert sum(L.rate_error for L in pb.layers) < sum(L.rate_error for L in pa.layers)
    neg = simulate(net_dt, x, Schedule.PIPELINED, record=True)
    assert any(np.any(t < 0) for t in neg.spikes.values())


def test_t_not_l_keeps_the_t_equals_l_parameters_and_rescales_rates(round4, digits):
    x, y = digits
    base = compile_imported(round4, CompileConfig())
    assert base.timesteps == 4 == base.metadata["levels"]
    for T in (1, 2, 8, 16):
        net = compile_imported(round4, CompileConfig(timesteps=T))
        assert net.timesteps == T and net.metadata["levels"] == 4
        for a, b in zip(base.populations, net.populations):
            same_scale = np.array_equal(a.threshold, b.threshold)
            if same_scale:  # the exponent can only shrink for larger T (state bound); then all else is equal
                assert np.array_equal(a.v0, b.v0) and np.array_equal(a.bias, b.bias)
        ro_b, ro_n = base.readouts[0], net.readouts[0]
        assert np.isclose(ro_n.scale * T, ro_b.scale * 4, rtol=1e-12)  # output = value * L / (S T)
        for schedule in Schedule:
            rep = verify_against_ann(net, x, y, schedule, None)
            assert rep.comparison == "rates" and rep.levels == 4
            assert 0 < rep.neurons_mismatched and all(0 <= L.rate_error <= 1 for L in rep.layers)
            if schedule is Schedule.LAYERWISE:  # the SNN still equals its own integer network at T, exactly
                assert rep.integer_network_mismatched == 0 and rep.ok
    # rates converge to the (finer) activations as T grows: the error at T = 16 is below T = 1's
    e = {T: verify_against_ann(compile_imported(round4, CompileConfig(timesteps=T)), x, y, Schedule.LAYERWISE, None)
         for T in (1, 16)}
    assert sum(L.rate_error for L in e[16].layers) < sum(L.rate_error for L in e[1].layers)


def test_integer_ann_at_tau_is_the_layerwise_snn_for_any_t(round4, digits):
    x, _ = digits
    for T in (3, 5):
        net = compile_imported(round4, CompileConfig(timesteps=T, neuron="dual-threshold", v0="half"))
        snn = simulate(net, x, Schedule.LAYERWISE)
        ann = run_integer_ann(net, x)
        for p in net.populations:
            assert np.array_equal(snn.counts[p.name], ann.levels[p.name])
        assert np.array_equal(snn.readout["readout"], ann.readout["readout"])


def test_bounds_count_signed_spikes():
    p_if = Population("a", (1,), threshold=3, levels=2)
    p_dt = dataclasses.replace(p_if, neuron=DualThreshold())
    assert value_range(p_if) == (0, 1) and value_range(p_dt) == (-1, 1)
    inp = Input("x", (1,), qmin=0, qmax=1)
    for pop, step in ((p_if, 3), (p_dt, 8)):
        # current = -5 * spike + 3: spikes 0/1 give [-2, 3]; a negative spike also gives +8
        tgt = Population("b", (1,), threshold=10, bias=3, levels=2)
        net = Network([inp, pop, tgt, Readout("r", (1,))],
                      [Dense("x->a", "x", "a", np.array([[1]]), 0, (1,), (1,)),
                       Dense("a->b", "a", "b", np.array([[-5]]), 0, (1,), (1,)),
                       Dense("b->r", "b", "r", np.array([[1]]), 0, (1,), (1,))], 2)
        b = {s.node: s for s in check_network(net, 24)}["b"]
        assert b.pipelined == 2 * step, (type(pop.neuron).__name__, b)


def test_config_round_trips_the_method_options():
    c = CompileConfig(timesteps=2, neuron="dual-threshold", v0="full", neg_divisor=500, schedule="pipelined")
    d = c.to_dict()
    assert d["neuron"] == "dual-threshold" and d["v0"] == "full" and d["neg_divisor"] == 500
    assert CompileConfig.from_dict(d) == c
    assert isinstance(c.neuron_model(), DualThreshold) and c.neuron_model().neg_divisor == 500
    assert isinstance(CompileConfig().neuron_model(), IFSoftReset)
    assert {m.value for m in V0Mode} == {"auto", "zero", "half", "full"}
    assert {n.value for n in NeuronKind} == {"if", "dual-threshold", "multi-threshold"}
    for bad in (dict(neuron="lif"), dict(v0="quarter"), dict(timesteps=0), dict(neg_divisor=0)):
        with pytest.raises(ValueError):
            CompileConfig(**bad)
