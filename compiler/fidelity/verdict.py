"""Verdicts that cannot lie: EXACT only when the SNN equals snnc's integer network (N == M_int) *and*
that network is faithful to the user's model.

Faithful means, by the kind of model (``weight_kind``):

* **integer-defined** (every linear op's weight comes out of a quantizer: ONNX DequantizeLinear, QONNX
  Quant / BipolarQuant): the model's levels are integers of integer weights. FAITHFUL: M_int equals M_user
  at every level compared. Fed the model's own source levels layer by layer (compare.py), every level that
  differs must lie within snnc's rounding bound of an edge (its thresholds hold the model's scale ratio
  to finite bits, exact ties round up): then the network is WITHIN_PRECISION, which passes when the
  agreements reach ``MinFidelity``; a level beyond that bound, or a layer whose weights snnc keeps with
  fewer bits than the model's (``layer_bits``: fidelity/bits.py), makes it UNFAITHFUL, named with the layer
  and the bits it is short.
* **float weights** (QCFS-style clip-floor models, float Conv/Gemm weights): snnc rounds the weights to
  the target's mantissa, so levels near a boundary move; FAITHFUL means the worst layer's level agreement
  and the prediction agreement user/int are at least ``MinFidelity`` (defaults measured on the zoo: see
  docs/fidelity.md and ``DEFAULT_MIN_FIDELITY``).

Anything the comparison could not check (an unmapped or not-level layer, no reference run) makes the
faithfulness UNCHECKED, never FAITHFUL. Exit codes: 0 exact and faithful (or, T != L, rates reported and
faithful), 1 a check failed (the verdict's ``reasons`` say which), 2 user error, 3 internal error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import onnx

from .compare import FidelityResult
from ..frontend.qonnx_ops import QONNX_DOMAINS

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3


class WeightKind(Enum):
    INTEGER = "integer"   # QDQ / QONNX / QCDQ: weights are integers times scales
    FLOAT = "float"       # float weights (QCFS-style models, plain float)


_PASS_THROUGH = ("Identity", "Transpose", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten")
_QUANTIZERS = {("", "DequantizeLinear"), ("ai.onnx", "DequantizeLinear")} | {
    (d, op) for d in QONNX_DOMAINS for op in ("Quant", "BipolarQuant", "IntQuant")}


def weight_kind(model: onnx.ModelProto) -> WeightKind:
    """INTEGER when every Conv / Gemm / MatMul weight (input 1) is produced by a quantizer (through
    shape-only ops), else FLOAT (also for a model with no linear op)."""
    producer = {o: n for n in model.graph.node for o in n.output if o}
    linears = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1]
    if not linears:
        return WeightKind.FLOAT
    for n in linears:
        cur = producer.get(n.input[1])
        while cur is not None and cur.op_type in _PASS_THROUGH and cur.input:
            cur = producer.get(cur.input[0])
        if cur is None or (cur.domain, cur.op_type) not in _QUANTIZERS:
            return WeightKind.FLOAT
    return WeightKind.INTEGER


@dataclass(frozen=True)
class MinFidelity:
    """Thresholds (``--min-fidelity``): the level agreement of the worst layer and the prediction agreement
    of snnc's integer network with the user's model, fractions in [0, 1]."""

    level_agreement: float
    prediction_agreement: float

    def __post_init__(self) -> None:
        for k in ("level_agreement", "prediction_agreement"):
            v = getattr(self, k)
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"min fidelity {k} must be in [0, 1], got {v}")

    @classmethod
    def parse(cls, text: str) -> "MinFidelity":
        """'LEVELS,PREDICTIONS' (e.g. '0.99,0.98') or one number for both."""
        try:
            vals = [float(v) for v in str(text).split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (1, 2):
            raise ValueError(f"--min-fidelity must be 'LEVELS,PREDICTIONS' (fractions, e.g. 0.99,0.98) or one "
                             f"fraction, got '{text}'")
        return cls(vals[0], vals[-1])


# docs/fidelity.md "Defaults", from benchmarks/fidelity_zoo.py (docs/fidelity_zoo.md) on the 360 test images,
# Loihi's 8-bit weights, T = L: the nine zoo models' worst layers agree on 0.958..0.985 of their levels and
# their predictions on 0.994..1.0; the QCFS ResNet's worst layer (conv7, after three residual joins) on 0.882,
# its predictions on 1.0. The QCFS authors' VGG-16 with MyFloor (random weights): worst layer 0.605,
# predictions 0.264 — what the defaults must flag. 0.80 / 0.98 sit below every trained model with room for
# other data, and far above that VGG.
DEFAULT_MIN_FIDELITY = MinFidelity(level_agreement=0.80, prediction_agreement=0.98)


class Faithfulness(Enum):
    FAITHFUL = "faithful"                   # equal levels (integer models) / agreements >= minimum (float)
    WITHIN_PRECISION = "within-precision"   # integer model: every difference is a rounding of snnc's formats
    UNFAITHFUL = "unfaithful"
    UNCHECKED = "unchecked"


@dataclass(frozen=True)
class LayerBits:
    """How many bits of a layer's weights snnc keeps against what the model's weights have."""

    layer: str
    kept: int
    needed: int

    @property
    def short(self) -> int:
        return max(self.needed - self.kept, 0)


@dataclass(frozen=True)
class Verdict:
    exact: bool | None           # N == M_int (None: not compared, e.g. T != L rates)
    faithful: Faithfulness
    kind: WeightKind
    reasons: tuple[str, ...] = field(default_factory=tuple)
    meets_min: bool = False      # WITHIN_PRECISION: the agreements reach MinFidelity

    @property
    def ok(self) -> bool:
        """What exits 0: the SNN equals snnc's integer network (or T != L: rates) and that network is
        faithful to the model (within precision only when the agreements reach --min-fidelity)."""
        if self.exact is False:
            return False
        return self.faithful is Faithfulness.FAITHFUL or (self.faithful is Faithfulness.WITHIN_PRECISION
                                                          and self.meets_min)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_CHECK_FAILED

    @property
    def headline(self) -> str:
        if self.exact is False:
            return "NOT EXACT"
        f = {Faithfulness.FAITHFUL: "FAITHFUL", Faithfulness.WITHIN_PRECISION: "FAITHFUL WITHIN THE TARGET'S PRECISION",
             Faithfulness.UNFAITHFUL: "NOT FAITHFUL TO THE MODEL",
             Faithfulness.UNCHECKED: "FIDELITY TO THE MODEL UNCHECKED"}[self.faithful]
        if self.exact is None:
            return f"RATES (T != L), {f}"
        return "EXACT" if self.faithful is Faithfulness.FAITHFUL else f"SNN = INTEGER NETWORK, {f}"

    def message(self) -> str:
        return self.headline + (": " + "; ".join(self.reasons) if self.reasons else "")


def fidelity_verdict(result: FidelityResult | None, kind: WeightKind, spiking_exact: bool | None,
                     min_fidelity: MinFidelity = DEFAULT_MIN_FIDELITY,
                     layer_bits: list[LayerBits] | None = None) -> Verdict:
    """The verdict rule (module docstring). ``spiking_exact``: N == M_int at T = L (None at T != L,
    where rates are reported, not demanded); ``result`` None: the user's model could not be run."""
    reasons: list[str] = []
    if spiking_exact is False:
        reasons.append("the SNN's counts differ from snnc's integer network")
    if result is None:
        return Verdict(spiking_exact, Faithfulness.UNCHECKED, kind,
                       tuple(reasons + ["the user's model could not be run: fidelity to it is unchecked"]))
    unchecked = [f"layer '{L.layer}' unchecked ({L.reason})" for L in result.unchecked]
    if result.levels_compared == 0:
        unchecked.append("no level of the model could be compared")
    la = result.worst_layer_agreement
    pa = result.prediction_agreement.get("user_vs_int")
    meets = (la is not None and la >= min_fidelity.level_agreement and pa is not None
             and pa >= min_fidelity.prediction_agreement)
    agreements = (f"worst layer's level agreement {'n/a' if la is None else f'{la:.4f}'}, prediction agreement "
                  f"{'n/a' if pa is None else f'{pa:.4f}'} (--min-fidelity {min_fidelity.level_agreement},"
                  f"{min_fidelity.prediction_agreement})")
    short = [b for b in (layer_bits or []) if b.short > 0]
    failed: list[str] = []
    if kind is WeightKind.INTEGER:
        for b in short:
            failed.append(f"layer '{b.layer}' keeps {b.kept} of the model's {b.needed} weight bits ({b.short} short): "
                          "the target's formats cannot hold the model's integers there")
        limited = []
        for L in result.layers:
            if L.status != "compared":
                continue
            if L.local_unexplained > 0:
                failed.append(f"layer '{L.layer}': fed the model's own inputs, {L.local_unexplained} of "
                              f"{L.local_compared} levels differ beyond snnc's rounding (it computes something else "
                              "there)")
            elif L.mismatched and L.local_compared == 0:
                unchecked.append(f"layer '{L.layer}': {L.mismatched} levels differ and were not classified "
                                 "(no layer-by-layer run)")
            elif L.local_within_precision:
                ties = (f", {L.local_at_ties} of them exact ties (the model rounds them another way than a spiking "
                        "neuron, which rounds ties up)") if L.local_at_ties else ""
                limited.append(f"layer '{L.layer}' holds its scale ratio to {L.scale_bits} bits (smallest threshold "
                               f"{L.threshold_min}): {L.local_within_precision} of {L.local_compared} levels differ "
                               f"at rounding edges{ties}")
        if failed:
            return Verdict(spiking_exact, Faithfulness.UNFAITHFUL, kind, tuple(reasons + failed + unchecked))
        if unchecked:
            return Verdict(spiking_exact, Faithfulness.UNCHECKED, kind, tuple(reasons + unchecked))
        if result.levels_mismatched == 0:
            return Verdict(spiking_exact, Faithfulness.FAITHFUL, kind, tuple(reasons), True)
        return Verdict(spiking_exact, Faithfulness.WITHIN_PRECISION, kind,
                       tuple(reasons + limited + [f"{result.levels_mismatched} of {result.levels_compared} levels "
                                                  f"differ end to end; {agreements}"]), meets)
    for b in short:
        reasons.append(f"layer '{b.layer}' keeps {b.kept} of {b.needed} weight bits")
    if pa is None:
        unchecked.append("no prediction of the model to compare")
    if la is not None and la < min_fidelity.level_agreement:
        failed.append(f"worst layer's level agreement {la:.4f} < {min_fidelity.level_agreement} (--min-fidelity)")
    if pa is not None and pa < min_fidelity.prediction_agreement:
        failed.append(f"prediction agreement with the model {pa:.4f} < {min_fidelity.prediction_agreement} "
                      "(--min-fidelity)")
    if failed:
        return Verdict(spiking_exact, Faithfulness.UNFAITHFUL, kind, tuple(reasons + failed + unchecked))
    if unchecked:
        return Verdict(spiking_exact, Faithfulness.UNCHECKED, kind, tuple(reasons + unchecked))
    return Verdict(spiking_exact, Faithfulness.FAITHFUL, kind, tuple(reasons + [agreements]), True)
