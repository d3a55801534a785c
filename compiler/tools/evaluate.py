"""``snnc eval``: sweep conversion settings over a data set (the ablations of papers 000, 003, 004).

Two kinds of model, told apart by their activations (``metadata.model_conversion``):

* **quantized** (QCFS / quantized clip activations, papers 000 and 003): the grid is neuron model
  (if, dual-threshold) x V0 mode x schedule x T. One network is compiled per (neuron, V0, T) and
  run in every schedule; each setting is measured by ``verify_against_ann`` against the quantized
  ANN (the integer ANN at tau = L, with the quantizer's own V0), so accuracy, exactness, per-layer
  unevenness (rate) error and spike counts all come from one code path.
* **plain ReLU** (training-free, paper 004): the grid is multi-threshold neuron size n x coding
  (rate, differential) x threshold method (iterate, percentile:q, max) x T, always in the
  pipelined schedule, with thresholds from calibration data. The reference is the float ANN
  (onnxruntime): accuracy, agreement with its predictions, spikes and synaptic operations per
  sample, and paper 004's energy ratio (Eq. 31, ``energy_ratio``).

Either way the ONNX model is imported once and the float ANN runs once.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.backends import Keep
from snnc.ir import Schedule
from snnc.ir.limits import DEFAULT_LIMITS

from ..api import ImportedModel, compile_imported, import_model
from ..config import CodingKind, CompileConfig, NeuronKind, V0Mode, parse_neuron_spec
from ..data import load_arrays, load_data
from ..errors import ConfigError, ConversionError, DataFileError, SnncError
from ..fidelity import input_range_report
from ..metadata import Conversion, layer_records, model_conversion
from ..outputs import save_figure
from .backend_choice import BackendChoice, CountingBackend, reference_backend
from .runner import reference_runner
from .verify import float_ann_outputs, verify_against_ann

log = logging.getLogger(__name__)


QUANTIZED, RELU = "quantized", "relu"  # the report's model kinds (``kind_of``)


def neuron_label(kind: NeuronKind, n: int | None) -> str:
    return kind.value if n is None else f"{kind.value}:{n}"


@dataclass
class EvalGrid:
    """The settings to sweep; every combination is run.

    An axis left at None takes its default for the model's kind: quantized models neuron [if],
    v0 [auto], schedule [layerwise]; plain ReLU models neuron [multi-threshold:4], coding [rate],
    thresholds [iterate], schedule [pipelined]. An axis that does not apply to the model's kind
    (v0 for a plain ReLU model; coding or thresholds for a quantized one) must stay None:
    ``resolve`` says so otherwise.
    """

    timesteps: list[int]
    neurons: list[str] | None = None
    v0s: list[V0Mode] | None = None
    schedules: list[Schedule] | None = None
    codings: list[CodingKind] | None = None
    thresholds: list[str] | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.timesteps:
            problems.append("no timesteps given")
        bad = [t for t in self.timesteps if not 1 <= int(t) <= DEFAULT_LIMITS.max_timesteps]
        if bad:
            raise ConfigError("timesteps", f"must be in 1..{DEFAULT_LIMITS.max_timesteps} (snnc.ir.limits: the "
                              f"simulation runs T steps), got {bad}")
        for name, values in (("neuron", self.neurons), ("v0", self.v0s), ("schedule", self.schedules),
                             ("coding", self.codings), ("thresholds", self.thresholds)):
            if values is not None and not values:
                problems.append(f"no {name} given")
        if problems:
            raise SnncError("invalid eval grid: " + "; ".join(problems))
        self.timesteps = [int(t) for t in self.timesteps]
        if self.neurons is not None:
            self.neurons = [neuron_label(*parse_neuron_spec(n.value if isinstance(n, NeuronKind) else n))
                            for n in self.neurons]
        try:
            if self.v0s is not None:
                self.v0s = [V0Mode(v) for v in self.v0s]
            if self.schedules is not None:
                self.schedules = [Schedule(s) for s in self.schedules]
            if self.codings is not None:
                self.codings = [CodingKind(c) for c in self.codings]
        except ValueError as e:
            raise SnncError(f"invalid eval grid: {e}") from None
        if self.thresholds is not None:
            from ..calibration import parse_threshold_method

            self.thresholds = [str(t).strip().lower() for t in self.thresholds]
            for t in self.thresholds:
                parse_threshold_method(t)  # a CalibrationError (SnncError) names the bad spelling
        for name, values in (("neuron", self.neurons), ("v0", self.v0s), ("schedule", self.schedules),
                             ("coding", self.codings), ("thresholds", self.thresholds)):
            if values is not None and len(set(values)) != len(values):
                raise SnncError(f"invalid eval grid: {name} lists a value twice: {[getattr(v, 'value', v) for v in values]}")

    def resolve(self, kind: str) -> "EvalGrid":
        """The grid with every axis filled in for a model of ``kind`` (QUANTIZED or RELU); raises
        SnncError naming every option that does not apply to that kind."""
        bad = []
        neurons = [parse_neuron_spec(n) for n in (self.neurons or [])]
        if kind == QUANTIZED:
            mt = [neuron_label(k, n) for k, n in neurons if k is NeuronKind.MULTI_THRESHOLD]
            if mt:
                bad.append(f"--neuron {','.join(mt)} (multi-threshold neurons convert plain ReLU models; "
                           "use if or dual-threshold)")
            if self.codings is not None:
                bad.append("--coding (rate/differential coding applies to plain ReLU models)")
            if self.thresholds is not None:
                bad.append("--thresholds (calibrated thresholds apply to plain ReLU models; a quantized model "
                           "has its own)")
            if bad:
                raise SnncError("the model has quantized activations; these options do not apply to it: "
                                + "; ".join(bad))
            return EvalGrid(self.timesteps, self.neurons or [NeuronKind.IF.value], self.v0s or [V0Mode.AUTO],
                            self.schedules or [Schedule.LAYERWISE])
        other = [neuron_label(k, n) for k, n in neurons if k is not NeuronKind.MULTI_THRESHOLD]
        if other:
            bad.append(f"--neuron {','.join(other)} (a plain ReLU model is converted with multi-threshold:N neurons)")
        if self.v0s is not None:
            bad.append("--v0 (the initial potential is fixed by the coding: 0 in rate coding, the bias in "
                       "differential coding)")
        if self.schedules is not None and any(s is not Schedule.PIPELINED for s in self.schedules):
            bad.append("--schedule layerwise (multi-threshold neurons run only in the pipelined schedule)")
        if bad:
            raise SnncError("the model has plain ReLU activations (training-free conversion, paper 004); these "
                            "options do not apply to it: " + "; ".join(bad))
        return EvalGrid(self.timesteps, self.neurons or [neuron_label(NeuronKind.MULTI_THRESHOLD, 4)],
                        schedules=[Schedule.PIPELINED], codings=self.codings or [CodingKind.RATE],
                        thresholds=self.thresholds or ["iterate"])

    @property
    def rows(self) -> list[tuple]:
        """Quantized grid: (neuron, V0, schedule); plain ReLU grid: (neuron, coding, thresholds)."""
        if self.codings is not None or self.thresholds is not None:
            return list(itertools.product(self.neurons or [None], self.codings or [None], self.thresholds or [None]))
        return list(itertools.product(self.neurons or [None], self.v0s or [None], self.schedules or [None]))

    @property
    def size(self) -> int:
        return len(self.rows) * len(self.timesteps)

    def to_dict(self) -> dict:
        if self.codings is not None or self.thresholds is not None:
            return {"timesteps": self.timesteps, "neuron": list(self.neurons),
                    "coding": [c.value for c in self.codings], "thresholds": list(self.thresholds),
                    "schedule": [s.value for s in self.schedules]}
        return {"timesteps": self.timesteps, "neuron": list(self.neurons),
                "v0": [v.value for v in self.v0s], "schedule": [s.value for s in self.schedules]}


@dataclass
class EvalResult:
    """One grid point."""

    neuron: str
    v0: str
    v0_resolved: list[str]          # per population: zero | half | full
    v0_matched: bool                # every population's V0 matches its quantizer
    schedule: str
    timesteps: int
    accuracy: float | None
    agreement_with_ann_int: float | None
    exact: bool                     # every count equals the ANN's level (possible only at T = L)
    neurons_mismatched: int
    neurons_compared: int
    rate_error: float | None        # mean over populations of mean |M/L - N/T| (units of lambda)
    unevenness_error: float | None  # mean over populations of mean |lambda M/L - lambda N/T|
    layer_rate_error: dict[str, float]
    spikes_per_sample: float
    sops_per_sample: float
    compile_seconds: float
    run_seconds: float
    exponents: list[int] = field(default_factory=list)  # weight exponent per layer (the state bound picks it)
    parameters_sha256: str = ""     # of every integer weight, threshold, V0 and bias (not the neuron model)
    error: str | None = None        # the compiler refused this setting (the whole message); no numbers then
    backend: str = "reference"      # the exact backend that ran this setting (the reference's integers)


@dataclass
class TrainingFreeResult:
    """One grid point of a plain ReLU model (paper 004), measured against the float ANN.

    Operation counts are per sample over the T steps: ``spikes_per_sample`` counts every message a
    population sends (either sign; a multi-threshold neuron's graded message +-2^(n-i) is one
    event), ``ac_per_sample`` the synaptic operations those messages cause (one accumulate per
    message and reached synapse), ``mac_per_sample`` the synaptic operations of the graded input
    (its non-zero values times the synapses they reach, every step it is presented: T steps in
    rate coding, step 1 only in differential coding) -- a multi-bit value times a weight, i.e. a
    multiply-accumulate. Paper 004, Eq. 31::

        E_SNN / E_ANN = (MAC_SNN E_MAC + AC_SNN E_AC) / (MAC_ANN E_MAC),  E_MAC 4.6 pJ, E_AC 0.9 pJ

    ``energy_ratio`` takes MAC_SNN = ``mac_per_sample`` and AC_SNN = ``ac_per_sample``;
    ``energy_ratio_mac0`` is the paper's approximation MAC_SNN ~ 0 (spike-driven ACs only).
    """

    neuron: str                     # "multi-threshold:N"
    n: int                          # thresholds per sign
    coding: str                     # rate | differential
    thresholds: str                 # iterate | percentile:q | max
    schedule: str                   # pipelined (the only schedule of multi-threshold neurons)
    timesteps: int
    accuracy: float | None
    agreement_with_ann_float: float | None
    spikes_per_sample: float
    ac_per_sample: float
    mac_per_sample: float
    sops_per_sample: float          # ac + mac
    energy_ratio: float | None
    energy_ratio_mac0: float | None
    layer_spikes_per_sample: dict[str, float] = field(default_factory=dict)
    state_bits_needed: int = 0      # signed width of the widest state the run reached
    fits_target: bool = True        # state_bits_needed <= the target's state_bits
    compile_seconds: float = 0.0
    run_seconds: float = 0.0
    exponents: list[int] = field(default_factory=list)
    parameters_sha256: str = ""
    error: str | None = None        # the compiler refused this setting (the message); no numbers then
    frac_bits: int | None = None    # differential coding: the F the compiled network uses
    backend: str = "reference"      # the exact backend that ran this setting (the reference's integers)


@dataclass
class EvalReport:
    model: str
    sha256: str
    data: str
    samples: int
    levels: int | None
    quantizers: list[str]
    target: str
    ann_float_accuracy: float | None
    ann_int_accuracy: float | None     # the quantized ANN in integers (T = L compile, matched V0)
    grid: dict
    results: list
    kind: str = QUANTIZED              # QUANTIZED | RELU (``kind_of``)
    calibration: str | None = None     # plain ReLU: the calibration .npz
    threshold_scale: float | None = None
    threshold_scope: str | None = None  # plain ReLU: channel | layer
    frac_bits: int | str | None = None  # differential coding's fixed-point bits as configured (or "auto")
    ann_macs: int | None = None        # MAC_ANN per sample (the imported model's conv/linear MACs)
    energy: dict | None = None         # plain ReLU: E_MAC, E_AC (joules) and where they come from
    state_bits: int | None = None      # the target's state width
    notes: list[str] = field(default_factory=list)  # e.g. the integer ANN's compile refused (whole message)
    device: str = "cpu"                # where the backends ran (``--device``)

    def to_dict(self, timings: bool = True) -> dict:
        """The report as JSON-ready data; ``timings=False`` leaves out the wall times (compile_seconds,
        run_seconds), so that the same command prints the same bytes wherever and however it ran."""
        d = asdict(self)
        if self.kind == QUANTIZED:  # the quantized report's JSON stays as it was
            for k in ("kind", "calibration", "threshold_scale", "threshold_scope", "frac_bits", "ann_macs", "energy", "state_bits"):
                d.pop(k)
        if not timings:
            for r in d["results"]:
                r.pop("compile_seconds", None)
                r.pop("run_seconds", None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EvalReport":
        """The inverse of ``to_dict`` (e.g. of ``snnc eval --json`` output)."""
        d = dict(d)
        kind = d.get("kind", QUANTIZED)
        result_cls = TrainingFreeResult if kind == RELU else EvalResult
        d["results"] = [result_cls(**r) for r in d["results"]]
        return cls(**d)

    def lookup(self, neuron: str, v0: str, schedule: str, T: int) -> EvalResult:
        for r in self.results:
            if (r.neuron, r.v0, r.schedule, r.timesteps) == (neuron, v0, schedule, T):
                return r
        raise KeyError((neuron, v0, schedule, T))

    def find(self, **kw):
        """The one result whose fields equal ``kw`` (e.g. neuron="multi-threshold:4", coding="rate",
        thresholds="iterate", timesteps=4)."""
        for r in self.results:
            if all(getattr(r, k) == v for k, v in kw.items()):
                return r
        raise KeyError(kw)

    def row_key(self, r) -> tuple:
        if self.kind == RELU:
            return (r.neuron, r.coding, r.thresholds)
        return (r.neuron, r.v0, r.schedule)

    def rows(self) -> list[tuple]:
        g = self.grid
        if self.kind == RELU:
            return list(itertools.product(g["neuron"], g["coding"], g["thresholds"]))
        return list(itertools.product(g["neuron"], g["v0"], g["schedule"]))

    def cell(self, row: tuple, T: int):
        if self.kind == RELU:
            return self.find(neuron=row[0], coding=row[1], thresholds=row[2], timesteps=T)
        return self.lookup(*row, T)


def kind_of(imported: ImportedModel) -> str:
    """The grid a model gets: RELU when it converts training-free (plain ReLUs only), else QUANTIZED
    (quantized clip activations; neither: the quantized path's lowering explains what is missing)."""
    return RELU if model_conversion(imported.graph) is Conversion.TRAINING_FREE else QUANTIZED


def parameters_fingerprint(net) -> str:
    """SHA-256 of the network's integer parameters: two settings with the same fingerprint differ only
    in their neuron model (and T)."""
    h = hashlib.sha256()
    for n in net.ordered_nodes():
        for k in ("threshold", "v0", "bias"):
            if hasattr(n, k):
                h.update(np.ascontiguousarray(getattr(n, k), np.int64).tobytes())
    for p in net.projections:
        h.update(np.ascontiguousarray(p.weight, np.int64).tobytes())
        h.update(int(p.exponent).to_bytes(2, "little"))
    return h.hexdigest()


def check_options(kind: str, base: CompileConfig) -> None:
    """Raise SnncError if ``base`` sets an option that does not apply to a model of ``kind``
    (compared with CompileConfig's defaults; the grid's axes are checked by ``EvalGrid.resolve``)."""
    default = CompileConfig()
    if kind == QUANTIZED:
        bad = [opt for opt, given in (
            ("--calib", base.calibration_data is not None),
            ("--threshold-scale", base.threshold_scale != default.threshold_scale),
            ("--frac-bits", base.frac_bits != default.frac_bits),
            ("--threshold-scope", base.threshold_scope != default.threshold_scope),
        ) if given]
        if bad:
            raise SnncError("the model has quantized activations; these options apply to plain ReLU models "
                            f"(training-free conversion) only: {', '.join(bad)}")
        return
    if base.neg_divisor != default.neg_divisor:
        raise SnncError("the model has plain ReLU activations (training-free conversion, paper 004); "
                        "--neg-divisor applies to dual-threshold neurons of quantized models only")
    if base.calibration_data is None:
        raise DataFileError("evaluating a plain ReLU model needs calibration data for its thresholds: give "
                            "--calib FILE.npz (an .npz with x: a few hundred training inputs)")


def evaluate(
    model_path: str | os.PathLike, data_path: str | os.PathLike, grid: EvalGrid,
    base: CompileConfig | None = None, samples: int | None = None, progress=None,
    backend: BackendChoice | None = None,
) -> EvalReport:
    """Run the grid. ``progress(n)`` is called after each grid point (n = 1).

    Dispatches on the model's activations (``kind_of``): quantized models are measured against
    the quantized ANN, plain ReLU models (with ``base.calibration_data``) against the float ANN.
    ``backend``: what runs each compiled network (default: the reference simulator).
    """
    base = base or CompileConfig()
    backend = backend or BackendChoice("reference")
    imported = import_model(model_path)
    kind = kind_of(imported)
    check_options(kind, base)
    grid = grid.resolve(kind)
    if kind == RELU:
        rep = _evaluate_relu(imported, model_path, data_path, grid, base, samples, progress, backend)
    else:
        rep = _evaluate_quantized(imported, model_path, data_path, grid, base, samples, progress, backend)
    rep.device = backend.device
    return rep


def _refused_point(neuron, v0: V0Mode, schedule: Schedule, T: int, error: str) -> EvalResult:
    return EvalResult(neuron=neuron, v0=v0.value, v0_resolved=[], v0_matched=False, schedule=schedule.value,
                      timesteps=T, accuracy=None, agreement_with_ann_int=None, exact=False, neurons_mismatched=0,
                      neurons_compared=0, rate_error=None, unevenness_error=None, layer_rate_error={},
                      spikes_per_sample=0.0, sops_per_sample=0.0, compile_seconds=0.0, run_seconds=0.0, error=error)


def _evaluate_quantized(imported, model_path, data_path, grid: EvalGrid, base: CompileConfig, samples, progress,
                        choice: BackendChoice):
    # the T = L, matched-V0 network defines the integer ANN's accuracy; when the compiler refuses it (e.g.
    # weights that would lose their bits at T = L), that is a note and the first setting that compiles
    # defines the data shape check
    ref_cfg = CompileConfig(**{**base.to_dict(), "timesteps": None, "v0": V0Mode.AUTO, "neuron": NeuronKind.IF})
    notes: list[str] = []
    try:
        ref_net = compile_imported(imported, ref_cfg, runner=reference_runner)
    except SnncError as e:
        ref_net = None
        notes.append(f"the integer ANN (T = L, matched V0) is refused: {e}")
    x = y = pred_float = ref = None

    def load(net):
        nonlocal x, y, pred_float, ref
        x, y = load_data(data_path, net, samples)
        if y is None:
            raise DataFileError(f"'{data_path}' has no labels 'y': eval measures accuracy and needs them")
        msg = input_range_report(net, x).message()
        if msg:
            log.warning("%s", msg)
        log.info("the model (reference executor) on %d samples", len(x))
        pred_float = float_ann_outputs(imported.raw, x).reshape(len(x), -1).argmax(axis=1)
        if ref_net is not None:
            ref = verify_against_ann(ref_net, x, y, Schedule.LAYERWISE, None, float_predictions=pred_float,
                                     backend=choice.counting_backend(ref_net, Schedule.LAYERWISE))

    if ref_net is not None:
        load(ref_net)
    results = []
    for neuron, v0, T in itertools.product(grid.neurons, grid.v0s, grid.timesteps):
        cfg = CompileConfig(**{**base.to_dict(), "timesteps": T, "neuron": neuron, "v0": v0})
        t0 = time.perf_counter()
        try:
            net = compile_imported(imported, cfg, runner=reference_runner)
        except ConversionError as e:  # this setting is refused (the whole reason is kept): the others go on
            results += [_refused_point(neuron, v0, schedule, T, str(e)) for schedule in grid.schedules]
            if progress is not None:
                progress(len(grid.schedules))
            continue
        if x is None:
            load(net)
        t_compile = time.perf_counter() - t0
        records = layer_records(net)
        layers = [r for r in records if r.v0_mode]
        for schedule in grid.schedules:
            t1 = time.perf_counter()
            rep = verify_against_ann(net, x, y, schedule, None, float_predictions=pred_float,
                                     backend=choice.counting_backend(net, schedule))
            results.append(EvalResult(
                neuron=neuron, v0=v0.value, v0_resolved=[r.v0_mode for r in layers],
                v0_matched=all(r.v0_matched for r in layers), schedule=schedule.value, timesteps=T,
                accuracy=rep.accuracy["snn"], agreement_with_ann_int=rep.prediction_agreement["snn_vs_ann_int"],
                exact=rep.exact, neurons_mismatched=rep.neurons_mismatched, neurons_compared=rep.neurons_compared,
                rate_error=float(np.mean([lr.rate_error for lr in rep.layers])),
                unevenness_error=float(np.mean([lr.unevenness_error for lr in rep.layers])),
                layer_rate_error={lr.name: lr.rate_error for lr in rep.layers},
                spikes_per_sample=rep.spikes_per_sample, sops_per_sample=rep.sops_per_sample,
                compile_seconds=t_compile, run_seconds=time.perf_counter() - t1,
                exponents=[int(r.exponent) for r in records],
                parameters_sha256=parameters_fingerprint(net), backend=rep.backend,
            ))
            if progress is not None:
                progress(1)
    if x is None:
        reasons = list(dict.fromkeys(r.error for r in results if r.error))
        raise ConversionError("eval: every setting is refused: " + " | ".join(notes + reasons))
    quantizers = sorted({r.quantizer for r in layer_records(ref_net or net) if r.quantizer})
    return EvalReport(
        model=str(model_path), sha256=imported.sha256, data=str(data_path), samples=len(x),
        levels=ref.levels if ref is not None else (ref_net or net).metadata.get("levels"), quantizers=quantizers, target=base.target,
        ann_float_accuracy=float(np.mean(pred_float == y)), ann_int_accuracy=None if ref is None else
        ref.accuracy["ann_int"], grid=grid.to_dict(), results=results, notes=notes,
    )


ENERGY_MODEL = "horowitz2014"  # paper 004's E_MAC = 4.6 pJ, E_AC = 0.9 pJ (compiler/energy/horowitz2014.toml)


def _state_bits(max_abs: int) -> int:
    """Signed width that holds +-max_abs."""
    return int(max_abs).bit_length() + 1


def run_counting(net, x: np.ndarray, batch_size: int = 256, backend: CountingBackend | None = None) -> dict:
    """Pipelined run of ``net`` on ``x`` in batches on ``backend`` (default the reference): predictions,
    per-node events and outgoing synaptic operations (summed over samples and steps), the widest state
    reached. Keeps the readouts only (no per-neuron counts or states are built)."""
    backend = reference_backend(backend)
    pred, events, sops, max_abs = [], {}, {}, 0
    for i in range(0, len(x), batch_size):
        res = backend.simulate(net, x[i:i + batch_size], Schedule.PIPELINED, count_ops=True, keep=Keep.READOUTS)
        pred.append(res.predictions())
        for k, o in res.ops.items():
            events[k] = events.get(k, 0) + int(o.events.sum())
            sops[k] = sops.get(k, 0) + int(o.sops_out.sum())
        max_abs = max([max_abs, *res.max_abs_state.values()])
    return {"predictions": np.concatenate(pred), "events": events, "sops_out": sops, "max_abs_state": max_abs,
            "backend": backend.name}


def _evaluate_relu(imported, model_path, data_path, grid: EvalGrid, base: CompileConfig, samples, progress,
                   choice: BackendChoice):
    from snnc.ir import Input

    from ..energy import load_energy_model
    from ..targets import load_target

    x, y = load_arrays(data_path, tuple(imported.graph.input_shape), imported.graph.input_name, samples)
    if y is None:
        raise DataFileError(f"'{data_path}' has no labels 'y': eval measures accuracy and needs them")
    log.info("float ANN (onnxruntime) on %d samples", len(x))
    pred_float = float_ann_outputs(imported.raw, x).reshape(len(x), -1).argmax(axis=1)
    em = load_energy_model(ENERGY_MODEL)
    # the model's own prices, as `snnc stats` reads them: graded input events at energy_per_input_op_j
    e_mac, e_in, e_ac = em.ann_energy_per_mac_j, em.energy_per_input_op_j, em.energy_per_sop_j
    ann_macs = int(sum(imported.macs.values()))
    state_bits = load_target(base.target, base.profile).numeric.state_bits
    n_s = len(x)
    results = []
    for (neuron, coding, method), T in itertools.product(grid.rows, grid.timesteps):
        _, n = parse_neuron_spec(neuron)
        cfg = CompileConfig(**{**base.to_dict(), "timesteps": T, "neuron": NeuronKind.MULTI_THRESHOLD.value,
                               "mt_n": n, "coding": coding.value, "thresholds": method, "schedule": "pipelined"})
        point = dict(neuron=neuron, n=n, coding=coding.value, thresholds=method, schedule=Schedule.PIPELINED.value,
                     timesteps=T)
        t0 = time.perf_counter()
        try:
            net = compile_imported(imported, cfg, runner=reference_runner)
        except ConversionError as e:  # e.g. a state bound the target cannot hold: record it, go on
            log.info("%s: %s", neuron_label(NeuronKind.MULTI_THRESHOLD, n), e)  # printed whole under the tables
            results.append(TrainingFreeResult(**point, accuracy=None, agreement_with_ann_float=None,
                                              spikes_per_sample=0.0, ac_per_sample=0.0, mac_per_sample=0.0,
                                              sops_per_sample=0.0, energy_ratio=None, energy_ratio_mac0=None,
                                              error=str(e)))
            if progress is not None:
                progress(1)
            continue
        t_compile = time.perf_counter() - t0
        t1 = time.perf_counter()
        run = run_counting(net, x, backend=choice.counting_backend(net, Schedule.PIPELINED))
        inputs = {node.name for node in net.nodes if isinstance(node, Input)}
        mac = sum(v for k, v in run["sops_out"].items() if k in inputs) / n_s
        ac = sum(v for k, v in run["sops_out"].items() if k not in inputs) / n_s
        pops = [p.name for p in net.populations]
        bits = _state_bits(run["max_abs_state"])
        ann_e = ann_macs * e_mac
        results.append(TrainingFreeResult(
            **point, accuracy=float(np.mean(run["predictions"] == y)),
            agreement_with_ann_float=float(np.mean(run["predictions"] == pred_float)),
            spikes_per_sample=sum(run["events"][p] for p in pops) / n_s, ac_per_sample=ac, mac_per_sample=mac,
            sops_per_sample=ac + mac,
            energy_ratio=(mac * e_in + ac * e_ac) / ann_e if ann_e > 0 else None,
            energy_ratio_mac0=ac * e_ac / ann_e if ann_e > 0 else None,
            layer_spikes_per_sample={p: run["events"][p] / n_s for p in pops},
            state_bits_needed=bits, fits_target=bits <= state_bits,
            compile_seconds=t_compile, run_seconds=time.perf_counter() - t1,
            exponents=[int(r.exponent) for r in layer_records(net)],
            parameters_sha256=parameters_fingerprint(net),
            frac_bits=getattr(net.coding, "frac_bits", None), backend=run["backend"],
        ))
        if progress is not None:
            progress(1)
    return EvalReport(
        model=str(model_path), sha256=imported.sha256, data=str(data_path), samples=n_s, levels=None,
        quantizers=[], target=base.target, ann_float_accuracy=float(np.mean(pred_float == y)), ann_int_accuracy=None,
        grid=grid.to_dict(), results=results, kind=RELU, calibration=base.calibration_data,
        threshold_scale=base.threshold_scale, threshold_scope=base.threshold_scope.value, frac_bits=base.frac_bits,
        ann_macs=ann_macs,
        energy={"model": em.name, "source": em.source, "e_mac_j": e_mac, "e_input_j": e_in, "e_ac_j": e_ac,
                "mac_snn": "graded input values x synapses reached (first layer), every step presented",
                "ac_snn": "population messages (either sign, graded MT messages one each) x synapses reached"},
        state_bits=state_bits,
    )


# ---------------------------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------------------------

METRICS = {
    "accuracy": ("accuracy", "{:.4f}"),
    "rate_error": ("mean per-layer unevenness error |M/L - N/T| (units of lambda)", "{:.4f}"),
    "spikes_per_sample": ("spikes per sample (both signs)", "{:.0f}"),
}

RELU_METRICS = {
    "accuracy": ("accuracy", "{:.4f}"),
    "agreement_with_ann_float": ("agreement with the float ANN's predictions", "{:.4f}"),
    "spikes_per_sample": ("spikes per sample (both signs; a graded multi-threshold message is one)", "{:.0f}"),
    "sops_per_sample": ("synaptic operations per sample (AC from spikes + MAC from the graded input)", "{:.0f}"),
    "energy_ratio": ("energy ratio E_SNN/E_ANN (paper 004 Eq. 31, E_MAC 4.6 pJ, E_AC 0.9 pJ; "
                     "MAC_SNN = the graded input's synaptic operations)", "{:.3f}"),
}


def backends_line(rep: EvalReport) -> str:
    """Which exact backend(s) ran the grid, and where."""
    used = sorted({r.backend for r in rep.results if getattr(r, "error", None) is None})
    return f"simulated on {', '.join(used) or 'nothing'} ({rep.device})"


def format_tables(rep: EvalReport) -> str:
    """One table per metric: rows neuron x V0 x schedule (quantized models) or neuron x coding x
    threshold method (plain ReLU models), columns T (plain text)."""
    return _format_tables(rep) + "\n" + backends_line(rep)


def _format_tables(rep: EvalReport) -> str:
    if rep.kind == RELU:
        return _format_relu_tables(rep)
    Ts = rep.grid["timesteps"]
    rows = list(itertools.product(rep.grid["neuron"], rep.grid["v0"], rep.grid["schedule"]))
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    out = [f"{rep.model}: {rep.samples} samples, quantizer {'/'.join(rep.quantizers)}, L = {rep.levels}; "
           f"float ANN accuracy {fmt(rep.ann_float_accuracy)}, integer ANN {fmt(rep.ann_int_accuracy)}"]
    head = f"{'neuron':<15} {'v0':<5} {'schedule':<10}" + "".join(f"{'T=' + str(t):>9}" for t in Ts)
    for key, (title, spec) in METRICS.items():
        out += ["", title + ("  (* = exact: every count equals the ANN level)" if key == "accuracy" else ""), head]
        for n, v, s in rows:
            cells = []
            for t in Ts:
                r = rep.lookup(n, v, s, t)
                val = None if r.error else getattr(r, key)
                cell = "refused" if r.error else ("n/a" if val is None else spec.format(val))
                cells.append(f"{cell + ('*' if key == 'accuracy' and r.exact else ''):>9}")
            out.append(f"{n:<15} {v:<5} {s:<10}" + "".join(cells))
    notes = list(rep.notes) + refusal_notes(rep.results, lambda r: f"{r.neuron} v0 {r.v0} T={r.timesteps}")
    return "\n".join(out + ([""] + notes if notes else []))


def refusal_notes(results, label) -> list[str]:
    """Each refusal reason whole, once, with the settings it refused."""
    by_reason: dict[str, list[str]] = {}
    for r in results:
        if r.error:
            by_reason.setdefault(r.error, [])
            if label(r) not in by_reason[r.error]:
                by_reason[r.error].append(label(r))
    return [f"refused ({', '.join(who)}): {why}" for why, who in by_reason.items()]


def _format_relu_tables(rep: EvalReport) -> str:
    Ts = rep.grid["timesteps"]
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    out = [f"{rep.model}: {rep.samples} samples, plain ReLU (training-free, paper 004), calibration "
           f"{rep.calibration}, thresholds per {rep.threshold_scope}, scale c = {rep.threshold_scale:g}, pipelined; float ANN accuracy "
           f"{fmt(rep.ann_float_accuracy)}, ANN MACs per sample {rep.ann_macs:,}"]
    wn = max(len("neuron"), *(len(n) for n in rep.grid["neuron"]))
    wt = max(len("thresholds"), *(len(t) for t in rep.grid["thresholds"]))
    head = f"{'neuron':<{wn}} {'coding':<12} {'thresholds':<{wt}}" + "".join(f"{'T=' + str(t):>10}" for t in Ts)
    over = any(not r.fits_target for r in rep.results if r.error is None)
    for key, (title, spec) in RELU_METRICS.items():
        out += ["", title, head]
        for row in rep.rows():
            cells = []
            for t in Ts:
                r = rep.cell(row, t)
                val = None if r.error else getattr(r, key)
                cell = "refused" if r.error else ("n/a" if val is None else spec.format(val))
                cells.append(f"{cell + ('!' if r.error is None and not r.fits_target else ''):>10}")
            out.append(f"{row[0]:<{wn}} {row[1]:<12} {row[2]:<{wt}}" + "".join(cells))
    notes = []
    if over:
        bits = max(r.state_bits_needed for r in rep.results if r.error is None)
        notes.append(f"! = the run's states needed more than the target's {rep.state_bits} bits (up to {bits}); "
                     "the reference simulator ran them in int64")
    notes += refusal_notes(rep.results, lambda r: f"{r.neuron} {r.coding} {r.thresholds} T={r.timesteps}")
    return "\n".join(out + ([""] + notes if notes else []))


def plot_accuracy(rep: EvalReport, path: str | os.PathLike, inputs=()) -> None:
    """PNG of accuracy vs T, one line per row of the grid, the ANN accuracies as horizontal lines
    (plain ReLU models: a second panel with the energy ratio). Written through
    ``compiler.outputs.save_figure`` (atomic, never over ``inputs``; parent folders on success)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ts = rep.grid["timesteps"]
    colors = plt.get_cmap("tab10").colors
    if rep.kind == RELU:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), dpi=120)
        styles = {"rate": "--", "differential": "-"}  # one colour per (neuron, thresholds); style per coding
        for i, (n, th) in enumerate(itertools.product(rep.grid["neuron"], rep.grid["thresholds"])):
            for c in rep.grid["coding"]:
                rs = [rep.find(neuron=n, coding=c, thresholds=th, timesteps=t) for t in Ts]
                kw = dict(color=colors[i % len(colors)], ls=styles.get(c, "-"), marker="o" if c == "rate" else "s",
                          ms=4, label=f"{n}, {c}, {th}")
                ax.plot(Ts, [r.accuracy for r in rs], **kw)
                ax2.plot(Ts, [r.energy_ratio for r in rs], **kw)
        ax2.set_xscale("log", base=2)
        ax2.set_xticks(Ts, [str(t) for t in Ts])
        ax2.set_xlabel("timesteps T")
        ax2.set_ylabel("energy ratio E_SNN / E_ANN (Eq. 31)")
        ax2.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax2.grid(alpha=0.3)
        title = f"{os.path.basename(rep.model)} (plain ReLU, training-free, {rep.samples} samples)"
    else:
        fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
        styles = {"pipelined": "-", "layerwise": "--"}  # one colour per (neuron, V0); line style per schedule
        markers = {"if": "o", "dual-threshold": "s"}
        for i, (n, v) in enumerate(itertools.product(rep.grid["neuron"], rep.grid["v0"])):
            for s in rep.grid["schedule"]:
                acc = [rep.lookup(n, v, s, t).accuracy for t in Ts]
                ax.plot(Ts, acc, color=colors[i % len(colors)], ls=styles.get(s, "-"), marker=markers.get(n, "o"),
                        ms=4, label=f"{n}, V0 {v}, {s}")
        title = f"{os.path.basename(rep.model)} ({'/'.join(rep.quantizers)}, L = {rep.levels}, {rep.samples} samples)"
    if rep.ann_float_accuracy is not None:
        ax.axhline(rep.ann_float_accuracy, color="k", lw=1.2, label="float ANN")
    if rep.ann_int_accuracy is not None:
        ax.axhline(rep.ann_int_accuracy, color="k", lw=1, ls="--", label="integer ANN")
    if rep.levels is not None:
        ax.axvline(rep.levels, color="grey", lw=0.8, ls=":", label=f"T = L = {rep.levels}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    try:
        save_figure(fig, path, inputs=inputs)
    finally:
        plt.close(fig)
