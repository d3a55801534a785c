"""The token expressions of the transformer lowering (compiler/lowering/tokens.py), run before / after: on
the committed digits ViT (both exporters), every value a graded unit's port or a population reads --
built from its sources by the patch embedding, class token, position embedding, token linears, residual
adds and Select -- equals the float graph's tensor (in the IR layout), and every MatMul operand read
through a gather index equals the float operand."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.compiler.frontend.float_graph import Gelu, LayerNorm, MatMul, Softmax
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.lowering.affine import Source
from snnc.compiler.lowering.tokens import TokenExpressions, float_to_ir, ir_shape, spiking_points
from snnc.compiler.passes import default_passes, run_passes
from snnc.compiler.tools.verify_float import ir_layout
from snnc_testutil import REPO


def _graph(which):
    g, _ = import_onnx(REPO / "examples" / "digits" / f"vit_digits_{which}.onnx")
    run_passes(g, default_passes())
    return g


def _ir(v: np.ndarray) -> np.ndarray:
    return ir_layout(v).reshape(len(v), -1)


@pytest.mark.parametrize("which", ["legacy", "dynamo"])
def test_port_values_equal_the_float_tensors(which):
    g = _graph(which)
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:5]
    vals = g.run(x)
    ex = TokenExpressions(g)
    # the sources the lowering makes: the input, every spiking point, the scores and the softmax
    names = [g.input_name] + list(spiking_points(g).values()) + \
        [o.name for o in g.ops if isinstance(o, (Softmax, MatMul)) and o.name not in spiking_points(g)]
    for n in names:
        ex.sources[n] = Source(n, ir_shape(ex.float_shape(n)), 1.0, 1.0)
    readers = [o.input for o in g.ops if isinstance(o, (LayerNorm, Gelu, Softmax))] + [g.output]
    assert len(readers) >= 8
    for t in readers:
        e = ex.expr(t)
        got = np.broadcast_to(e.bias.reshape(1, -1), (len(x), e.bias.size)).copy()
        for term in e.terms:
            got += _ir(vals[term.source]) @ ex._dense(term, e.shape).T
        np.testing.assert_allclose(got, _ir(vals[t]), rtol=1e-9, atol=1e-9, err_msg=t)


@pytest.mark.parametrize("which", ["legacy", "dynamo"])
def test_matmul_operands_are_gathers_of_their_base(which):
    g = _graph(which)
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:3]
    vals = g.run(x)
    ex = TokenExpressions(g)
    mms = [o for o in g.ops if isinstance(o, MatMul)]
    assert mms
    for op in mms:
        for t in (op.input, op.other):
            base, idx = ex.view_of(t)
            gathered = _ir(vals[base])[:, float_to_ir(ex.float_shape(base))[idx]]
            np.testing.assert_array_equal(gathered, vals[t].reshape(len(x), -1))
