"""``snnc verify --against ann``'s judgement against the user's model (issue 13): the model that came in is
run with its own semantics (``compiler.fidelity.reference_executor``: onnxruntime for standard ONNX, the
expanded QONNX ops for QONNX, static batches chunked), its quantized activations are read as levels
M_user and compared with snnc's integer network M_int, and the verdict (EXACT, MISMATCH, NOT FAITHFUL,
UNCHECKED; ``compiler.fidelity.verdict``) decides the exit status.

Command-layer code: it passes the reference backend's ``run_integer_ann`` and the SNN's predictions into
the library (the compiler imports no backend). A model that cannot be run as the reference is never a
crash: its fidelity is reported unchecked, with onnxruntime's reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from snnc.backends.reference import run_integer_ann
from snnc.ir import Network, apply_projection

from ..fidelity import (DEFAULT_MIN_FIDELITY, FidelityPartial, FidelityResult, IntegerRun, LayerBits, MinFidelity,
                        ReferenceModelError, Verdict, WeightKind, activation_probes, fidelity_verdict,
                        layer_bits, measure_fidelity_partial, probe_tensor_sizes, reference_executor,
                        weight_kind)
from .verify import AnnVerifyReport, fmt4, network_levels, reference_network

log = logging.getLogger(__name__)


@dataclass
class UserModelRun:
    """The user's model against snnc's integer network: the comparison (None when the model could not be
    run: ``error`` says why), the model's kind and per-layer weight bits."""

    result: FidelityResult | None
    kind: WeightKind
    bits: list[LayerBits] = field(default_factory=list)
    error: str | None = None


def compare_with_user_model(net: Network, model_bytes: bytes | None, x: np.ndarray, y: np.ndarray | None,
                            snn_predictions: np.ndarray | None = None, name: str = "model",
                            batch_size: int = 256) -> UserModelRun:
    """Run the user's model (``model_bytes``) and snnc's integer network at tau = L over ``x`` and compare
    them layer by layer (``compiler.fidelity.measure_fidelity``). ``snn_predictions``: the SNN's argmax per
    sample, already computed by the caller, for the user/SNN agreement."""
    um = read_user_model(net, model_bytes, name)
    if um.model is None:
        return UserModelRun(None, um.kind, um.bits, um.error)
    part, error = fidelity_partial(net, um.model, x, y, snn_predictions, name, batch_size)
    return UserModelRun(None if part is None else part.result(), um.kind, um.bits, error)


@dataclass
class UserModel:
    """The user's model read for the comparison (``model`` None when it cannot be: ``error`` says why), its
    kind and per-layer weight bits."""

    model: onnx.ModelProto | None
    kind: WeightKind
    bits: list[LayerBits] = field(default_factory=list)
    error: str | None = None


def read_user_model(net: Network, model_bytes: bytes | None, name: str = "model") -> UserModel:
    """Parse the user's model and read what the verdict needs of it without running it: its kind and bits."""
    if model_bytes is None:
        return UserModel(None, WeightKind.FLOAT, error="the source model is not embedded in the bundle and "
                                                       "--model was not given")
    try:
        model = onnx.load_from_string(bytes(model_bytes))
    except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
        return UserModel(None, WeightKind.FLOAT, error=f"'{name}' is not a readable ONNX model: {e}")
    kind = weight_kind(model)
    try:
        bits = layer_bits(net, model)
    except (ValueError, KeyError, TypeError) as e:  # a model whose weight quantizers cannot be read as integers
        log.info("weight bits of '%s' not read: %s", name, e)
        bits = []
    return UserModel(model, kind, bits)


def fidelity_partial(net: Network, model: onnx.ModelProto, x: np.ndarray, y: np.ndarray | None,
                     snn_predictions: np.ndarray | None = None, name: str = "model", batch_size: int = 256,
                     not_levels: frozenset = frozenset()) -> tuple[FidelityPartial | None, str | None]:
    """The comparison over ``x`` (all samples, or one shard of them: ``compiler.fidelity.merge_fidelity``
    adds shards up), or None and the reason when the model cannot be run as the reference.
    ``not_levels``: populations earlier shards found not levels."""
    L = network_levels(net)
    ref = reference_network(net)

    def integer_run(xb):
        r = run_integer_ann(ref, xb, timesteps=L)
        return IntegerRun(r.levels, r.predictions())

    snn_fn = None
    if snn_predictions is not None:
        pos = [0]

        def snn_fn(xb):
            p = snn_predictions[pos[0]:pos[0] + len(xb)]
            pos[0] += len(xb)
            return p

    try:
        ex = reference_executor(model, name, batch_size)
        probes = activation_probes(net, model, probe_tensor_sizes(ex, x[:1], net, model))
        part = measure_fidelity_partial(ref, ex, probes, x, y, integer_run, L, apply_projection, snn_fn, batch_size,
                                        not_levels=not_levels)
    except ReferenceModelError as e:
        return None, str(e)
    return part, None


def judge(rep: AnnVerifyReport, run: UserModelRun, min_fidelity: MinFidelity = DEFAULT_MIN_FIDELITY) -> Verdict:
    """The verdict of ``snnc verify --against ann``: N == M_int from ``rep`` (T = L: every count equal; T != L:
    rates, not compared with levels, but a layerwise SNN must equal its own integer network) and M_int's
    fidelity to the user's model from ``run``."""
    if rep.comparison == "levels":
        spiking_exact: bool | None = rep.exact
    else:
        spiking_exact = False if rep.integer_network_mismatched else None
    v = fidelity_verdict(run.result, run.kind, spiking_exact, min_fidelity, run.bits)
    if run.error:
        v = Verdict(v.exact, v.faithful, v.kind, v.reasons + (run.error,), v.meets_min)
    return v


def merge_into_report(rep: AnnVerifyReport, run: UserModelRun) -> None:
    """The user's model's accuracy and its agreement with snnc's integer network into today's keys
    (``accuracy.ann_float`` / ``prediction_agreement.ann_int_vs_ann_float``: the model that came in)."""
    if run.result is None:
        return
    rep.accuracy["ann_float"] = run.result.accuracy.get("user")
    rep.prediction_agreement["ann_int_vs_ann_float"] = run.result.prediction_agreement.get("user_vs_int")


def verify_json(rep: AnnVerifyReport, run: UserModelRun, verdict: Verdict, min_fidelity: MinFidelity,
                input_warning: str | None) -> dict:
    """``snnc verify --against ann --json``: today's keys, plus ``fidelity`` and ``verdict``."""
    d = rep.to_dict()
    if run.result is not None:
        d.update(run.result.to_dict())
    else:
        d["fidelity"] = None
    d["verdict"] = {"name": verdict.label.value, "exit_code": verdict.exit_code, "message": verdict.message(),
                    "faithfulness": verdict.faithful.value, "model_kind": verdict.kind.value,
                    "reasons": list(verdict.reasons),
                    "min_fidelity": {"level_agreement": min_fidelity.level_agreement,
                                     "prediction_agreement": min_fidelity.prediction_agreement},
                    "weight_bits": [{"layer": b.layer, "kept": b.kept, "needed": b.needed} for b in run.bits]}
    d["ok"] = verdict.ok
    d["input_range_warning"] = input_warning
    return d


def fidelity_table(run: UserModelRun) -> list[str]:
    """The per-layer three-way table (text): levels compared, differing from the model end to end, mean and
    largest |dM|, and, fed the model's own inputs, levels differing within / beyond snnc's rounding."""
    if run.result is None:
        return [f"  fidelity to the model: unchecked ({run.error})"]
    r = run.result
    out = [f"  fidelity to the model ({r.reference}, {r.samples} samples): levels M_model vs M_int"
           + ("; fed the model's own inputs, M_local vs M_model" if any(L.local_compared for L in r.layers) else ""),
           f"  {'layer':<12} {'compared':>10} {'differ':>9} {'mean|dM|':>9} {'max|dM|':>8} {'local':>7} "
           f"{'rounding':>9} {'beyond':>7}  status"]
    for L in r.layers:
        if L.status != "compared":
            out.append(f"  {L.layer:<12} {'-':>10} {'-':>9} {'-':>9} {'-':>8} {'-':>7} {'-':>9} {'-':>7}  "
                       f"{L.status}: {L.reason}")
            continue
        out.append(f"  {L.layer:<12} {L.compared:>10} {L.mismatched:>9} {L.mean_abs_diff:>9.5f} {L.max_abs_diff:>8} "
                   f"{L.local_mismatched:>7} {L.local_within_precision:>9} {L.local_unexplained:>7}  compared")
    pa = r.prediction_agreement
    out.append(f"  prediction agreement: model vs integer ANN {fmt4(pa.get('user_vs_int'))}, integer ANN vs snn "
               f"{fmt4(pa.get('int_vs_snn'))}, model vs snn {fmt4(pa.get('user_vs_snn'))}")
    return out
