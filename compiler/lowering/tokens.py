"""Affine expressions over token tensors (transformers), on top of the shared core (``affine.py``).

Layout. A float-graph tensor of per-sample rank 2, (T tokens, D features), is laid out in the IR as
(D, T, 1): features are channels, so a Linear applied to every token (``TokenLinear``) is a 1x1
``Conv2d`` and a residual shortcut a depthwise one. Every other tensor keeps its float shape. An
expression's ``shape`` (``Expr.shape``) is the IR layout; its bias is a full tensor in that layout.

Ops. ``TokenLinear`` composes with the 1x1 and identity terms it reads (a dense term: per token).
Every other linear op on token tensors (Reshape, Transpose, a class token ``ConcatConst``, a position
embedding ``AddConst``, ``Select``, a patch-embedding Conv read by a Reshape) is applied to the
expression as what it is, an affine map: its terms become dense matrices (rows: the output's IR
elements, columns: the source's) and the op is applied to their columns, f(x) - f(0), and to the bias,
f(b). Reshape / Transpose chains between a linear layer and a two-input MatMul are not applied: the
MatMul unit reads its operand through a gather index (``view_of``).
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import (Add, AddConst, ConcatConst, Conv, FGraph, Linear, MatMul, Mean, Reshape,
                                    ScalarAffine, Select, TokenLinear, Transpose)
from .affine import Expr, Expressions, Refusal, Term

#: the single-input ops applied as affine maps (dense terms)
AFFINE_OPS = (Reshape, Transpose, ConcatConst, AddConst, Select, Mean)
#: ops that only move elements (a MatMul reads through them with a gather index)
VIEW_OPS = (Reshape, Transpose)


def ir_shape(float_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The IR layout of a per-sample float shape: (T, D) -> (D, T, 1); any other rank unchanged."""
    s = tuple(int(v) for v in float_shape)
    return (s[1], s[0], 1) if len(s) == 2 else s


def float_to_ir(float_shape: tuple[int, ...]) -> np.ndarray:
    """p with IR flat index p[i] for float flat index i (the identity unless the tensor is a token one)."""
    s = tuple(int(v) for v in float_shape)
    n = int(np.prod(s)) if s else 1
    if len(s) != 2:
        return np.arange(n)
    T, D = s
    return (np.arange(D)[None, :] * T + np.arange(T)[:, None]).reshape(-1)   # (t, d) -> d T + t


def is_token(float_shape: tuple[int, ...]) -> bool:
    return len(tuple(float_shape)) == 2


class TokenExpressions(Expressions):
    """``Expressions`` that also read token tensors (module docstring); on a graph without token ops it
    is the shared core unchanged."""

    # -- layout helpers ---------------------------------------------------------------------------
    def float_shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(v) for v in self.shapes[name])

    def view_of(self, name: str) -> tuple[str, np.ndarray]:
        """(base tensor, idx): the tensor ``name`` is the base's float elements idx (float flat order),
        walking back through Reshape / Transpose until a source or another op."""
        op = None if name in self.sources else self.g.producer(name)
        if not isinstance(op, VIEW_OPS):
            return name, np.arange(int(np.prod(self.float_shape(name))))
        base, idx = self.view_of(op.input)
        arr = idx.reshape(self.float_shape(op.input))
        if isinstance(op, Transpose):
            arr = np.transpose(arr, [p - 1 for p in op.perm[1:]])
        return base, arr.reshape(-1)

    # -- expressions --------------------------------------------------------------------------------
    def _expr_of(self, op) -> Expr:
        tokenish = isinstance(op, (TokenLinear,) + AFFINE_OPS) or any(
            is_token(self.float_shape(s)) for s in op.sources() if s in self.shapes)
        if not tokenish:
            return super()._expr_of(op)
        if isinstance(op, TokenLinear):
            return self._token_linear(op, self.expr(op.input))
        if isinstance(op, Add):
            return super()._expr_of(op)
        if isinstance(op, ScalarAffine):
            return super()._expr_of(op)
        if isinstance(op, (Linear, Conv) + AFFINE_OPS):
            return self._affine(op, op.input)
        raise Refusal(f"node '{op.name}' ({type(op).__name__}) on token tensors cannot be lowered: the transformer "
                      "path lowers TokenLinear, Reshape, Transpose, Add, scalar affines, class tokens, position "
                      "embeddings, Select and Linear between its graded units")

    def _token_linear(self, op: TokenLinear, e: Expr) -> Expr:
        W = np.asarray(op.weight, np.float64)       # (O, C)
        O, C = W.shape
        if len(e.shape) != 3 or e.shape[0] != C or e.shape[2] != 1:
            raise Refusal(f"TokenLinear node '{op.name}' reads a tensor of IR shape {e.shape}, not (features {C}, "
                          "tokens, 1)")
        T = e.shape[1]
        terms = []
        for t in e.terms:
            if t.kind == "ident" and t.offset == 0 and len(t.weight) == C:
                w = (W * t.weight[None, :]).reshape(O, C, 1, 1)
                terms.append(Term(t.source, "conv", w, ops=t.ops + (op.name,)))
            elif t.kind == "conv" and t.weight.shape[2:] == (1, 1) and t.groups == 1 and t.stride == (1, 1) \
                    and tuple(t.pads) == (0, 0, 0, 0) and self.sources[t.source].shape[1:] == (T, 1):
                w = (W @ t.weight[:, :, 0, 0]).reshape(O, -1, 1, 1)
                terms.append(Term(t.source, "conv", w, ops=t.ops + (op.name,)))
            else:
                M = self._dense(t, e.shape)                                  # (C*T, n_src)
                M = np.einsum("oc,ctn->otn", W, M.reshape(C, T, -1)).reshape(O * T, -1)
                terms.append(Term(t.source, "dense", M, ops=t.ops + (op.name,)))
        bias = (W @ e.bias.reshape(C, T)).reshape(O, T, 1) + np.asarray(op.bias, np.float64).reshape(O, 1, 1)
        return Expr((O, T, 1), terms, bias)

    def _dense(self, t: Term, shape: tuple[int, ...]) -> np.ndarray:
        """A term as a dense matrix: rows the expression's IR elements, columns the source's."""
        if t.kind == "dense":
            return t.weight
        src = self.sources[t.source]
        n_src = int(np.prod(src.shape))
        n_out = int(np.prod(shape))
        if t.kind == "ident":
            rest = int(np.prod(src.shape[1:])) if len(src.shape) > 1 else 1
            M = np.zeros((n_out, n_src))
            cols = np.arange(len(t.weight) * rest)
            M[t.offset * rest + cols, cols] = np.repeat(t.weight, rest)
            return M
        if t.kind == "conv":   # apply the conv to the source's basis (one column per source element)
            conv = Conv("term", "x", t.weight, np.zeros(t.weight.shape[0]), tuple(t.stride), tuple(t.pads),
                        tuple(t.dilation), t.groups)
            basis = np.eye(n_src).reshape((n_src,) + tuple(src.shape))
            return conv(basis).reshape(n_src, -1).T
        raise Refusal(f"a {t.kind} term cannot be read by a token op")

    def _affine(self, op, name: str) -> Expr:
        """``op`` applied to the expression of ``name`` as the affine map it is (module docstring)."""
        e = self.expr(name)
        fin, fout = self.float_shape(name), self.float_shape(op.name)
        p_in, p_out = float_to_ir(fin), float_to_ir(fout)
        n_out = int(np.prod(fout)) if fout else 1

        def apply(cols: np.ndarray) -> np.ndarray:   # (n, IR elements of the input) -> (n, IR elements out)
            x = cols[:, p_in].reshape((cols.shape[0],) + fin)
            y = np.asarray(op(x), np.float64).reshape(cols.shape[0], -1)
            out = np.empty_like(y)
            out[:, p_out] = y
            return out

        zero = apply(np.zeros((1, int(np.prod(fin)))))
        bias = apply(e.bias.reshape(1, -1)).reshape(-1)
        terms = []
        for t in e.terms:
            M = self._dense(t, e.shape)
            terms.append(Term(t.source, "dense", (apply(M.T) - zero).T, ops=t.ops + (op.name,)))
        shape = ir_shape(fout)
        if n_out != int(np.prod(shape)):
            raise Refusal(f"node '{op.name}': output of {n_out} elements")
        return Expr(shape, terms, bias.reshape(shape))


def spiking_points(g: FGraph) -> dict[str, str]:
    """The transformer's values that are sent as spikes (multi-threshold populations) rather than as a
    graded unit's messages: every LayerNorm, GELU and SiLU output, and every two-input MatMul output
    that is not read by a softmax. Maps the op's name to the tensor the population stands for (a MatMul
    whose result is reshaped back to tokens: the reshaped tensor)."""
    from ..frontend.float_graph import Gelu, LayerNorm, Silu, Softmax

    out = {}
    for op in g.ops:
        if isinstance(op, (LayerNorm, Gelu, Silu)):
            out[op.name] = op.name
        elif isinstance(op, MatMul):
            end = view_chain_end(g, op.name)
            readers = g.consumers(end)
            if not any(isinstance(r, Softmax) or (isinstance(r, ScalarAffine) and _feeds_softmax(g, r.name))
                       for r in readers):
                out[op.name] = end
    return out


def _feeds_softmax(g: FGraph, name: str) -> bool:
    from ..frontend.float_graph import Softmax

    return any(isinstance(o, Softmax) for o in g.consumers(name))


def view_chain_end(g: FGraph, name: str) -> str:
    """Follow a tensor through Reshape / Transpose ops that are its only reader, to a token tensor
    (rank 2) if the chain reaches one, else ``name``."""
    cur, best = name, name
    shapes = g.shapes()
    while True:
        readers = g.consumers(cur)
        if len(readers) != 1 or not isinstance(readers[0], VIEW_OPS):
            break
        cur = readers[0].name
        if is_token(shapes[cur]):
            best = cur
    return best
