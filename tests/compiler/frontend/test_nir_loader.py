"""NIR import (compiler/frontend/nir_loader.py): round trips of snnc exports, foreign graphs checked
spike for spike against an independent float64 simulator of the NIR graph, and the refusals.

The independent simulator below steps a NIR graph as its nodes say (Affine/Linear/Conv2d via torch in
float64, pools, Scale, IF / non-leaking LIF with the chosen reset and comparison, outputs summed over
the steps); the imported network, run by snnc's reference simulator (pipelined), must fire the same
spikes and end with readout * scale equal to that sum.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from snnc.backends.nir import export_nir  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.compiler.api import compile_nir  # noqa: E402
from snnc.compiler.tools.cli import cli  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.errors import ModelLoadError, UnsupportedOperatorError  # noqa: E402
from snnc.compiler.frontend.nir_loader import NirReading  # noqa: E402
from snnc.compiler.frontend.nir_errors import NirImportError  # noqa: E402
from snnc.ir import load  # noqa: E402

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2] / "integration"))
from golden_networks import digest  # noqa: E402

SUB_GE = NirReading(reset="subtract", compare=">=", timesteps=5)
SUB_GT = NirReading(reset="subtract", compare=">", timesteps=5)


def _write(graph, tmp_path, name="g.nir"):
    p = tmp_path / name
    nir.write(str(p), graph)
    return p


def _import(graph, tmp_path, reading=SUB_GE, **cfg):
    return compile_nir(_write(graph, tmp_path), CompileConfig(schedule="pipelined", **cfg), reading)


# ---- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cnn", "resnet", "maxpool"])
def test_export_import_round_trip_is_identical(interop_bundles, tmp_path, name):
    net = load(interop_bundles[name])
    export_nir(net, tmp_path / "n.nir")
    back = compile_nir(tmp_path / "n.nir", CompileConfig(schedule=net.metadata["config"]["schedule"]))
    assert digest(back) == digest(net)
    assert [n.name for n in back.nodes] == [n.name for n in net.nodes]
    for a, b in zip(net.nodes + net.projections, back.nodes + back.projections):
        assert type(a) is type(b) and a.name == b.name
        for f, v in vars(a).items():
            w = getattr(b, f)
            if isinstance(v, np.ndarray):
                assert v.dtype == w.dtype and v.shape == w.shape, (a.name, f)
                np.testing.assert_array_equal(v, w)
            else:
                assert v == w, (a.name, f)
    assert {k: v for k, v in back.metadata.items() if k != "nir_import"} == net.metadata
    assert back.metadata["nir_import"]["snnc_export"] is True


def test_edited_export_is_refused(interop_bundles, tmp_path):
    export_nir(load(interop_bundles["cnn"]), tmp_path / "n.nir")
    g = nir.read(str(tmp_path / "n.nir"))
    g.nodes["fc1__readout"].weight[0, 0] += 128
    with pytest.raises(NirImportError, match="'fc1__readout'.*edited after export"):
        _import(g, tmp_path, NirReading())


# ---- an independent NIR simulator ------------------------------------------------------------

def _topo(g):
    keys, order = list(g.nodes), []
    while len(order) < len(keys):
        for k in keys:
            if k not in order and all(a in order for a, b in g.edges if b == k):
                order.append(k)
    return order


def run_nir(g, x, T, compare, gain_dt=1.0):
    """Step the NIR graph T times on input x (presented every step); float64. Returns (spikes by node
    (T, B, ...), output sums by node)."""
    F = torch.nn.functional
    order, preds = _topo(g), {k: [a for a, b in g.edges if b == k] for k in g.nodes}
    state, sums = {}, {}
    spikes = {k: [] for k, n in g.nodes.items() if type(n).__name__ in ("IF", "LIF", "CubaLIF")}
    for _ in range(T):
        out = {}
        for k in order:
            n, t = g.nodes[k], type(g.nodes[k]).__name__
            if t == "Input":
                out[k] = torch.as_tensor(x, dtype=torch.float64)
                continue
            h = sum(out[p] for p in preds[k])
            if t in ("Affine", "Linear"):
                W = torch.as_tensor(np.asarray(n.weight, np.float64))
                out[k] = h.reshape(h.shape[0], -1) @ W.T + (torch.as_tensor(np.asarray(n.bias, np.float64))
                                                            if t == "Affine" else 0)
            elif t == "Conv2d":
                out[k] = F.conv2d(h, torch.as_tensor(np.asarray(n.weight, np.float64)),
                                  torch.as_tensor(np.asarray(n.bias, np.float64)), tuple(int(s) for s in n.stride),
                                  tuple(int(p) for p in n.padding), tuple(int(d) for d in n.dilation), int(n.groups))
            elif t in ("SumPool2d", "AvgPool2d"):
                ks = tuple(int(v) for v in n.kernel_size)
                a = F.avg_pool2d(h, ks, tuple(int(v) for v in n.stride))
                out[k] = a * (ks[0] * ks[1]) if t == "SumPool2d" else a
            elif t == "Scale":
                out[k] = h * torch.as_tensor(np.asarray(n.scale, np.float64))
            elif t == "Flatten":
                out[k] = h.reshape(h.shape[0], -1)
            elif t in ("IF", "LIF", "CubaLIF"):
                # IF: v += r dt I; LIF (tau = r = inf): v += I; CubaLIF with tau_syn = dt: the synapse
                # passes w_in * I through in the same step, the membrane (tau_mem = r = inf) adds it
                gain = torch.as_tensor(np.asarray(n.r, np.float64)) * gain_dt if t == "IF" else \
                    (torch.as_tensor(np.asarray(n.w_in, np.float64)) if t == "CubaLIF" else 1.0)
                thr = torch.as_tensor(np.asarray(n.v_threshold, np.float64))
                v = state.get(k, torch.zeros_like(h)) + gain * h
                s = ((v > thr) if compare == ">" else (v >= thr)).to(torch.float64)
                state[k] = v - s * thr
                spikes[k].append(s.numpy())
                out[k] = s
            elif t == "I":
                state[k] = state.get(k, 0) + torch.as_tensor(np.asarray(n.r, np.float64)) * h
                out[k] = state[k]
            elif t == "Output":
                if preds[k] and type(g.nodes[preds[k][0]]).__name__ == "I":
                    sums[k] = h
                else:
                    sums[k] = sums.get(k, 0) + h
    return {k: np.stack(v) for k, v in spikes.items()}, {k: v.numpy() for k, v in sums.items()}


def _check_same(g, net, x, T, compare, readout_of):
    spikes, sums = run_nir(g, x, T, compare)
    ref = simulate(net, np.asarray(x).reshape((len(x),) + net.inputs[0].shape), "pipelined", record=True)
    assert sum(int(s.sum()) for s in spikes.values()) > 0
    for k, s in spikes.items():
        np.testing.assert_array_equal(ref.spikes[k].reshape(s.shape), s.astype(np.int8), err_msg=k)
    for out_key, ro in readout_of.items():
        r = net.node(ro)
        np.testing.assert_array_equal(ref.readout[ro] * r.scale, sums[out_key].reshape(ref.readout[ro].shape))


def _dense_graph(rng, thr1=1.5, thr2=2.0):
    W1 = rng.integers(-6, 7, (5, 6)) / 4.0
    b1 = rng.integers(-2, 3, 5) / 4.0
    W2 = rng.integers(-4, 5, (4, 5)) / 2.0
    W3 = rng.integers(-3, 4, (3, 4)).astype(np.float64)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    nodes = {"in": nir.Input(np.array([6])), "aff1": nir.Affine(f32(W1), f32(b1)),
             "lif1": nir.IF(r=f32(np.ones(5)), v_threshold=f32(np.full(5, thr1))),
             "lin2": nir.Linear(f32(W2)), "lif2": nir.IF(r=f32(np.ones(4)), v_threshold=f32([thr2, 1.0, 2.5, 3.0])),
             "aff3": nir.Affine(f32(W3), f32(np.zeros(3))), "out": nir.Output(np.array([3]))}
    edges = [("in", "aff1"), ("aff1", "lif1"), ("lif1", "lin2"), ("lin2", "lif2"), ("lif2", "aff3"), ("aff3", "out")]
    return nir.NIRGraph(nodes, edges)


@pytest.mark.parametrize("compare", [">=", ">"])
def test_foreign_dense_graph_matches_the_nir_semantics(tmp_path, compare):
    rng = np.random.default_rng(1)
    g = _dense_graph(rng)
    net = _import(g, tmp_path, NirReading(reset="subtract", compare=compare, timesteps=6))
    rec = net.metadata["nir_import"]
    assert rec["snnc_export"] is False and rec["scale_bits"] == {"lif1": 2, "lif2": 1}  # 1/4 and 1/2 steps
    assert net.node("lif1").threshold.tolist() == 6 and net.node("lif1").v0 == (-1 if compare == ">" else 0)
    x = rng.integers(0, 4, (20, 6))
    _check_same(g, net, x, 6, compare, {"out": "out"})


@pytest.mark.parametrize("start_dim", [0, 1])   # NIR's batch-free convention, or the batch-counting one
def test_foreign_conv_graph_with_batch_dim_pool_scale_and_integrator(tmp_path, start_dim):
    rng = np.random.default_rng(2)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    nodes = {
        "in": nir.Input(np.array([1, 1, 6, 6])),   # a batch dimension in the Input's shape
        "conv": nir.Conv2d((6, 6), f32(rng.integers(-3, 4, (2, 1, 3, 3))), 1, 1, 1, 1, f32([0.5, -0.5])),
        "if1": nir.IF(r=f32(np.ones((2, 6, 6))), v_threshold=f32(np.full((2, 6, 6), 2.0))),
        "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
        "scale": nir.Scale(f32(np.full((2, 3, 3), 0.5))),
        "lif2": nir.LIF(tau=f32(np.full((2, 3, 3), np.inf)), r=f32(np.full((2, 3, 3), np.inf)),
                        v_leak=f32(np.zeros((2, 3, 3))), v_threshold=f32(np.full((2, 3, 3), 1.0))),
        "flat": nir.Flatten(np.array([2, 3, 3]), start_dim=start_dim),
        "fc": nir.Affine(f32(rng.integers(-2, 3, (4, 18))), f32(np.zeros(4))),
        "integ": nir.I(r=f32(np.ones(4))), "out": nir.Output(np.array([4])),
    }
    edges = [("in", "conv"), ("conv", "if1"), ("if1", "pool"), ("pool", "scale"), ("scale", "lif2"),
             ("lif2", "flat"), ("flat", "fc"), ("fc", "integ"), ("integ", "out")]
    g = nir.NIRGraph(nodes, edges, type_check=False)
    net = _import(g, tmp_path, SUB_GE)
    assert net.inputs[0].shape == (1, 6, 6)
    assert [type(p).__name__ for p in net.projections] == ["Conv2d", "SumPool2d", "Dense"]
    x = rng.integers(0, 4, (12, 1, 6, 6))
    spikes, sums = run_nir(g, x, 5, ">=")
    ref = simulate(net, x, "pipelined", record=True)
    for k in ("if1", "lif2"):
        np.testing.assert_array_equal(ref.spikes[k], spikes[k].astype(np.int8))
    np.testing.assert_array_equal(ref.readout["integ"] * net.node("integ").scale, sums["out"])


def test_identity_edge_and_avgpool(tmp_path):
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    rng = np.random.default_rng(3)
    nodes = {"in": nir.Input(np.array([2, 4, 4])),
             "conv": nir.Conv2d((4, 4), f32(rng.integers(-2, 3, (2, 2, 1, 1))), 1, 0, 1, 1, f32([0, 0])),
             "a": nir.IF(r=f32(np.ones((2, 4, 4))), v_threshold=f32(np.full((2, 4, 4), 3.0))),
             "avg": nir.AvgPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
             "b": nir.IF(r=f32(np.ones((2, 2, 2))), v_threshold=f32(np.full((2, 2, 2), 0.5))),
             "c": nir.IF(r=f32(np.ones((2, 2, 2))), v_threshold=f32(np.full((2, 2, 2), 1.0))),
             "out": nir.Output(np.array([2, 2, 2]))}
    edges = [("in", "conv"), ("conv", "a"), ("a", "avg"), ("avg", "b"), ("b", "c"), ("c", "out")]
    g = nir.NIRGraph(nodes, edges, type_check=False)
    net = _import(g, tmp_path, SUB_GT)
    x = rng.integers(0, 4, (10, 2, 4, 4))
    _check_same(g, net, x, 5, ">", {"out": "out"})


# ---- refusals --------------------------------------------------------------------------------

def test_reset_compare_and_steps_are_explicit(tmp_path):
    g = _dense_graph(np.random.default_rng(0))
    with pytest.raises(NirImportError, match="--nir-reset subtract or zero"):
        _import(g, tmp_path, NirReading(compare=">", timesteps=4))
    with pytest.raises(NirImportError, match="--nir-compare gt or ge"):
        _import(g, tmp_path, NirReading(reset="subtract", timesteps=4))
    with pytest.raises(NirImportError, match="--timesteps"):
        _import(g, tmp_path, NirReading(reset="subtract", compare=">"))
    with pytest.raises(NirImportError, match=r"--nir-reset zero: neurons \['lif1', 'lif2'\].*cannot be imported exactly"):
        _import(g, tmp_path, NirReading(reset="zero", compare=">", timesteps=4))


def test_weights_off_the_grid_say_how_far(tmp_path):
    g = _dense_graph(np.random.default_rng(0))
    g.nodes["aff1"].weight[0, 0] = np.float32(0.1)
    with pytest.raises(NirImportError, match="'lif1'.*not integers nor integer mantissas.*grid steps"):
        _import(g, tmp_path)
    g = _dense_graph(np.random.default_rng(0))
    g.nodes["aff3"].weight[0, 0] = np.float32(1001)
    with pytest.raises(NirImportError, match="'aff3'.*up to \\|1001\\| need a 11-bit signed mantissa.*8-bit"):
        _import(g, tmp_path)


@pytest.mark.parametrize("change, match", [
    (lambda g: setattr(g.nodes["lif1"], "v_reset", np.full(5, 0.5, np.float32)), "v_reset = 0.5"),
    (lambda g: g.nodes.__setitem__("lif1", nir.LIF(tau=np.full(5, 20.0, np.float32), r=np.ones(5, np.float32),
                                                   v_leak=np.zeros(5, np.float32), v_threshold=np.ones(5, np.float32))),
     "'lif1': LIF leaks"),
])
def test_inexpressible_neurons_are_refused(tmp_path, change, match):
    g = _dense_graph(np.random.default_rng(0))
    change(g)
    with pytest.raises(NirImportError, match=match):
        _import(g, tmp_path)


def test_delay_two_maps_and_unknown_nodes_are_refused(tmp_path):
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    base = lambda mid: nir.NIRGraph(  # noqa: E731
        {"in": nir.Input(np.array([3])), **mid, "n": nir.IF(r=f32(np.ones(3)), v_threshold=f32(np.ones(3))),
         "out": nir.Output(np.array([3]))},
        [("in", next(iter(mid))), *[(a, b) for a, b in zip(list(mid), list(mid)[1:])], (list(mid)[-1], "n"),
         ("n", "out")], type_check=False)
    with pytest.raises(NirImportError, match="'d': Delay of 2 step"):
        _import(base({"d": nir.Delay(f32(np.full(3, 2)))}), tmp_path)
    with pytest.raises(NirImportError, match="two linear maps in a row"):
        _import(base({"l1": nir.Linear(f32(np.eye(3))), "l2": nir.Linear(f32(np.eye(3)))}), tmp_path)
    with pytest.raises(UnsupportedOperatorError, match="'t' \\(op_type Threshold\\)"):
        _import(base({"t": nir.Threshold(f32(np.ones(3)))}), tmp_path)


def test_not_a_nir_file(tmp_path):
    p = tmp_path / "x.nir"
    p.write_bytes(b"\x89HDF\r\n\x1a\nnot really")
    with pytest.raises(ModelLoadError, match="not a readable NIR file"):
        compile_nir(p)


# ---- the command -----------------------------------------------------------------------------

def test_cli_compiles_a_nir_file(interop_bundles, tmp_path):
    g = _dense_graph(np.random.default_rng(5))
    path = _write(g, tmp_path)
    r = CliRunner().invoke(cli, ["compile", str(path), "-o", str(tmp_path / "f.snnc")])
    assert r.exit_code == 2 and "--nir-reset" in r.output
    r = CliRunner().invoke(cli, ["compile", str(path), "-o", str(tmp_path / "f.snnc"), "--nir-reset", "subtract",
                                 "--nir-compare", "gt", "--timesteps", "4"])
    assert r.exit_code == 0, r.output
    assert "reset subtract, spike at v > threshold" in r.output and "scaled by 2^k" in r.output
    net = load(tmp_path / "f.snnc")
    assert net.metadata["config"]["schedule"] == "pipelined" and net.metadata["source_model"]["format"] == "nir"
    assert net.metadata["placement"]["cores_used"] >= 1
    r = CliRunner().invoke(cli, ["compile", str(path), "-o", str(tmp_path / "f.snnc"), "--neuron", "dual-threshold"])
    assert r.exit_code == 2 and "--neuron does not apply to a NIR graph" in r.output
    r = CliRunner().invoke(cli, ["simulate", str(tmp_path / "f.snnc"), "--samples", "4"])
    assert r.exit_code == 0, r.output
    export_nir(load(interop_bundles["cnn"]), tmp_path / "c.nir")
    r = CliRunner().invoke(cli, ["compile", str(tmp_path / "c.nir"), "-o", str(tmp_path / "c.snnc")])
    assert r.exit_code == 0 and "an snnc export: its bundle restored" in r.output


def test_cubalif_without_memory_is_imported_and_with_memory_refused(tmp_path):
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    rng = np.random.default_rng(7)

    def graph(tau_syn):
        n = 4
        nodes = {"in": nir.Input(np.array([3])), "aff": nir.Affine(f32(rng.integers(-3, 4, (n, 3))), f32(np.ones(n))),
                 "cuba": nir.CubaLIF(tau_syn=f32(np.full(n, tau_syn)), tau_mem=f32(np.full(n, np.inf)),
                                     r=f32(np.full(n, np.inf)), v_leak=f32(np.zeros(n)),
                                     v_threshold=f32(np.full(n, 3.0)), w_in=f32(np.full(n, 2.0))),
                 "ro": nir.Affine(f32(rng.integers(-2, 3, (2, n))), f32(np.zeros(2))), "out": nir.Output(np.array([2]))}
        return nir.NIRGraph(nodes, [("in", "aff"), ("aff", "cuba"), ("cuba", "ro"), ("ro", "out")])

    g = graph(1.0)
    net = _import(g, tmp_path, SUB_GE)
    _check_same(g, net, rng.integers(0, 4, (15, 3)), 5, ">=", {"out": "out"})
    with pytest.raises(NirImportError, match="'cuba': CubaLIF's synaptic current keeps 0.8 of itself"):
        _import(graph(5.0), tmp_path, SUB_GE)
