"""A network read from a bundle is checked against its target's formats (compiler/targets/conformance.py):
every network the compiler makes passes (no false refusals), and each format violation is refused by
name, including the int64 overflow the bounds proof could not see."""

import dataclasses

import numpy as np
import pytest

from snnc.compiler.bundles import SourceMismatchError, check_source, load_bundle
from snnc.compiler.targets import load_target
from snnc.compiler.targets.conformance import FormatError, check_formats, coarse_state_bound
from snnc.ir import Network, replace, save

from golden_networks import cases


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every kind of network the compiler makes (the golden set: zoo, QDQ, QONNX, training-free, mixed L),
    one zoo model instead of nine."""
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.runner import reference_runner

    tmp = tmp_path_factory.mktemp("conf")
    out = {}
    for name, path, kw in cases(tmp):
        if name.startswith("zoo_") and name != "zoo_round_L4":
            continue
        net, raw = compile_model(path, CompileConfig(**kw), runner=reference_runner)
        out[name] = (net, raw, path)
    return out


def test_every_compiled_network_conforms_and_round_trips(compiled, tmp_path):
    assert len(compiled) >= 15
    for name, (net, raw, _path) in compiled.items():
        rep = check_formats(net, source=name)
        assert rep.checked and rep.target.name == net.metadata["target"]["name"]
        assert rep.worst_state <= rep.target.numeric.state_max
        p = save(net, tmp_path / f"{name}.snnc", {"onnx_model": np.frombuffer(raw, np.uint8)})
        b = load_bundle(p)
        assert b.formats.checked and b.network.timesteps == net.timesteps


def test_source_check(compiled, tmp_path):
    net, raw, path = compiled["qcfs_cnn"]
    p = save(net, tmp_path / "b.snnc")
    b = load_bundle(p)
    check_source(b, path)
    _, _, other = compiled["resnet_digits"]
    with pytest.raises(SourceMismatchError, match="is not the model"):
        check_source(b, other)


def _edited(net: Network, node: str, **changes) -> Network:
    nodes = [replace(n, **changes) if n.name == node else n for n in net.nodes]
    projs = [replace(p, **changes) if p.name == node else p for p in net.projections]
    return Network(nodes, projs, net.timesteps, net.metadata, net.coding)


@pytest.fixture
def cnn(compiled):
    return compiled["qcfs_cnn"][0]


def _proj(net):
    return net.projections[0].name


def _pop(net):
    return net.populations[0].name


@pytest.mark.parametrize("make,msg", [
    (lambda n: _edited(n, _proj(n), weight=np.where(np.arange(n.projections[0].weight.size).reshape(
        n.projections[0].weight.shape) == 0, 1000, n.projections[0].weight)), r"weights .*1000 do not fit .* 8-bit"),
    (lambda n: _edited(n, _proj(n), exponent=9), "exponent 9 is outside"),
    (lambda n: _edited(n, _pop(n), bias=np.full(n.populations[0].shape[0], 10 ** 9)), "bias 1000000000 is not a value"),
    (lambda n: _edited(n, _pop(n), bias=np.full(n.populations[0].shape[0], 4097)), "bias 4097 is not a value"),
    (lambda n: _edited(n, _pop(n), threshold=np.full(n.populations[0].shape[0], 2 ** 30)), "threshold 1073741824 exceeds"),
    (lambda n: _edited(n, _pop(n), threshold=np.full(n.populations[0].shape[0], 2 ** 62)), "threshold .* exceeds"),
    (lambda n: _edited(n, _pop(n), v0=np.full(n.populations[0].shape[0], -(2 ** 40))), "initial potential"),
    (lambda n: _edited(n, _pop(n), timesteps=10 ** 6), "own timesteps 1000000 exceed"),
    (lambda n: _edited(n, n.inputs[0].name, qmax=70000), "does not fit the target loihi's 8-bit input"),
])
def test_format_violations_are_refused_by_name(cnn, make, msg):
    with pytest.raises(FormatError, match=msg) as e:
        check_formats(make(cnn), source="b.snnc")
    assert "b.snnc" in str(e.value) and "\n" not in str(e.value)


def test_the_stored_target_is_validated(cnn):
    md = dict(cnn.metadata)
    md["target"] = {**md["target"], "numeric": {**md["target"]["numeric"], "state_bits": 80}}
    with pytest.raises(FormatError, match=r"\[numeric\] state_bits = 80 is out of range"):
        check_formats(Network(cnn.nodes, cnn.projections, cnn.timesteps, md, cnn.coding), source="b.snnc")
    md["target"] = {**md["target"], "bogus": 1}
    with pytest.raises(FormatError, match="unknown key 'bogus'"):
        check_formats(Network(cnn.nodes, cnn.projections, cnn.timesteps, md, cnn.coding), source="b.snnc")


def test_a_network_without_a_target_is_reported_unchecked(cnn):
    md = {k: v for k, v in cnn.metadata.items() if k != "target"}
    rep = check_formats(Network(cnn.nodes, cnn.projections, cnn.timesteps, md, cnn.coding))
    assert not rep.checked and "not checked" in rep.note


def test_state_overflow_is_the_compilers_proof(cnn):
    big_T = Network(cnn.nodes, cnn.projections, 4000, cnn.metadata, cnn.coding)
    with pytest.raises(FormatError, match="overflow the 24-bit"):
        check_formats(big_T, source="b.snnc")


def test_int64_wrap_in_the_bounds_is_refused_before_the_proof_runs(cnn):
    """threshold 2^60 on a 62-bit target with T = 64: T * Theta = 2^66 wraps int64 in the bounds proof
    (it would read as a small number); the Python-integer pre-check refuses it."""
    wide = dataclasses.replace(load_target("loihi"), numeric=dataclasses.replace(
        load_target("loihi").numeric, state_bits=62))
    net = _edited(cnn, _pop(cnn), threshold=np.full(cnn.populations[0].shape[0], 2 ** 60))
    net = Network(net.nodes, net.projections, 64, net.metadata, net.coding)
    assert coarse_state_bound(net) >= 2 ** 62
    with pytest.raises(FormatError, match="cannot be proven in 64-bit arithmetic"):
        check_formats(net, wide, source="b.snnc")
