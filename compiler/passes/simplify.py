"""Small clean-up passes: drop identities, fold batch norm, merge scalar affines, size global pools."""

from __future__ import annotations

from ..frontend.float_graph import AvgPool, BatchNorm, Conv, FGraph, Identity, Linear, MaxPool, ScalarAffine
from .base import Pass


class RemoveIdentity(Pass):
    """Identity and Dropout (inference) do nothing."""

    name = "remove-identity"

    def match(self, g):
        return [o for o in g.ops if isinstance(o, Identity)]

    def transform(self, g, op):
        g.remove(op)


class FoldBatchNorm(Pass):
    """BatchNorm right after a Conv/Linear whose only consumer it is: scale the weights, shift the bias."""

    name = "fold-batchnorm"

    def match(self, g):
        out = []
        for o in g.ops:
            if isinstance(o, BatchNorm):
                prod = g.producer(o.input)
                if isinstance(prod, (Conv, Linear)) and len(g.consumers(prod.name)) == 1:
                    out.append((prod, o))
        return out

    def transform(self, g, site):
        prod, bn = site
        a, c = bn.affine()
        shape = (-1,) + (1,) * (prod.weight.ndim - 1)
        prod.weight = prod.weight * a.reshape(shape)
        prod.bias = prod.bias * a + c
        g.remove(bn)


class MergeScalarAffine(Pass):
    """Two scalar affines in a row become one: (x*m1 + a1)*m2 + a2."""

    name = "merge-scalar-affine"

    def match(self, g):
        out = []
        for o in g.ops:
            if isinstance(o, ScalarAffine):
                prod = g.producer(o.input)
                if isinstance(prod, ScalarAffine) and len(g.consumers(prod.name)) == 1:
                    out.append((prod, o))
        return out

    def transform(self, g, site):
        first, second = site
        second.mul, second.add = first.mul * second.mul, first.add * second.mul + second.add
        g.remove(first)


class ResolveGlobalPool(Pass):
    """GlobalAveragePool / GlobalMaxPool -> a pool with the kernel equal to the input's spatial size."""

    name = "resolve-global-pool"

    def match(self, g):
        return [o for o in g.ops if isinstance(o, (AvgPool, MaxPool)) and o.kernel == (0, 0)]

    def transform(self, g, op):
        shape = g.shapes()[op.input]
        op.kernel = (int(shape[1]), int(shape[2]))
        op.stride = op.kernel
