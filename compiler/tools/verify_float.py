"""``snnc verify --against ann`` for a training-free network (paper 004: a plain ReLU net converted
with calibrated thresholds and multi-threshold neurons).

Such a network has no quantized ANN to be exact against: the conversion is an approximation whose
quality is measured, not proven. Each spiking population's value as the float ANN sees it
(``SimResult.activation``: rate coding theta/2^(n-1) * N/T, differential coding the encoded value)
is compared with the float activation of the ReLU it replaced (the imported float graph run in
float64), and the predictions with the float ANN's.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.ir import DifferentialCoding, GradedFunctionUnit, Network, Schedule, per_channel

from ..errors import SnncError
from ..lowering.tokens import float_to_ir
from ..metadata import layer_records
from .backend_choice import CountingBackend, device_of, reference_backend
from .verify_units import check_units
from .verify import fmt4


@dataclass
class FloatLayerReport:
    name: str
    relu: str                # the ONNX ReLU the population replaced
    compared: int
    mean_abs_error: float    # mean |a_snn - a_float| in units of the layer's threshold theta
    rel_rms_error: float     # rms(a_snn - a_float) / rms(a_float)


@dataclass
class FloatVerifyReport:
    schedule: str
    timesteps: int
    samples: int
    random_inputs: bool
    coding: str
    accuracy: dict
    prediction_agreement: dict
    layers: list[FloatLayerReport] = field(default_factory=list)
    spikes_per_sample: float = 0.0
    sops_per_sample: float = 0.0
    comparison: str = "float"   # against the float ANN: measured, not demanded
    backend: str = "reference"  # what ran the SNN (an exact backend: the reference's integers)
    device: str = "cpu"
    units: dict | None = None   # graded units (transformers): replayed from their inputs (verify_units.py)

    @property
    def ok(self) -> bool:
        """Nothing to be exact against: the conversion approximates the float model, so the verdict is
        UNCHECKED (never EXACT) and ``snnc verify`` exits 1 (docs/cli.md); graded units (transformers) are
        checked on their own, and one that differs makes the verdict MISMATCH."""
        return False

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def units_exact(self) -> bool:
        return self.units is None or bool(self.units["exact"])

    @property
    def verdict(self) -> str:
        return "UNCHECKED" if self.units_exact else "MISMATCH"

    def verdict_message(self) -> str:
        if not self.units_exact:
            return "MISMATCH: graded units' messages differ from the IR's equations (the units are named above)"
        return ("UNCHECKED: a training-free network approximates the float model (no quantized ANN, no levels to be "
                "equal to); its per-layer errors and accuracy are measured above, not proven"
                + ("; its graded units are exact" if self.units is not None else ""))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["verdict"] = {"name": self.verdict, "exit_code": self.exit_code, "message": self.verdict_message()}
        return d


def _float_graph(model_bytes: bytes):
    from ..api import import_model

    fd, path = tempfile.mkstemp(suffix=".onnx")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model_bytes)
        return import_model(path).graph
    finally:
        os.remove(path)


def verify_training_free(net: Network, x: np.ndarray, y: np.ndarray | None, model_bytes: bytes | None,
                         random_inputs: bool = False, batch_size: int = 256, progress=None,
                         backend: CountingBackend | None = None) -> FloatVerifyReport:
    """The SNN's per-layer values and predictions against the float ANN (see module docstring);
    ``backend`` runs the SNN (an exact backend with ``simulate``; default the reference)."""
    backend = reference_backend(backend)
    if model_bytes is None:
        raise SnncError("a training-free network is verified against its float ANN: the bundle does not embed the "
                        "ONNX model, give --model FILE.onnx")
    g = _float_graph(model_bytes)
    units = {n.name: n for n in net.nodes if isinstance(n, GradedFunctionUnit)}
    pops = {r.layer: r.onnx_activation for r in layer_records(net)
            if r.onnx_activation and r.layer in {p.name for p in net.populations} | set(units)}
    missing = [r for r in pops.values() if r not in {o.name for o in g.ops}]
    if missing:
        raise SnncError(f"the ONNX model does not match the bundle: ReLU node(s) {missing} not found in it")
    state_bits = net.metadata.get("target", {}).get("numeric", {}).get("state_bits")
    n = {k: 0 for k in pops}
    abs_err = {k: 0.0 for k in pops}
    sq_err = {k: 0.0 for k in pops}
    sq_ref = {k: 0.0 for k in pops}
    pred_snn, pred_f = [], []
    events = sops = 0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        snn = backend.simulate(net, xb, Schedule.PIPELINED, state_bits=state_bits, count_ops=True)
        vals = g.run(xb)
        for name, relu in pops.items():
            pop = net.node(name)
            a_snn = unit_value(pop, snn, net) if name in units else snn.activation(net, name)
            a_f = ir_layout(vals[relu]).reshape(a_snn.shape)
            theta = 1.0 if name in units else per_channel(pop.real_threshold, pop.shape)
            d = a_snn - a_f
            n[name] += d.size
            abs_err[name] += float(np.sum(np.abs(d) / theta))
            sq_err[name] += float(np.sum(d * d))
            sq_ref[name] += float(np.sum(a_f * a_f))
        events += sum(int(snn.ops[p.name].events.sum()) for p in net.populations)
        sops += sum(int(o.sops_out.sum()) for o in snn.ops.values())
        pred_snn.append(snn.predictions())
        out = vals[g.output]
        pred_f.append(out.reshape(len(xb), -1).argmax(axis=1))
        if progress is not None:
            progress(len(xb))
    pred_snn, pred_f = np.concatenate(pred_snn), np.concatenate(pred_f)
    acc = (lambda p: None if y is None else float(np.mean(p == np.asarray(y))))  # noqa: E731
    layers = [FloatLayerReport(k, pops[k], n[k], abs_err[k] / max(n[k], 1),
                               float(np.sqrt(sq_err[k] / sq_ref[k])) if sq_ref[k] > 0 else 0.0) for k in pops]
    check = None
    if units:
        c = check_units(net, x[:UNIT_CHECK_SAMPLES], state_bits)
        check = {"exact": c.exact, "units": c.units, "samples": int(min(len(x), UNIT_CHECK_SAMPLES)),
                 "messages_compared": c.messages_compared, "mismatched": c.mismatched}
    return FloatVerifyReport(
        units=check,
        schedule="pipelined", timesteps=net.timesteps, samples=len(x), random_inputs=random_inputs,
        coding=type(net.coding).__name__, accuracy={"snn": acc(pred_snn), "ann_float": acc(pred_f)},
        prediction_agreement={"snn_vs_ann_float": float(np.mean(pred_snn == pred_f))}, layers=layers,
        spikes_per_sample=events / max(len(x), 1), sops_per_sample=sops / max(len(x), 1),
        backend=backend.name, device=device_of(backend))


def format_float_report(bundle, rep: FloatVerifyReport, random_inputs: bool) -> str:
    """What ``snnc verify --against ann`` prints for a training-free network."""
    out = [f"verify {bundle} against the float ANN (training-free network, {rep.coding}, T={rep.timesteps}), "
           f"{rep.samples} samples" + (" (random inputs)" if random_inputs else "")
           + f"; SNN on {rep.backend} ({rep.device})",
           "  no quantized ANN to be exact against: per-layer errors and predictions are measured, not demanded",
           f"  {'layer':<10} {'ReLU':<16} {'compared':>10} {'|err|/theta':>12} {'rel rms':>8}"]
    for L in rep.layers:
        out.append(f"  {L.name:<10} {L.relu[:16]:<16} {L.compared:>10} {L.mean_abs_error:>12.5f} {L.rel_rms_error:>8.4f}")
    out.append(f"  accuracy: snn {fmt4(rep.accuracy['snn'])}, float ANN {fmt4(rep.accuracy['ann_float'])}; "
               f"prediction agreement {fmt4(rep.prediction_agreement['snn_vs_ann_float'])}")
    out.append(f"  {rep.spikes_per_sample:.1f} spikes and {rep.sops_per_sample:.0f} synaptic ops per sample")
    u = rep.units
    if u is not None:
        out.append(f"  graded units: {'EXACT' if u['exact'] else 'NOT EXACT'}: {u['units']} units, "
                   f"{u['messages_compared']:,} messages on {u['samples']} samples recomputed from their inputs with the "
                   "IR's equations" + ("" if u["exact"] else f"; differing messages per unit: {u['mismatched']}"))
        out.append("  (units' rows above: |err| in real units, not over a threshold)")
    out.append(f"  {rep.verdict_message()}")
    return "\n".join(out)


#: how many samples the graded units are replayed on (every step, every message)
UNIT_CHECK_SAMPLES = 32


def unit_value(node: GradedFunctionUnit, snn, net: Network) -> np.ndarray:
    """The real value a graded unit holds after T steps: what it sent, y_T (differential) or
    C_T = round(T y / 2^G) (rate), in units of 2^-G out_scale."""
    sent = np.asarray(snn.counts[node.name], np.float64)
    if not isinstance(net.coding, DifferentialCoding):
        sent = sent * 2.0**node.frac_bits / net.timesteps
    return sent * 2.0**-node.frac_bits * node.out_scale


def ir_layout(a: np.ndarray) -> np.ndarray:
    """A float tensor (B, ...) in the IR's layout: a token tensor (B, T, D) as (B, D, T, 1)."""
    if a.ndim != 3:
        return a
    flat = np.empty((a.shape[0], a[0].size))
    flat[:, float_to_ir(a.shape[1:])] = a.reshape(a.shape[0], -1)
    return flat
