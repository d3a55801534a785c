"""Convolutions whose geometry exceeds Lava Conv's int8 Vars (backends/lava/widths.py): the unrolled synapse
matrix computes the IR's current, and a network with a 128-channel depthwise convolution (Lava's Conv
would hold groups = 128 as -128 and send zeros, as it did for the MNIST ViT's MLP re-encoding) runs on Lava spike for spike like the reference."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.base import BackendUnavailableError, UnsupportedNetworkError
from snnc.ir import (Conv2d, Dense, GradedFunctionUnit, Input, Network, Population, RateCoding, Readout, SumPool2d,
                     apply_projection, replace)

pytestmark = pytest.mark.lava

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from snnc_testutil import assert_same_run  # noqa: E402

from snnc.backends.lava.backend import LavaBackend  # noqa: E402
from snnc.backends.lava.emit import build  # noqa: E402
from snnc.backends.lava.widths import check_sparse_weights, conv_fits_lava, conv_matrix, message_guards  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402

GEOMETRIES = [  # (c_in, c_out, groups, kernel, stride, padding t l b r, dilation, in h w)
    (3, 4, 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (5, 6)),
    (4, 4, 4, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), (3, 1)),
    (4, 6, 2, (3, 2), (2, 1), (1, 0, 2, 1), (1, 2), (7, 5)),
    (2, 2, 1, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), (4, 4)),
]


def _conv(c_in, c_out, groups, kernel, stride, padding, dil, hw, seed=0):
    rng = np.random.default_rng(seed)
    h, w = hw
    oh = (h + padding[0] + padding[2] - dil[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w + padding[1] + padding[3] - dil[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    wt = rng.integers(-128, 128, (c_out, c_in // groups) + kernel)
    return Conv2d("c", "a", "b", wt, 1, (c_in, h, w), (c_out, oh, ow), stride=stride, padding=padding,
                  dilation=dil, groups=groups)


@pytest.mark.parametrize("geom", GEOMETRIES)
def test_the_unrolled_matrix_computes_the_ir_current(geom):
    p = _conv(*geom)
    s = np.random.default_rng(1).integers(-20, 20, (3,) + p.in_shape)
    want = apply_projection(p, s).reshape(3, -1)
    got = (conv_matrix(p) @ s.reshape(3, -1).T).T << p.exponent
    np.testing.assert_array_equal(got, want)


def test_a_sum_pool_unrolls_too():
    p = SumPool2d("p", "a", "b", 3, 0, (2, 4, 4), (2, 2, 2), kernel=(2, 2), stride=(2, 2))
    s = np.random.default_rng(2).integers(0, 9, (2,) + p.in_shape)
    np.testing.assert_array_equal((conv_matrix(p) @ s.reshape(2, -1).T).T, apply_projection(p, s).reshape(2, -1))


def test_only_geometries_over_127_leave_lava_conv():
    assert conv_fits_lava(_conv(127, 127, 127, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), (2, 1)))
    assert not conv_fits_lava(_conv(128, 128, 128, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), (2, 1)))


def test_weights_lava_sparse_would_clip_are_refused_by_name():
    p = SumPool2d("pool9", "a", "b", 300, 0, (200, 2, 2), (200, 1, 1), kernel=(2, 2), stride=(2, 2))
    with pytest.raises(UnsupportedNetworkError, match="projection 'pool9'.*range \\[300, 300\\].*\\[-256, 255\\]"):
        check_sparse_weights(p, conv_matrix(p))


def wide_depthwise_net(C: int = 128, T: int = 4, seed: int = 0) -> Network:
    """in (C, 2, 1) --depthwise 1x1 (groups = C)--> IF population --dense--> readout (3)."""
    rng = np.random.default_rng(seed)
    shp = (C, 2, 1)
    dw = Conv2d("in->pop", "in", "pop", rng.integers(1, 60, (C, 1, 1, 1)), 0, shp, shp, groups=C)
    pop = Population("pop", shp, threshold=np.array(200), levels=T)
    ro = Dense("pop->ro", "pop", "ro", rng.integers(-40, 40, (3, 2 * C)), 0, shp, (3,))
    return Network([Input("in", shp, scale=1 / 16, qmin=0, qmax=15), pop, Readout("ro", (3,), scale=0.1)],
                   [dw, ro], T, coding=RateCoding())


def test_a_128_group_depthwise_conv_runs_on_lava_like_the_reference():
    net = wide_depthwise_net()
    x = np.random.default_rng(3).uniform(0, 1, (2,) + net.inputs[0].shape)
    assert type(build(net, x).processes["in->pop"]).__name__ == "Sparse"
    ref = simulate(net, x, "pipelined", record=True)
    assert np.count_nonzero(ref.spikes["pop"]) > 100
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)


def test_every_projection_out_of_a_graded_unit_is_a_guarded_dense_or_sparse():
    from transformer_nets import block_inputs, transformer_block

    net = transformer_block(T=2)
    lb = build(net, block_inputs(1))
    units = {p.source for p in net.projections if isinstance(net.node(p.source), GradedFunctionUnit)}
    assert set(lb.guards) == units
    for p in net.projections:
        if p.source in units:
            assert type(lb.processes[p.name]).__name__ in ("Dense", "Sparse"), p.name
    g = lb.guards["act"]   # act -> ro: one Dense, the largest row sum of |w| sets the limit
    rows = int(np.abs(next(p for p in net.projections if p.name == "act->ro").weight).sum(axis=1).max())
    assert (g.projection, g.row_abs_max, g.limit) == ("act->ro", rows, (2**31 - 1) // rows)


def test_a_unit_message_that_could_wrap_an_int32_current_is_refused_by_name():
    from transformer_nets import block_inputs, transformer_block

    net = transformer_block(T=2)
    wide = [replace(p, exponent=22) if p.name == "act->ro" else p for p in net.projections]
    net = Network(net.nodes, wide, net.timesteps, coding=net.coding)
    assert message_guards(net)["act"].limit < 8
    with pytest.raises(UnsupportedNetworkError, match="graded unit 'act'.*projection 'act->ro'.*int32"):
        LavaBackend().run(net, block_inputs(2), "pipelined", record=True)
