"""The lowering fronts, keyed by the conversion they perform; each holds its registry of nonlinear
layer kinds (``Front.layers``, keyed by the float graph's op type).

| conversion    | front                 | nonlinear layer kinds (op type -> lowering)                     |
|---------------|-----------------------|-----------------------------------------------------------------|
| quantized     | ``QUANTIZED_FRONT``   | QuantAct -> IF/dual-threshold population; MaxPool -> tournament |
| mixed-levels  | ``QUANTIZED_FRONT``   | (the same; each population runs its own L)                      |
| training-free | ``TRAINING_FREE_FRONT`` | Relu -> multi-threshold population; MaxPool -> graded unit   |

A new nonlinear layer kind of an existing front is one ``LayerLowering`` function and one entry in
that front's ``layers``; a new front (e.g. transformers: LayerNorm, Softmax, GeLU, MatMul units) is a
module defining a ``Front`` and one entry here (docs/architecture.md, "How to add a nonlinear layer kind").
"""

from __future__ import annotations

from ..errors import ConversionError
from ..metadata import Conversion
from .front import Front
from .quantized import QUANTIZED_FRONT
from .relu import TRAINING_FREE_FRONT

FRONTS: dict[Conversion, Front] = {
    Conversion.QUANTIZED: QUANTIZED_FRONT,
    Conversion.MIXED_LEVELS: QUANTIZED_FRONT,
    Conversion.TRAINING_FREE: TRAINING_FREE_FRONT,
}


def front_for(conversion: Conversion) -> Front:
    front = FRONTS.get(conversion)
    if front is None:
        raise ConversionError(f"no lowering front for the conversion '{conversion}'; fronts exist for "
                              f"{sorted(c.value for c in FRONTS)}")
    return front
