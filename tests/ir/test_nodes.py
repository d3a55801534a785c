import numpy as np
import pytest

from snnc.ir import (
    CODINGS, NEURON_MODELS, NODE_TYPES, PROJECTION_TYPES, BundleError, Conv2d, Dense, DifferentialCoding,
    DualThreshold, GradedMaxPool, IFSoftReset, MultiThreshold, Input, IRValidationError, Network,
    Population, Readout, SumPool2d, load, save,
)
from snnc.ir.bundle import HEADER_KEY, VERSION, load_header, to_bytes


def small_net(T=4):
    i = Input("x", (2, 6, 6), scale=0.5, qmin=0, qmax=15)
    c = Conv2d("x->c", "x", "c", np.arange(-18, 18).reshape(2, 2, 3, 3), 1, (2, 6, 6), (2, 3, 3),
               stride=(2, 2), padding=(1, 1, 1, 1))
    pop = Population("c", (2, 3, 3), neuron=IFSoftReset(), threshold=[7, 9], v0=[3, 4], bias=[-1, 2], levels=T,
                     real_threshold=[0.5, 0.7])
    sp = SumPool2d("c->p", "c", "p", 3, 0, (2, 3, 3), (2, 2, 2), kernel=(2, 2), stride=(1, 1))
    p2 = Population("p", (2, 2, 2), neuron=DualThreshold(neg_divisor=4), threshold=5, v0=2, bias=0, levels=T)
    d = Dense("p->r", "p", "r", np.arange(24).reshape(3, 8) - 12, 2, (2, 2, 2), (3,))
    r = Readout("r", (3,), v0=[1, 2, 3], bias=-1, scale=0.25)
    return Network([i, pop, p2, r], [c, sp, d], T, {"note": "test"})


def small_diff_net(T=4):
    """Differential coding with multi-threshold neurons (both ReLU and identity)."""
    i = Input("x", (3,), scale=0.5, qmin=-7, qmax=7, rounding="half_even")
    h = Population("h", (4,), neuron=MultiThreshold(n=3, relu=True), threshold=[8, 16, 4, 12], v0=[1, 0, -2, 3], levels=T)
    o = Population("o", (2,), neuron=MultiThreshold(n=1, relu=False), threshold=5, v0=0, levels=T)
    r = Readout("r", (2,), v0=[3, -1])
    projs = [Dense("x->h", "x", "h", np.arange(12).reshape(4, 3) - 6, 0, (3,), (4,)),
             Dense("h->o", "h", "o", np.arange(8).reshape(2, 4) - 4, 1, (4,), (2,)),
             Dense("o->r", "o", "r", np.eye(2, dtype=np.int64), 0, (2,), (2,))]
    return Network([i, h, o, r], projs, T, {"note": "diff"}, DifferentialCoding(frac_bits=10))


def small_graded_net(T=3):
    """A graded max-pool unit on a multi-threshold population (docs/ir.md, "Graded max-pool unit")."""
    i = Input("x", (2, 4, 4), scale=0.5, qmin=0, qmax=7)
    c = Conv2d("x->c", "x", "c", np.ones((2, 2, 1, 1), np.int64), 0, (2, 4, 4), (2, 4, 4))
    pop = Population("c", (2, 4, 4), neuron=MultiThreshold(n=2), threshold=[4, 6], levels=T)
    g = GradedMaxPool("g", (2, 2, 2), in_shape=(2, 4, 4), max_message=2)
    e = SumPool2d("c->g", "c", "g", 1, 0, (2, 4, 4), (2, 2, 2))
    d = Dense("g->r", "g", "r", np.ones((3, 8), np.int64), 0, (2, 2, 2), (3,))
    return Network([i, pop, g, Readout("r", (3,))], [c, e, d], T)


def small_mixed_net(T=5):
    """Mixed quantization levels: populations with their own layerwise steps (Population.timesteps)."""
    net = small_net(T)
    nodes = [Population(n.name, n.shape, neuron=n.neuron, threshold=n.threshold, v0=n.v0, bias=n.bias, levels=L,
                        real_threshold=n.real_threshold, timesteps=L) if isinstance(n, Population) else n
             for n, L in zip(net.nodes, [None, 5, 2, None])]
    return Network(nodes, net.projections, T, {"note": "mixed"})


def test_round_trip_every_node_type(tmp_path):
    from transformer_nets import transformer_block

    nets = [small_net(), small_diff_net(), small_graded_net(), small_mixed_net(), transformer_block()]
    types = {type(n).__name__ for net in nets for n in net.nodes + net.projections}
    assert types == set(NODE_TYPES) | set(PROJECTION_TYPES)  # the fixtures cover every registered type,
    assert {type(p.neuron).__name__ for net in nets for p in net.populations} == set(NEURON_MODELS)  # neuron
    assert {type(net.coding).__name__ for net in nets} == set(CODINGS)  # model and coding
    for k, net in enumerate(nets):
        save(net, tmp_path / f"n{k}.snnc")
        _assert_same(net, load(tmp_path / f"n{k}.snnc"))


def _assert_same(net, back):
    assert back.timesteps == net.timesteps and back.metadata == net.metadata and back.coding == net.coding
    for a, b in zip(net.nodes + net.projections, back.nodes + back.projections):
        assert type(a) is type(b)
        for k, v in vars(a).items():
            if k.startswith("_"):
                continue
            w = getattr(b, k)
            if isinstance(v, np.ndarray):
                assert np.array_equal(v, w) and v.dtype == w.dtype, k
            else:
                assert v == w, k


def test_population_timesteps_is_optional_validated_and_not_written_when_unset(tmp_path):
    import json

    net = small_mixed_net()
    assert [p.timesteps for p in net.populations] == [5, 2] and net.mixed_steps == {"c": 5, "p": 2}
    assert net.steps("p") == 2 and small_net().mixed_steps == {} and small_net().steps("c") == 4
    for bad in (0, -1, 1.5, True):
        with pytest.raises(IRValidationError, match="timesteps"):
            Population("q", (2,), timesteps=bad)
    save(small_net(), tmp_path / "u.snnc")   # unset: no "timesteps" field at all (bundles as before)
    h = json.loads(bytes(np.load(tmp_path / "u.snnc")[HEADER_KEY]).decode())
    assert all("timesteps" not in e["fields"] for e in h["nodes"])
    save(net, tmp_path / "m.snnc")           # set: written, loaded back
    h = json.loads(bytes(np.load(tmp_path / "m.snnc")[HEADER_KEY]).decode())
    assert [e["fields"].get("timesteps") for e in h["nodes"]] == [None, 5, 2, None]
    assert [p.timesteps for p in load(tmp_path / "m.snnc").populations] == [5, 2]
    assert [p.timesteps for p in load(tmp_path / "u.snnc").populations] == [None, None]
    with pytest.raises(IRValidationError, match="'p' L=2.*layerwise"):
        net.check_schedule("pipelined")
    net.check_schedule("layerwise")
    small_net().check_schedule("pipelined")


def test_bundle_loads_with_numpy_alone(tmp_path):
    import json

    save(small_net(), tmp_path / "n.snnc")
    z = np.load(tmp_path / "n.snnc", allow_pickle=False)
    header = json.loads(bytes(z[HEADER_KEY]).decode())
    assert header["format"] == "snnc-bundle" and header["version"] == VERSION
    key = header["nodes"][1]["arrays"]["threshold"]
    assert z[key].tolist() == [7, 9]


def test_bundle_refuses_other_version_and_garbage(tmp_path):
    import json

    p = tmp_path / "n.snnc"
    save(small_net(), p)
    z = dict(np.load(p))
    h = json.loads(bytes(z[HEADER_KEY]).decode())
    h["version"] = 99
    z[HEADER_KEY] = np.frombuffer(json.dumps(h).encode(), np.uint8)
    np.savez(tmp_path / "v99.npz", **z)
    with pytest.raises(BundleError, match="version 99"):
        load_header(tmp_path / "v99.npz")
    (tmp_path / "junk.snnc").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not an snnc bundle"):
        load(tmp_path / "junk.snnc")
    with pytest.raises(BundleError, match="does not exist"):
        load(tmp_path / "missing.snnc")
    assert to_bytes(small_net())[:2] == b"PK"


def test_save_is_atomic_and_reports_missing_folder(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        save(small_net(), tmp_path / "nope" / "n.snnc")
    assert not (tmp_path / "nope").exists()
    save(small_net(), tmp_path / "n.snnc")
    assert [p.name for p in tmp_path.iterdir()] == ["n.snnc"]  # no temporary file left behind


@pytest.mark.parametrize("kwargs,msg", [
    (dict(threshold=[1, 0]), "threshold must be > 0"),
    (dict(threshold=[1.5, 2]), "integer-valued"),
    (dict(v0=[np.nan, 1.0]), "NaN"),
    (dict(threshold=[1, 2, 3]), "threshold has shape"),
    (dict(levels=0), "levels"),
    (dict(neuron="if"), "neuron must be one of"),
])
def test_population_validation_names_node(kwargs, msg):
    base = dict(threshold=[1, 2], v0=0, bias=0, levels=2)
    base.update(kwargs)
    with pytest.raises(IRValidationError, match=msg) as e:
        Population("layer7", (2, 3), **base)
    assert "layer7" in str(e.value)


def test_projection_geometry_is_checked():
    with pytest.raises(IRValidationError, match="conv geometry"):
        Conv2d("bad", "a", "b", np.ones((2, 1, 3, 3)), 0, (1, 5, 5), (2, 5, 5))
    with pytest.raises(IRValidationError, match="inputs"):
        Dense("bad", "a", "b", np.ones((3, 4)), 0, (5,), (3,))
    with pytest.raises(IRValidationError, match="exponent"):
        Dense("bad", "a", "b", np.ones((3, 4)), -1, (4,), (3,))
    with pytest.raises(IRValidationError, match="groups"):
        Conv2d("bad", "a", "b", np.ones((3, 1, 1, 1)), 0, (2, 2, 2), (3, 2, 2), groups=2)


def test_network_validation():
    net = small_net()
    nodes, projs = net.nodes, net.projections
    with pytest.raises(IRValidationError, match="dangling"):
        Network(nodes, projs[:2], 4)
    with pytest.raises(IRValidationError, match="not a node"):
        Network(nodes, projs + [Dense("q", "zz", "r", np.ones((3, 8)), 0, (8,), (3,))], 4)
    with pytest.raises(IRValidationError, match="Readout"):
        Network(nodes, projs + [Dense("q", "r", "p", np.ones((8, 3)), 0, (3,), (2, 2, 2))], 4)
    with pytest.raises(IRValidationError, match="duplicate"):
        Network(nodes + [Readout("r", (3,))], projs, 4)
    with pytest.raises(IRValidationError, match="cycle"):
        back = Dense("p->c", "p", "c", np.ones((18, 8)), 0, (2, 2, 2), (2, 3, 3))
        Network(nodes, projs + [back], 4)
    with pytest.raises(IRValidationError, match="timesteps"):
        Network(nodes, projs, 0)


def test_conv_synapse_count_is_honest_about_borders():
    c = Conv2d("c", "a", "b", np.ones((1, 1, 3, 3)), 0, (1, 3, 3), (1, 3, 3), padding=(1, 1, 1, 1))
    # brute force: count (output, kernel offset) pairs that land inside the 3x3 input
    n = sum(1 for y in range(3) for x in range(3) for i in range(3) for j in range(3)
            if 0 <= y + i - 1 < 3 and 0 <= x + j - 1 < 3)
    assert c.num_synapses == n == 49


def test_dual_threshold_negative_threshold_is_integer_ceiling():
    m = DualThreshold()  # the paper's theta' = -theta/1000
    assert m.negative_threshold(np.array([1, 999, 1000, 1001, 2500])).tolist() == [-1, -1, -1, -2, -3]
    assert DualThreshold(neg_divisor=1).negative_threshold(np.array([7])).tolist() == [-7]
    for bad in (0, -3, 2.5, True, "4"):
        with pytest.raises(IRValidationError, match="neg_divisor"):
            DualThreshold(neg_divisor=bad)


def test_multi_threshold_needs_integer_thresholds_and_differential_needs_it():
    with pytest.raises(IRValidationError, match="multiples of 2\\^\\(n-1\\) = 4"):
        Population("h", (2,), neuron=MultiThreshold(n=3), threshold=[8, 6], levels=2)
    for bad in (0, 17, 2.0, True):
        with pytest.raises(IRValidationError, match="n \\(thresholds per sign\\)"):
            MultiThreshold(n=bad)
    net = small_net()
    with pytest.raises(IRValidationError, match="differential coding needs multi-threshold neurons"):
        Network(net.nodes, net.projections, 4, coding=DifferentialCoding())
    d = DifferentialCoding(frac_bits=4)
    assert [d.reciprocal(t) for t in (1, 2, 3, 5, 6, 16, 32)] == [16, 8, 5, 3, 3, 1, 1]  # round(16/t), halves up
    with pytest.raises(IRValidationError, match="frac_bits"):
        DifferentialCoding(frac_bits=31)
