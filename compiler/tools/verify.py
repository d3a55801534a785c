"""Verification: the SNN against the integer ANN and the float ANN (``--against ann``; the SNN runs on
an exact backend, ``--backend``), or a backend against the reference simulator (``--against lava|torch``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.backends.reference import run_integer_ann, simulate
from snnc.ir import GRADED_UNITS, Network, Schedule, per_channel, replace

from ..errors import SnncError
from ..fidelity import reference_executor
from ..metadata import layer_records
from .backend_choice import CountingBackend, device_of, reference_backend


@dataclass
class LayerReport:
    name: str
    compared: int
    mismatched: int          # neurons whose rate N/T differs from the ANN's M/L (T = L: N != M)
    unevenness_error: float  # mean over neurons and samples of |lambda*M/L - lambda*N/T| (paper 003, real units)
    rate_error: float = 0.0  # the same in units of lambda: mean |M/L - N/T|, in [0, 1]


@dataclass
class AnnVerifyReport:
    exact: bool
    schedule: str
    timesteps: int
    samples: int
    random_inputs: bool
    neurons_compared: int
    neurons_mismatched: int
    accuracy: dict
    prediction_agreement: dict
    layers: list[LayerReport] = field(default_factory=list)
    levels: int = 0                 # the ANN's L
    comparison: str = "levels"      # "levels" (T = L: counts must equal) or "rates" (T != L: errors reported)
    integer_network_mismatched: int | None = None  # layerwise, T != L: SNN vs its own integer network at T
    spikes_per_sample: float = 0.0  # spike events (either sign) per sample, all populations
    sops_per_sample: float = 0.0    # synaptic operations per sample (spikes and graded input values)
    snn_predictions: np.ndarray | None = field(default=None, repr=False, compare=False)  # not in the JSON
    backend: str = "reference"      # what ran the SNN (an exact backend: the reference's integers)
    device: str = "cpu"

    @property
    def ok(self) -> bool:
        """What ``snnc verify`` exits 0 on: exact at T = L; at T != L, rates are reported, not
        demanded, but a layerwise SNN must still equal its own integer network."""
        if self.comparison == "levels":
            return self.exact
        return not self.integer_network_mismatched

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("snn_predictions")
        d["ok"] = self.ok
        return d


def float_ann_outputs(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """The user's model's first output on ``x``, run with its own semantics (``fidelity.reference_executor``:
    onnxruntime for standard ONNX, the expanded QONNX ops for QONNX/FINN models, static batches chunked).
    Raises ``ReferenceModelError`` (one line) when the model cannot be run."""
    ex = reference_executor(model_bytes, "model")
    return ex.run(x)[ex.output_name]


def _acc(pred, y):
    return None if y is None else float(np.mean(pred == y))


def network_levels(net: Network) -> int:
    """The matched ANN's L (stored by the compiler; else the populations' common L)."""
    L = net.metadata.get("levels")
    if L is None and net.mixed_steps:  # mixed levels: the network's T is its largest L
        L = net.timesteps
    if L is None:
        Ls = {p.levels for p in net.populations}
        if len(Ls) != 1:
            raise SnncError(f"populations have different levels {sorted(Ls)}; cannot define one ANN reference")
        L = Ls.pop()
    return int(L)


def reference_network(net: Network) -> Network:
    """The network whose integer ANN at tau = L is the quantized ANN: ``net`` with every population's
    V0 put back to the one matched to its quantizer (the compiler records it when ``--v0`` chose
    another). Neuron models do not matter there: the integer ANN has none."""
    changed = {r.layer: r.matched_v0 for r in layer_records(net) if r.matched_v0 is not None}
    if not changed:
        return net
    nodes = [replace(n, v0=np.asarray(changed[n.name], np.int64)) if n.name in changed else n for n in net.nodes]
    return Network(nodes, net.projections, net.timesteps, net.metadata)


def verify_against_ann(
    net: Network, x: np.ndarray, y: np.ndarray | None, schedule: Schedule, model_bytes: bytes | None,
    random_inputs: bool = False, batch_size: int = 256, progress=None, float_predictions: np.ndarray | None = None,
    backend: CountingBackend | None = None,
) -> AnnVerifyReport:
    """The SNN's counts N against the quantized ANN's levels M (the integer ANN with tau = L).

    T = L: exact means N == M for every neuron (the theorem; layerwise). T != L: the SNN's
    activation is lambda*N/T and the ANN's lambda*M/L; their difference is reported per layer.
    ``float_predictions`` (argmax of the float ANN, if already known) saves running onnxruntime.
    ``backend``: what runs the SNN (an exact backend with ``simulate``; default the reference).
    """
    backend = reference_backend(backend)
    part = ann_partial(net, x, y, schedule, backend, batch_size, progress)
    return finish_ann(net, part, schedule, backend.name, device_of(backend), random_inputs, model_bytes,
                      float_predictions, x)


@dataclass
class AnnPartial:
    """The SNN against the integer ANN over some consecutive samples (one shard, or all of them): integer
    counts per population, the float error sums of every batch of ``batch_size`` samples in order (added up
    by ``finish_ann`` in that order, so shards that start on a batch boundary give the same sums as one
    process), predictions and labels in sample order."""

    compared: dict[str, int]
    mismatched: dict[str, int]
    unevenness: dict[str, list[float]]   # per batch: sum of lambda * |M/L - N/T|
    rate: dict[str, list[float]]         # per batch: sum of |M/L - N/T|
    own_mismatched: int | None
    events: int
    sops: int
    pred_snn: list[np.ndarray]
    pred_int: list[np.ndarray]
    labels: list[np.ndarray] | None
    samples: int

    @classmethod
    def merge(cls, parts: list["AnnPartial"]) -> "AnnPartial":
        """Consecutive shards' partials, in sample order, as one."""
        if not parts:
            raise ValueError("AnnPartial.merge: no shard")
        names = list(parts[0].compared)
        own = [p.own_mismatched for p in parts]
        return cls({n: sum(p.compared[n] for p in parts) for n in names},
                   {n: sum(p.mismatched[n] for p in parts) for n in names},
                   {n: [b for p in parts for b in p.unevenness[n]] for n in names},
                   {n: [b for p in parts for b in p.rate[n]] for n in names},
                   None if own[0] is None else sum(own), sum(p.events for p in parts), sum(p.sops for p in parts),
                   [a for p in parts for a in p.pred_snn], [a for p in parts for a in p.pred_int],
                   None if parts[0].labels is None else [a for p in parts for a in p.labels],
                   sum(p.samples for p in parts))


def _ann_setup(net: Network):
    T, L = net.timesteps, network_levels(net)
    mixed = net.mixed_steps  # mixed L: each population's L and steps (T = max L), the ANN at tau_p = L_p
    if mixed and L != T:
        raise SnncError(f"network with mixed levels {mixed}: its T ({T}) must be its largest L ({L})")
    return T, L, mixed


def ann_partial(net: Network, x: np.ndarray, y: np.ndarray | None, schedule: Schedule, backend: CountingBackend,
                batch_size: int = 256, progress=None) -> AnnPartial:
    """The SNN (on ``backend``) against the integer ANN over ``x``, batch by batch (``AnnPartial``)."""
    schedule = Schedule(schedule)
    T, L, mixed = _ann_setup(net)
    ref_net = reference_network(net)
    pops = net.populations
    compared = {p.name: 0 for p in pops}
    mism = {p.name: 0 for p in pops}
    unev: dict[str, list[float]] = {p.name: [] for p in pops}
    rate: dict[str, list[float]] = {p.name: [] for p in pops}
    own_mism = 0 if (T != L and schedule is Schedule.LAYERWISE) else None
    events = sops = 0
    pred_snn, pred_int = [], []
    state_bits = net.metadata.get("target", {}).get("numeric", {}).get("state_bits")
    Lp = {p.name: (p.levels if mixed else L) for p in pops}
    Tp = {p.name: mixed.get(p.name, T) for p in pops}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        ann = run_integer_ann(ref_net, xb, timesteps=L)
        snn = backend.simulate(net, xb, schedule=schedule, state_bits=state_bits, count_ops=True)  # re-checks the width
        own = run_integer_ann(net, xb) if own_mism is not None else None
        for p in pops:
            M, N = ann.levels[p.name], snn.counts[p.name]
            compared[p.name] += M.size
            mism[p.name] += int(np.count_nonzero(M * Tp[p.name] != N * Lp[p.name]))
            d = np.abs(M / Lp[p.name] - N / Tp[p.name])
            lam = per_channel(p.real_threshold, p.shape)
            unev[p.name].append(float(np.sum(lam * d)))
            rate[p.name].append(float(np.sum(d)))
            if own is not None:
                own_mism += int(np.count_nonzero(own.levels[p.name] != N))
        events += sum(int(snn.ops[p.name].events.sum()) for p in pops)
        sops += sum(int(o.sops_out.sum()) for o in snn.ops.values())
        pred_snn.append(snn.predictions())
        pred_int.append(ann.predictions())
        if progress is not None:
            progress(len(xb))
    return AnnPartial(compared, mism, unev, rate, own_mism, events, sops, pred_snn, pred_int,
                      None if y is None else [np.asarray(y)], len(x))


def _in_order(values: list[float]) -> float:
    """The per-batch sums added one after another from 0.0, as one process accumulates them (not ``sum``:
    from Python 3.12 it adds floats with compensation, which would differ in the last bits)."""
    total = 0.0
    for v in values:
        total += v
    return total


def finish_ann(net: Network, part: AnnPartial, schedule: Schedule, backend_name: str, device: str,
               random_inputs: bool = False, model_bytes: bytes | None = None,
               float_predictions: np.ndarray | None = None, x: np.ndarray | None = None) -> AnnVerifyReport:
    """The report from the partial over all samples (``model_bytes`` with ``x``: also the float ANN's
    predictions, when ``float_predictions`` is not given)."""
    schedule = Schedule(schedule)
    T, L, _ = _ann_setup(net)
    pops = net.populations
    n_samples = part.samples
    y = None if part.labels is None else (np.concatenate(part.labels) if part.labels else np.zeros(0, np.int64))
    pred_snn = np.concatenate(part.pred_snn) if part.pred_snn else np.zeros(0, np.int64)
    pred_int = np.concatenate(part.pred_int) if part.pred_int else np.zeros(0, np.int64)
    acc = {"snn": _acc(pred_snn, y), "ann_int": _acc(pred_int, y), "ann_float": None}
    agree = {"snn_vs_ann_int": float(np.mean(pred_snn == pred_int)), "ann_int_vs_ann_float": None}
    pred_f = float_predictions
    if pred_f is None and model_bytes is not None and x is not None:
        yf = float_ann_outputs(model_bytes, x.astype(np.float32))
        pred_f = yf.reshape(len(x), -1).argmax(axis=1)
    if pred_f is not None:
        acc["ann_float"] = _acc(pred_f, y)
        agree["ann_int_vs_ann_float"] = float(np.mean(pred_int == pred_f))
    n = {k: max(v, 1) for k, v in part.compared.items()}
    layers = [LayerReport(p.name, part.compared[p.name], part.mismatched[p.name],
                          _in_order(part.unevenness[p.name]) / n[p.name], _in_order(part.rate[p.name]) / n[p.name])
              for p in pops]
    total_m = sum(part.mismatched.values())
    return AnnVerifyReport(
        exact=total_m == 0, schedule=schedule.value, timesteps=T, samples=n_samples,
        random_inputs=random_inputs, neurons_compared=sum(part.compared.values()), neurons_mismatched=total_m,
        accuracy=acc, prediction_agreement=agree, layers=layers, levels=L,
        comparison="levels" if T == L else "rates", integer_network_mismatched=part.own_mismatched,
        spikes_per_sample=part.events / max(n_samples, 1), sops_per_sample=part.sops / max(n_samples, 1),
        snn_predictions=pred_snn, backend=backend_name, device=device,
    )


@dataclass
class BackendVerifyReport:
    exact: bool
    backend: str
    schedule: str
    samples: int
    steps_compared: int
    spikes_compared: int
    mismatches: int
    first_mismatch: str | None
    seconds_backend: float
    seconds_reference: float
    extra: dict = field(default_factory=dict)
    units_compared: int = 0              # graded units whose every per-step message was compared
    unit_messages_compared: int = 0      # their messages (step x sample x element)
    units_unchecked: list[str] = field(default_factory=list)   # graded units the backend did not record

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        d[f"seconds_{self.backend}"] = d.pop("seconds_backend")
        return d


def _step_diff(a: np.ndarray, b: np.ndarray, what: str) -> tuple[int, str | None]:
    """(values that differ, where the first differing step is) of two (steps, ...) recordings of ``what``."""
    diff = a != b
    n = int(np.count_nonzero(diff))
    if not n:
        return 0, None
    t = int(np.argwhere(diff.reshape(a.shape[0], -1).any(axis=1))[0][0])
    return n, f"{what}, timestep {t + 1} (of its {a.shape[0]})"


def verify_against_backend(net: Network, x: np.ndarray, backend, schedule: Schedule) -> BackendVerifyReport:
    """Every population's spikes at every step, every graded unit's messages (those the backend records;
    the others are listed as unchecked), and the readouts, must be identical."""
    t0 = time.perf_counter()
    ref = simulate(net, x, schedule=schedule, record=True)
    t1 = time.perf_counter()
    other = backend.run(net, x, schedule=schedule, record=True)
    t2 = time.perf_counter()
    if other.spikes is None:
        raise SnncError(f"backend '{backend.name}' did not record spikes")
    mismatches, first, steps, spikes = 0, None, 0, 0
    for p in net.populations:
        a, b = ref.spikes[p.name], other.spikes.get(p.name)
        if b is None or b.shape != a.shape:
            raise SnncError(f"backend '{backend.name}': population '{p.name}' spikes have shape "
                            f"{None if b is None else b.shape}, expected {a.shape}")
        steps += a.shape[0]
        spikes += a.size
        n, where = _step_diff(a, b, f"population '{p.name}'")
        first = first or where
        mismatches += n
    units, unit_msgs, unchecked = 0, 0, []
    for u in (n for n in net.ordered_nodes() if isinstance(n, GRADED_UNITS) and n.name in ref.spikes):
        a, b = ref.spikes[u.name], other.spikes.get(u.name)
        if b is None:
            unchecked.append(u.name)
            continue
        if b.shape != a.shape:
            raise SnncError(f"backend '{backend.name}': graded unit '{u.name}' messages have shape {b.shape}, "
                            f"expected {a.shape}")
        units += 1
        unit_msgs += a.size
        n, where = _step_diff(a, b, f"graded unit '{u.name}'")
        first = first or where
        mismatches += n
    for r in net.readouts:
        n = int(np.count_nonzero(ref.readout[r.name] != other.readout[r.name]))
        if n and first is None:
            first = f"readout '{r.name}' final value"
        mismatches += n
    return BackendVerifyReport(
        exact=mismatches == 0, backend=backend.name, schedule=Schedule(schedule).value, samples=len(x),
        steps_compared=steps, spikes_compared=spikes, mismatches=mismatches, first_mismatch=first,
        seconds_backend=t2 - t1, seconds_reference=t1 - t0,
        extra=getattr(backend, "report_extra", lambda: {})(),
        units_compared=units, unit_messages_compared=unit_msgs, units_unchecked=unchecked,
    )


def fmt4(v) -> str:
    """A ratio with 4 decimals, or n/a."""
    return "n/a" if v is None else f"{v:.4f}"


def format_ann_report(bundle, rep: AnnVerifyReport, random_inputs: bool) -> str:
    """What ``snnc verify --against ann`` prints for a quantized network."""
    out = [f"verify {bundle} against the quantized ANN (L={rep.levels}), schedule {rep.schedule}, "
           f"T={rep.timesteps}, {rep.samples} samples" + (" (random inputs)" if random_inputs else "")
           + f"; SNN on {rep.backend} ({rep.device})"]
    if rep.comparison == "rates":
        out.append("  T != L: comparing rates lambda*N/T with activations lambda*M/L (not demanding equality)")
    out.append(f"  {'layer':<10} {'compared':>10} {'mismatched':>11} {'unevenness':>11} {'rate err':>9}")
    for L in rep.layers:
        out.append(f"  {L.name:<10} {L.compared:>10} {L.mismatched:>11} {L.unevenness_error:>11.6f} {L.rate_error:>9.5f}")
    out.append(f"  accuracy: snn {fmt4(rep.accuracy['snn'])}, integer ANN {fmt4(rep.accuracy['ann_int'])}, "
               f"the model {fmt4(rep.accuracy['ann_float'])}")
    out.append(f"  prediction agreement: snn vs integer ANN {fmt4(rep.prediction_agreement['snn_vs_ann_int'])}, "
               f"integer ANN vs the model {fmt4(rep.prediction_agreement['ann_int_vs_ann_float'])}")
    out.append(f"  {rep.spikes_per_sample:.1f} spikes and {rep.sops_per_sample:.0f} synaptic ops per sample")
    if rep.comparison == "levels":
        out.append(f"  SNN vs snnc's integer ANN: {'equal' if rep.exact else 'DIFFERENT'}, {rep.neurons_mismatched} "
                   f"of {rep.neurons_compared} neuron counts differ")
    else:
        out.append(f"  rates differ from the ANN for {rep.neurons_mismatched} of {rep.neurons_compared} neurons")
        if rep.integer_network_mismatched is not None:
            out.append(f"  layerwise SNN vs its integer network at T={rep.timesteps}: "
                       f"{'equal' if rep.integer_network_mismatched == 0 else 'DIFFERENT'} "
                       f"({rep.integer_network_mismatched} counts differ)")
    return "\n".join(out)


def format_backend_report(bundle, against: str, rep: BackendVerifyReport) -> str:
    """What ``snnc verify --against BACKEND`` prints."""
    return "\n".join([
        f"verify {bundle} against {against}, schedule {rep.schedule}, {rep.samples} samples: "
        f"{rep.spikes_compared} spikes over {rep.steps_compared} population-steps compared, "
        f"{rep.mismatches} mismatches" + (f"; first at {rep.first_mismatch}" if rep.first_mismatch else ""),
        *([f"  graded units: {rep.unit_messages_compared} messages of {rep.units_compared} units compared (in the "
           "mismatches above)" + (f"; not recorded by {against}, unchecked: {', '.join(rep.units_unchecked)}"
                                  if rep.units_unchecked else "")] if rep.units_compared or rep.units_unchecked else []),
        f"  {'IDENTICAL' if rep.exact else 'DIFFERENT'}"
        f"{' where compared (graded units unchecked, above)' if rep.exact and rep.units_unchecked else ''} (reference {rep.seconds_reference:.3f}s, "
        f"{against} {rep.seconds_backend:.3f}s)"])
