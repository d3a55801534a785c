"""Graph passes over the float graph, run to a fixed point by ``run_passes``."""

from .base import Pass, PassDidNotConverge, run_passes
from .branches import DuplicateSharedPool, SwapMaxPoolMonotone
from .pooling import FoldConvIntoPool, FoldPoolIntoConv, FoldPoolIntoLinear, NormalizeAvgPool, RefuseInexactAvgPool
from .qdq import DropInputQuantizer, FoldQDQRounding
from .quant_act import FuseQuantAct
from .simplify import FoldBatchNorm, MergeScalarAffine, RemoveIdentity, ResolveGlobalPool
from .transformer import FuseElementwiseFunction, SelectBeforeRowwise

DEFAULT_PIPELINE = (
    RemoveIdentity,
    DropInputQuantizer,
    FoldQDQRounding,
    ResolveGlobalPool,
    NormalizeAvgPool,
    FoldBatchNorm,
    MergeScalarAffine,
    FuseElementwiseFunction,
    SelectBeforeRowwise,
    SwapMaxPoolMonotone,
    FuseQuantAct,
    DuplicateSharedPool,
    FoldConvIntoPool,
    FoldPoolIntoConv,
    FoldPoolIntoLinear,
    RefuseInexactAvgPool,
)


def default_passes() -> list[Pass]:
    return [cls() for cls in DEFAULT_PIPELINE]


__all__ = [
    "Pass", "PassDidNotConverge", "run_passes", "default_passes", "DEFAULT_PIPELINE",
    "DropInputQuantizer", "FoldQDQRounding", "DuplicateSharedPool", "SwapMaxPoolMonotone", "FoldBatchNorm", "FoldConvIntoPool", "FoldPoolIntoConv", "FoldPoolIntoLinear", "FuseQuantAct",
    "NormalizeAvgPool", "RefuseInexactAvgPool",
    "MergeScalarAffine", "RemoveIdentity", "ResolveGlobalPool", "FuseElementwiseFunction", "SelectBeforeRowwise",
]
