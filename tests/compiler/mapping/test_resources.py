"""The resource model against hand-computed cases and a brute-force count over every synapse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.compiler.mapping.geometry import Tiling, distinct_tiles, view3
from snnc.compiler.mapping.resources import MemoryModel, ProjectionModel
from snnc.compiler.targets import load_target
from snnc.ir import Conv2d, Dense, SumPool2d
from snnc.ir import conv_output_size

LOIHI = load_target("loihi")
MEM = MemoryModel.of(LOIHI)


def target_with(atoms: int):
    from dataclasses import replace

    return replace(LOIHI, synapse=replace(LOIHI.synapse, atoms_per_axon=atoms))


def model(p, src_shape, dst_shape, atoms=512):
    return ProjectionModel.of(p, src_shape, dst_shape, target_with(atoms))


def test_memory_model_hand_cases():
    # 8-bit dense synapses: 62 synapses + 10 overhead bits fill 8 words (502 of 512 bits)
    assert MEM.group(8) == (62, 8)
    assert MEM.list_bits([0, 1, 62, 63, 124], 8).tolist() == [0, 64, 512, 576, 1024]
    # one synapse: 8 + 10 bits -> one 64-bit word; 63 = 62 + 1: 8 words + 1 word
    assert MEM.list_bits_lower([0, 1, 62, 124], 8).tolist() == [0, 64, 512, 1024]
    # sparse: weight 8 bits + the smallest index width (6..12) that addresses the slice
    assert MEM.sparse_bits([1, 64, 65, 1024, 4096, 4097]).tolist() == [14, 14, 15, 18, 20, 0]


def test_dense_hand_case():
    p = Dense("d", "a", "b", np.ones((3, 4), np.int64), in_shape=(4,), out_shape=(3,))
    whole = Tiling((3, 1, 1), (3, 1, 1))
    # population axons: one axon carries the 4 source neurons as atoms -> 12 synapses, 96 + 10 bits
    ax, bits = model(p, (4,), (3,)).incoming(whole)
    assert ax.tolist() == [[[1]]] and bits.tolist() == [[[128]]]
    # discrete axons: 4 axons with 3 synapses each, 24 + 10 bits -> one word each
    ax, bits = model(p, (4,), (3,), atoms=1).incoming(whole)
    assert ax.tolist() == [[[4]]] and bits.tolist() == [[[256]]]
    # rows split over 3 slices: every slice gets all 4 axons; source slices see every destination slice
    three = Tiling((3, 1, 1), (1, 1, 1))
    ax, _ = model(p, (4,), (3,), atoms=1).incoming(three)
    assert ax.ravel().tolist() == [4, 4, 4]
    src = Tiling((4, 1, 1), (2, 1, 1))
    assert model(p, (4,), (3,), atoms=1).out_axons(src, three).ravel().tolist() == [6, 6]


def conv(c_in, c_out, hw, k, stride=1, pad=0, dilation=1, groups=1):
    oh = conv_output_size(hw, k, stride, pad, pad, dilation)
    return Conv2d("c", "a", "b", np.ones((c_out, c_in // groups, k, k), np.int64), stride=(stride, stride),
                  padding=(pad,) * 4, dilation=(dilation, dilation), groups=groups,
                  in_shape=(c_in, hw, hw), out_shape=(c_out, oh, oh))


def test_conv_borders_hand_case():
    # 1 -> 1 channel, 3x3, padding 1 on 4x4: source rows land 2, 3, 3, 2 taps (corners 4, edges 6, inside 9)
    p = conv(1, 1, 4, 3, pad=1)
    m = model(p, (1, 4, 4), (1, 4, 4), atoms=1)
    ax, bits = m.incoming(Tiling((1, 4, 4), (1, 4, 4)))
    # 16 neurons -> 6-bit index, 14 bits per synapse; lists of 4 and 6 synapses: 2 words, of 9: 3 words
    assert ax.item() == 16 and bits.item() == (4 * 2 + 8 * 2 + 4 * 3) * 64
    # two row tiles: each sees 3 source rows (the halo row twice), 12 + 12 input axons
    ax, _ = m.incoming(Tiling((1, 4, 4), (1, 2, 4)))
    assert ax.ravel().tolist() == [12, 12]


def test_conv_stride_and_pool_hand_cases():
    # 1x1 kernel, stride 2: only even rows and columns are read
    p = conv(1, 1, 4, 1, stride=2)
    ax, _ = model(p, (1, 4, 4), (1, 2, 2), atoms=1).incoming(Tiling((1, 2, 2), (1, 2, 2)))
    assert ax.item() == 4
    # sum pool 2x2/2 over 2 channels; a slice with channel 0 only reads channel 0
    q = SumPool2d("p", "a", "b", np.array(1), kernel=(2, 2), stride=(2, 2), in_shape=(2, 4, 4), out_shape=(2, 2, 2))
    t = Tiling((2, 2, 2), (1, 2, 2))
    ax, bits = model(q, (2, 4, 4), (2, 2, 2), atoms=1).incoming(t)
    assert ax.ravel().tolist() == [16, 16] and bits.ravel().tolist() == [16 * 64, 16 * 64]
    # population axons: one axon per pixel (both channels as atoms), one synapse each
    ax, _ = model(q, (2, 4, 4), (2, 2, 2)).incoming(t)
    assert ax.ravel().tolist() == [16, 16]


def brute_force(p, src_view, dst_view, dst: Tiling, atoms: int):
    """Every synapse enumerated: per destination slice, {unit: synapses} -> (in_axons, bits)."""
    c_in, h, w = src_view
    res_ax, res_bits = [], []
    if isinstance(p, Dense):
        kind = "dense"
    else:
        if isinstance(p, SumPool2d):
            (kh, kw), (sh, sw), groups, (dh, dw) = p.kernel, p.stride, c_in, (1, 1)
        else:
            _, _, kh, kw = p.weight.shape
            (sh, sw), groups, (dh, dw) = p.stride, p.groups, p.dilation
        pt, pl = p.padding[0], p.padding[1]
        c_out = dst_view[0]
        og, cg = c_out // groups, c_in // groups
        kind = "conv"
    for s in range(dst.n_slices):
        (c0, c1), (y0, y1), (x0, x1) = dst.box(s)
        units: dict = {}
        k = (c1 - c0) * (y1 - y0) * (x1 - x0)
        for o in range(c0, c1):
            for y in range(y0, y1):
                for x in range(x0, x1):
                    if kind == "dense":
                        for c in range(c_in):
                            for sy in range(h):
                                for sx in range(w):
                                    u = (c // atoms, sy, sx)
                                    units[u] = units.get(u, 0) + 1
                        continue
                    g = o // og
                    for c in range(g * cg, (g + 1) * cg):
                        for i in range(kh):
                            for j in range(kw):
                                sy, sx = y * sh + i * dh - pt, x * sw + j * dw - pl
                                if 0 <= sy < h and 0 <= sx < w:
                                    u = (c // atoms, sy, sx)
                                    units[u] = units.get(u, 0) + 1
        n = np.array(list(units.values()), np.int64)
        bits = MEM.weight_bits if kind == "dense" else int(MEM.sparse_bits(np.array([k]))[0])
        res_ax.append(len(units))
        res_bits.append(int(MEM.list_bits(n, bits).sum()))
    return np.array(res_ax), np.array(res_bits)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 2))
    hw = draw(st.integers(max(1, dilation * (k - 1) + 1 - 2 * pad), 7))
    if draw(st.booleans()):
        p = conv(c_in, c_out, hw, k, stride, pad, dilation, groups)
    else:
        k2 = min(k, hw)
        oh = conv_output_size(hw, k2, stride, 0, 0)
        p = SumPool2d("p", "a", "b", np.array(1), kernel=(k2, k2), stride=(stride, stride),
                      in_shape=(c_in, hw, hw), out_shape=(c_in, oh, oh))
    dst_view = tuple(p.out_shape)
    tile = tuple(draw(st.integers(1, v)) for v in dst_view)
    return p, tuple(p.in_shape), dst_view, tile, draw(st.sampled_from([1, 2, 512]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_conv_matches_brute_force(case):
    p, src_view, dst_view, tile, atoms = case
    dst = Tiling(dst_view, tile)
    m = model(p, src_view, dst_view, atoms)
    ax, bits = m.incoming(dst)
    bax, bbits = brute_force(p, src_view, dst_view, dst, atoms)
    assert ax.ravel().tolist() == bax.tolist()
    assert bits.ravel().tolist() == bbits.tolist()
    # output axons from any source tiling add up to the input axons (more when a source slice
    # boundary splits a population axon's channel chunk: both halves send to it)
    src = Tiling(src_view, tuple(max(1, v // 2) for v in src_view))
    out = int(m.out_axons(src, dst).sum())
    assert out == int(ax.sum()) if atoms == 1 or src.tile[0] % atoms == 0 or src_view[0] <= src.tile[0] else out >= int(ax.sum())
    pair = m.pair(src, dst)
    assert np.array_equal(pair.out_axons(), m.out_axons(src, dst))
    # the lower bound is below any tiling's total
    lb_ax, lb_bits = m.lower_bound()
    assert lb_ax <= ax.sum() and lb_bits <= bits.sum()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.sampled_from([1, 2, 512]),
       st.data())
def test_dense_matches_brute_force(c, h, w, n_out, atoms, data):
    p = Dense("d", "a", "b", np.ones((n_out, c * h * w), np.int64), in_shape=(c, h, w), out_shape=(n_out,))
    dst = Tiling((n_out, 1, 1), (data.draw(st.integers(1, n_out)), 1, 1))
    m = model(p, (c, h, w), (n_out,), atoms)
    ax, bits = m.incoming(dst)
    bax, bbits = brute_force(p, (c, h, w), (n_out, 1, 1), dst, atoms)
    assert ax.ravel().tolist() == bax.tolist() and bits.ravel().tolist() == bbits.tolist()
    src = Tiling((c, h, w), (max(1, c // 2), 1, w))
    out = int(m.out_axons(src, dst).sum())
    assert out == int(ax.sum()) if atoms == 1 or src.tile[0] >= c else out >= int(ax.sum())


def test_views_and_tilings():
    assert view3((5,)) == (5, 1, 1) and view3((2, 3)) == (2, 3, 1) and view3((2, 3, 4, 5)) == (2, 12, 5)
    t = Tiling((5, 4, 3), (2, 3, 3))
    assert t.grid == (3, 2, 1) and t.n_slices == 6 and t.neurons().sum() == 60
    assert t.box(5) == ((4, 5), (3, 4), (0, 3))
    assert distinct_tiles(7) == [1, 2, 3, 4, 7]
    with pytest.raises(ValueError):
        Tiling((2, 2, 2), (3, 1, 1))
