"""Field-by-field equality of two SimResults (shared by the torch backend's tests)."""

from __future__ import annotations

import dataclasses

import numpy as np


def assert_same_result(ref, got) -> None:
    """Every field of the reference's SimResult equals the torch backend's: arrays with
    assert_array_equal and the same dtype, dicts with the same keys, NodeOps field by field."""
    for f in dataclasses.fields(ref):
        a, b = getattr(ref, f.name), getattr(got, f.name)
        if isinstance(a, dict):
            assert isinstance(b, dict), f.name
            assert list(a) == list(b), f"{f.name}: keys {list(a)} != {list(b)}"
            for k in a:
                va, vb = a[k], b[k]
                if isinstance(va, np.ndarray):
                    np.testing.assert_array_equal(vb, va, err_msg=f"{f.name}[{k}]")
                    assert va.dtype == vb.dtype, f"{f.name}[{k}]: dtype {vb.dtype} != {va.dtype}"
                elif dataclasses.is_dataclass(va):
                    for g in dataclasses.fields(va):
                        np.testing.assert_array_equal(getattr(vb, g.name), getattr(va, g.name),
                                                      err_msg=f"{f.name}[{k}].{g.name}")
                else:
                    assert va == vb, f"{f.name}[{k}]: {vb} != {va}"
        else:
            assert a == b, f"{f.name}: {b} != {a}"


def assert_same_readouts(full, got) -> None:
    """``got``, a ``Keep.READOUTS`` result, holds exactly the full run's readouts (final accumulators),
    predictions, ops, max_abs_state, phase and steps, and none of its counts or population states."""
    from snnc.backends.base import Keep, NotKeptError

    assert full.kept is Keep.ALL and got.kept is Keep.READOUTS
    assert got.kept is Keep.READOUTS and got.spikes is None
    assert list(got.readout) == list(full.readout)
    for k in full.readout:
        np.testing.assert_array_equal(got.readout[k], full.readout[k], err_msg=f"readout[{k}]")
        assert got.readout[k].dtype == full.readout[k].dtype
        np.testing.assert_array_equal(got.final_v[k], full.final_v[k], err_msg=f"final_v[{k}]")
        np.testing.assert_array_equal(got.predictions(k), full.predictions(k))
    assert got.max_abs_state == full.max_abs_state
    assert got.phase == full.phase and got.steps == full.steps and got.latency_steps == full.latency_steps
    assert (got.ops is None) == (full.ops is None)
    if full.ops is not None:
        assert list(got.ops) == list(full.ops)
        for k, o in full.ops.items():
            for g in dataclasses.fields(o):
                np.testing.assert_array_equal(getattr(got.ops[k], g.name), getattr(o, g.name),
                                              err_msg=f"ops[{k}].{g.name}")
    assert len(got.counts) == 0 and set(got.final_v) == set(full.readout)
    for name in full.counts:
        try:
            got.counts[name]
        except NotKeptError as e:
            assert f"'{name}'" in str(e) and "Keep.ALL" in str(e)
        else:
            raise AssertionError(f"counts[{name}] of a readout-only result did not raise NotKeptError")


# ---- random hand-built IR networks (hypothesis) ------------------------------------------------------
def random_network(draw, st, allow_graded: bool = True, allow_mixed: bool = True):
    """A random small network drawn with hypothesis' ``draw``: inputs with signed or unsigned ranges,
    conv (stride, asymmetric padding, dilation, groups), sum-pool and dense projections with exponents,
    residual joins (a node reading two earlier nodes), graded max-pool units, every neuron model, rate
    or differential coding, per-channel or scalar parameters, V0 in or out of [0, Theta), mixed steps.
    Returns (net, x float inputs)."""
    from snnc.ir import (Conv2d, Dense, DifferentialCoding, DualThreshold, GradedMaxPool, IFSoftReset, Input,
                         MultiThreshold, Network, Population, RateCoding, Readout, SumPool2d)
    from snnc.ir import conv_output_size

    diff = draw(st.booleans()) and draw(st.booleans())           # differential in ~1/4 of the cases
    T = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    c0, h0, w0 = draw(st.integers(1, 3)), draw(st.integers(2, 6)), draw(st.integers(2, 6))
    signed = draw(st.booleans())
    qmin, qmax = (-draw(st.integers(1, 20)), draw(st.integers(1, 20))) if signed else (0, draw(st.integers(1, 255)))
    nodes = [Input("in", (c0, h0, w0), scale=1.0 / max(abs(qmin), qmax), qmin=qmin, qmax=qmax)]
    projs = []
    msg_max = {"in": max(abs(qmin), qmax)}
    mixed = allow_mixed and not diff and draw(st.integers(0, 3)) == 0

    def neuron():
        if diff:
            return MultiThreshold(n=draw(st.integers(1, 4)), relu=draw(st.booleans()))
        k = draw(st.integers(0, 3))
        return [IFSoftReset(), DualThreshold(neg_divisor=draw(st.integers(1, 50))),
                MultiThreshold(n=draw(st.integers(1, 4)), relu=draw(st.booleans())), IFSoftReset()][k]

    def params(shape, nrn):
        c = shape[0]
        per = draw(st.booleans())
        unit = getattr(nrn, "unit_divisor", 1)
        th = (rng.integers(1, 40, size=c if per else ()) * unit).astype(np.int64)
        if draw(st.booleans()):
            v0 = rng.integers(0, 1, size=th.shape) + th // 2            # in [0, Theta)
        else:
            v0 = rng.integers(-30, 60, size=c if per else ())
        bias = np.zeros(()) if diff else rng.integers(-5, 6, size=c if per else ())
        return dict(threshold=th, v0=v0, bias=bias)

    def proj(src, shape, target, out_shape_hint=None):
        """A projection from ``src`` (shape) into a new node; returns (projection, out_shape)."""
        name = f"{src.name}->{target}"
        e = draw(st.integers(0, 3))
        if len(shape) == 3 and draw(st.integers(0, 4)) > 0:
            c, h, w = shape
            if draw(st.integers(0, 3)) == 0:                           # sum pool
                k = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
                s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
                oh, ow = conv_output_size(h, k[0], s[0], 0, 0), conv_output_size(w, k[1], s[1], 0, 0)
                return SumPool2d(name, src.name, target, weight=int(rng.integers(-3, 4)), exponent=e,
                                 in_shape=shape, out_shape=(c, oh, ow), kernel=k, stride=s), (c, oh, ow)
            g = draw(st.sampled_from([d for d in (1, 2, 3) if c % d == 0]))
            o = g * draw(st.integers(1, 3))
            kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
            pad = tuple(draw(st.integers(0, 1)) for _ in range(4))
            dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
            oh = conv_output_size(h, kh, s[0], pad[0], pad[2], dil[0])
            ow = conv_output_size(w, kw, s[1], pad[1], pad[3], dil[1])
            if oh < 1 or ow < 1:
                pad, dil, s = (0, 0, 0, 0), (1, 1), (1, 1)
                kh, kw = min(kh, h), min(kw, w)
                oh, ow = h - kh + 1, w - kw + 1
            wt = rng.integers(-6, 7, size=(o, c // g, kh, kw))
            return Conv2d(name, src.name, target, wt, e, shape, (o, oh, ow), stride=s, padding=pad, dilation=dil,
                          groups=g), (o, oh, ow)
        n_out = out_shape_hint or draw(st.integers(1, 6))
        n_in = int(np.prod(shape))
        return Dense(name, src.name, target, rng.integers(-6, 7, size=(n_out, n_in)), e, shape, (n_out,)), (n_out,)

    graded_ok = allow_graded and draw(st.booleans())
    for i in range(draw(st.integers(1, 3))):
        srcs = [n for n in nodes if not isinstance(n, Readout)]
        src = srcs[-1]
        name = f"p{i}"
        if graded_ok and isinstance(src, (Population, GradedMaxPool)) and len(src.shape) == 3 and draw(st.booleans()):
            c, h, w = src.shape
            k = (draw(st.integers(1, min(2, h))), draw(st.integers(1, min(2, w))))
            g = GradedMaxPool(f"g{i}", (c, conv_output_size(h, k[0], k[0], 0, 0), conv_output_size(w, k[1], k[1], 0, 0)),
                              in_shape=src.shape, kernel=k, stride=k, max_message=msg_max[src.name])
            nodes.append(g)
            projs.append(SumPool2d(f"{src.name}->{g.name}", src.name, g.name, weight=1, exponent=0,
                                   in_shape=src.shape, out_shape=g.shape, kernel=k, stride=k))
            msg_max[g.name] = msg_max[src.name]
            src = g
        nrn = neuron()
        p, shape = proj(src, src.shape, name)
        pop = Population(name, shape, neuron=nrn, levels=T, real_threshold=1.0,
                         timesteps=draw(st.integers(1, 6)) if mixed else None, **params(shape, nrn))
        extra = []
        if i > 0 and draw(st.booleans()):                                  # a residual join from an earlier node
            other = draw(st.sampled_from(srcs[:-1]))
            if other.name != src.name:
                q, _ = proj(other, other.shape, name, out_shape_hint=None)
                if isinstance(q, Dense) and len(shape) == 1 and q.out_shape == shape or tuple(q.out_shape) == shape:
                    extra.append(q)
        nodes.append(pop)
        projs += [p, *extra]
        msg_max[name] = getattr(nrn, "unit_divisor", 1)
    last = [n for n in nodes if isinstance(n, Population)][-1]
    r = Readout("out", (draw(st.integers(1, 4)),), v0=rng.integers(-10, 10), bias=0 if diff else rng.integers(-3, 4))
    nodes.append(r)
    projs.append(Dense(f"{last.name}->out", last.name, "out", rng.integers(-5, 6, size=(r.shape[0], last.size)),
                       draw(st.integers(0, 2)), last.shape, r.shape))
    coding = DifferentialCoding(frac_bits=draw(st.integers(0, 12))) if diff else RateCoding()
    net = Network(nodes, projs, T, coding=coding)
    B = draw(st.integers(1, 5))
    x = rng.uniform(-0.2, 1.2, size=(B, c0, h0, w0))
    return net, x
