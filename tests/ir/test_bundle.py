"""The generic bundle codec (ir/bundle.py) round-trips every registered node, projection, neuron model
and coding, field for field and array for array (dtype and shape included).

Each registry entry needs a case below: a new type registered without one fails
``test_every_registered_type_has_a_round_trip_case`` (add it here when you add a type)."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest

from snnc.ir import (CODINGS, NEURON_MODELS, NODE_TYPES, PROJECTION_TYPES, BundleError, Conv2d, Dense,
                     DifferentialCoding, DualThreshold, GradedMaxPool, IFSoftReset, Input, MultiThreshold, Network,
                     Population, RateCoding, Readout, SumPool2d, load, load_with_extras, save)
from snnc.ir.bundle import to_bytes


def _base(neuron=None, pop_timesteps=None):
    """input (2, 4, 4) -> conv -> population (3, 4, 4) -> dense -> readout (5,)."""
    neuron = neuron or IFSoftReset()
    thr = np.array([2, 4, 6]) * getattr(neuron, "unit_divisor", 1)
    nodes = [Input("in", (2, 4, 4), scale=0.25, qmin=0, qmax=15, rounding="half_even"),
             Population("pop", (3, 4, 4), neuron=neuron, threshold=thr, v0=np.array([0, 1, 2]),
                        bias=np.array(-1), levels=3, real_threshold=np.array([0.5, 1.0, 1.5]), timesteps=pop_timesteps),
             Readout("ro", (5,), v0=np.arange(5), bias=np.array(0), scale=0.125)]
    projs = [Conv2d("in->pop", "in", "pop", np.arange(54).reshape(3, 2, 3, 3) - 27, 2, (2, 4, 4), (3, 4, 4),
                    stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1),
             Dense("pop->ro", "pop", "ro", (np.arange(5 * 48).reshape(5, 48) % 7) - 3, 1, (3, 4, 4), (5,))]
    return nodes, projs


def _with_sum_pool():
    nodes, projs = _base()
    nodes = nodes[:2] + [Population("pool", (3, 2, 2), threshold=np.array(4), levels=3), Readout("ro", (5,))]
    projs = projs[:1] + [SumPool2d("pop->pool", "pop", "pool", np.array(2), 0, (3, 4, 4), (3, 2, 2),
                                   kernel=(2, 2), stride=(2, 2)),
                         Dense("pool->ro", "pool", "ro", np.ones((5, 12), np.int64), 0, (3, 2, 2), (5,))]
    return Network(nodes, projs, 3)


def _with_graded_max_pool():
    neuron = MultiThreshold(n=2, relu=True)
    nodes, projs = _base(neuron)
    nodes[1] = Population("pop", (3, 4, 4), neuron=neuron, threshold=np.array([2, 4, 6]), v0=np.array(0),
                          bias=np.array(0), levels=4, real_threshold=np.array(1.0))
    unit = GradedMaxPool("gmp", (3, 2, 2), in_shape=(3, 4, 4), kernel=(2, 2), stride=(2, 2), max_message=2)
    edge = SumPool2d("pop->gmp", "pop", "gmp", np.array(1), 0, (3, 4, 4), (3, 2, 2), kernel=(2, 2), stride=(2, 2))
    ro = Readout("ro", (5,), scale=0.5)
    out = Dense("gmp->ro", "gmp", "ro", np.ones((5, 12), np.int64), 0, (3, 2, 2), (5,))
    return Network(nodes[:2] + [unit, ro], projs[:1] + [edge, out], 4, coding=DifferentialCoding(frac_bits=7))


def _transformer(coding=None):
    from transformer_nets import transformer_block

    return transformer_block(coding)


#: one network per registered type that holds it (node, projection, neuron model, coding)
CASES = {
    "GradedElementwise": _transformer,
    "GradedLayerNorm": _transformer,
    "GradedSoftmax": _transformer,
    "GradedMatMul": lambda: _transformer(RateCoding()),
    "Input": lambda: Network(*_base(), 3),
    "Population": lambda: Network(*_base(pop_timesteps=2), 3),
    "Readout": lambda: Network(*_base(), 3),
    "GradedMaxPool": _with_graded_max_pool,
    "Dense": lambda: Network(*_base(), 3),
    "Conv2d": lambda: Network(*_base(), 3),
    "SumPool2d": _with_sum_pool,
    "IFSoftReset": lambda: Network(*_base(IFSoftReset()), 3),
    "DualThreshold": lambda: Network(*_base(DualThreshold(neg_divisor=7)), 3),
    "MultiThreshold": lambda: Network(*_base(MultiThreshold(n=3, relu=False)), 3),
    "RateCoding": lambda: Network(*_base(), 3, coding=RateCoding()),
    "DifferentialCoding": _with_graded_max_pool,
}


def test_every_registered_type_has_a_round_trip_case():
    registered = set(NODE_TYPES) | set(PROJECTION_TYPES) | set(NEURON_MODELS) | set(CODINGS)
    assert registered == set(CASES), f"add a round-trip case for {sorted(registered - set(CASES))}"


def _same(a, b, where):
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, (where, a, b)


def _assert_round_trip(net: Network, back: Network) -> None:
    assert back.timesteps == net.timesteps and back.coding == net.coding and back.metadata == net.metadata
    assert [n.name for n in back.nodes] == [n.name for n in net.nodes]
    for a, b in zip(net.nodes + net.projections, back.nodes + back.projections):
        _same(a, b, a.name)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_round_trip_through_the_file(kind, tmp_path):
    net = CASES[kind]()
    net.metadata = {"case": kind, "layers": [{"layer": "pop", "lambda": 0.5}]}
    assert any(type(o).__name__ == kind for o in net.nodes + net.projections) or kind in (
        type(net.coding).__name__, *(type(p.neuron).__name__ for p in net.populations))
    extra = {"onnx_model": np.frombuffer(b"model bytes", np.uint8)}
    save(net, tmp_path / "m.snnc", extra)
    back, extras = load_with_extras(tmp_path / "m.snnc")
    _assert_round_trip(net, back)
    np.testing.assert_array_equal(extras["onnx_model"], extra["onnx_model"])


@pytest.mark.parametrize("kind", sorted(CASES))
def test_round_trip_in_memory(kind, tmp_path):
    net = CASES[kind]()
    p = tmp_path / "b.snnc"
    p.write_bytes(to_bytes(net))
    _assert_round_trip(net, load(p))


def test_an_unknown_type_is_named(tmp_path):
    """An unknown neuron model is named even in a bundle re-sealed after the edit (its digest matches)."""
    import json

    from snnc.ir.digest import seal

    save(Network(*_base(), 3), tmp_path / "m.snnc")
    z = dict(np.load(tmp_path / "m.snnc"))
    header = json.loads(bytes(z.pop("__header__")).decode())
    header["nodes"][1]["fields"]["neuron"]["type"] = "Leaky"
    seal(header, z)
    z["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **z)
    (tmp_path / "bad.snnc").write_bytes(buf.getvalue())
    with pytest.raises(BundleError, match="unknown type 'Leaky'; this snnc knows .*'IFSoftReset'"):
        load(tmp_path / "bad.snnc")
