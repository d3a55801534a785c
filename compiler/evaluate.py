"""``snnc eval``: sweep conversion settings over a data set (papers 000 and 003's ablations).

The grid is neuron model x V0 mode x schedule x T. The ONNX model is imported once and the float
ANN (onnxruntime) runs once; one network is compiled per (neuron, V0, T) and run in every schedule
on the whole data set. Each setting is measured by ``verify_against_ann`` against the quantized ANN
(the integer ANN at tau = L, with the quantizer's own V0), so accuracy, exactness, per-layer
unevenness (rate) error and spike counts all come from one code path.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.backends.reference import Schedule

from .api import compile_imported, import_model
from .config import CompileConfig, NeuronKind, V0Mode
from .data import load_data
from .errors import DataFileError, SnncError
from .verify import float_ann_outputs, verify_against_ann

log = logging.getLogger(__name__)


@dataclass
class EvalGrid:
    """The settings to sweep; every combination is run."""

    timesteps: list[int]
    neurons: list[NeuronKind] = field(default_factory=lambda: [NeuronKind.IF])
    v0s: list[V0Mode] = field(default_factory=lambda: [V0Mode.AUTO])
    schedules: list[Schedule] = field(default_factory=lambda: [Schedule.LAYERWISE])

    def __post_init__(self) -> None:
        problems = []
        if not self.timesteps:
            problems.append("no timesteps given")
        if any(int(t) < 1 for t in self.timesteps):
            problems.append(f"timesteps must be >= 1, got {self.timesteps}")
        for name, values in (("neuron", self.neurons), ("v0", self.v0s), ("schedule", self.schedules)):
            if not values:
                problems.append(f"no {name} given")
        if problems:
            raise SnncError("invalid eval grid: " + "; ".join(problems))
        self.timesteps = [int(t) for t in self.timesteps]
        self.neurons = [NeuronKind(n) for n in self.neurons]
        self.v0s = [V0Mode(v) for v in self.v0s]
        self.schedules = [Schedule(s) for s in self.schedules]

    @property
    def rows(self) -> list[tuple[NeuronKind, V0Mode, Schedule]]:
        return list(itertools.product(self.neurons, self.v0s, self.schedules))

    @property
    def size(self) -> int:
        return len(self.rows) * len(self.timesteps)


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
    agreement_with_ann_int: float
    exact: bool                     # every count equals the ANN's level (possible only at T = L)
    neurons_mismatched: int
    neurons_compared: int
    rate_error: float               # mean over populations of mean |M/L - N/T| (units of lambda)
    unevenness_error: float         # mean over populations of mean |lambda M/L - lambda N/T|
    layer_rate_error: dict[str, float]
    spikes_per_sample: float
    sops_per_sample: float
    compile_seconds: float
    run_seconds: float
    exponents: list[int] = field(default_factory=list)  # weight exponent per layer (the state bound picks it)
    parameters_sha256: str = ""     # of every integer weight, threshold, V0 and bias (not the neuron model)


@dataclass
class EvalReport:
    model: str
    sha256: str
    data: str
    samples: int
    levels: int
    quantizers: list[str]
    target: str
    ann_float_accuracy: float | None
    ann_int_accuracy: float | None     # the quantized ANN in integers (T = L compile, matched V0)
    grid: dict
    results: list[EvalResult]

    def to_dict(self) -> dict:
        return asdict(self)

    def lookup(self, neuron: str, v0: str, schedule: str, T: int) -> EvalResult:
        for r in self.results:
            if (r.neuron, r.v0, r.schedule, r.timesteps) == (neuron, v0, schedule, T):
                return r
        raise KeyError((neuron, v0, schedule, T))


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


def evaluate(
    model_path: str | os.PathLike, data_path: str | os.PathLike, grid: EvalGrid,
    base: CompileConfig | None = None, samples: int | None = None, progress=None,
) -> EvalReport:
    """Run the grid. ``progress(n)`` is called after each grid point (n = 1)."""
    base = base or CompileConfig()
    imported = import_model(model_path)
    # the T = L, matched-V0 network defines the data shape check and the integer ANN's accuracy
    ref_cfg = CompileConfig(**{**base.to_dict(), "timesteps": None, "v0": V0Mode.AUTO, "neuron": NeuronKind.IF})
    ref_net = compile_imported(imported, ref_cfg)
    x, y = load_data(data_path, ref_net, samples)
    if y is None:
        raise DataFileError(f"'{data_path}' has no labels 'y': eval measures accuracy and needs them")
    log.info("float ANN (onnxruntime) on %d samples", len(x))
    pred_float = float_ann_outputs(imported.raw, x).reshape(len(x), -1).argmax(axis=1)
    ref = verify_against_ann(ref_net, x, y, Schedule.LAYERWISE, None, float_predictions=pred_float)
    L = ref.levels
    results = []
    for neuron, v0, T in itertools.product(grid.neurons, grid.v0s, grid.timesteps):
        cfg = CompileConfig(**{**base.to_dict(), "timesteps": T, "neuron": neuron, "v0": v0})
        t0 = time.perf_counter()
        net = compile_imported(imported, cfg)
        t_compile = time.perf_counter() - t0
        layers = [d for d in net.metadata["layers"] if d.get("v0_mode")]
        for schedule in grid.schedules:
            t1 = time.perf_counter()
            rep = verify_against_ann(net, x, y, schedule, None, float_predictions=pred_float)
            results.append(EvalResult(
                neuron=neuron.value, v0=v0.value, v0_resolved=[d["v0_mode"] for d in layers],
                v0_matched=all(d["v0_matched"] for d in layers), schedule=schedule.value, timesteps=T,
                accuracy=rep.accuracy["snn"], agreement_with_ann_int=rep.prediction_agreement["snn_vs_ann_int"],
                exact=rep.exact, neurons_mismatched=rep.neurons_mismatched, neurons_compared=rep.neurons_compared,
                rate_error=float(np.mean([lr.rate_error for lr in rep.layers])),
                unevenness_error=float(np.mean([lr.unevenness_error for lr in rep.layers])),
                layer_rate_error={lr.name: lr.rate_error for lr in rep.layers},
                spikes_per_sample=rep.spikes_per_sample, sops_per_sample=rep.sops_per_sample,
                compile_seconds=t_compile, run_seconds=time.perf_counter() - t1,
                exponents=[int(d["exponent"]) for d in net.metadata["layers"]],
                parameters_sha256=parameters_fingerprint(net),
            ))
            if progress is not None:
                progress(1)
    quantizers = sorted({d["quantizer"] for d in ref_net.metadata["layers"] if d.get("quantizer")})
    return EvalReport(
        model=str(model_path), sha256=imported.sha256, data=str(data_path), samples=len(x), levels=L,
        quantizers=quantizers, target=base.target, ann_float_accuracy=ref.accuracy["ann_float"],
        ann_int_accuracy=ref.accuracy["ann_int"],
        grid={"timesteps": grid.timesteps, "neuron": [n.value for n in grid.neurons],
              "v0": [v.value for v in grid.v0s], "schedule": [s.value for s in grid.schedules]},
        results=results,
    )


# ---------------------------------------------------------------------------------------------
# Presentation
# ---------------------------------------------------------------------------------------------

METRICS = {
    "accuracy": ("accuracy", "{:.4f}"),
    "rate_error": ("mean per-layer unevenness error |M/L - N/T| (units of lambda)", "{:.4f}"),
    "spikes_per_sample": ("spikes per sample (both signs)", "{:.0f}"),
}


def format_tables(rep: EvalReport) -> str:
    """One table per metric: rows neuron x V0 x schedule, columns T (plain text)."""
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
                val = getattr(r, key)
                cell = "n/a" if val is None else spec.format(val)
                cells.append(f"{cell + ('*' if key == 'accuracy' and r.exact else ''):>9}")
            out.append(f"{n:<15} {v:<5} {s:<10}" + "".join(cells))
    return "\n".join(out)


def plot_accuracy(rep: EvalReport, path: str | os.PathLike) -> None:
    """PNG of accuracy vs T, one line per row of the grid, the ANN accuracies as horizontal lines.
    Written atomically (temporary file, then rename)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ts = rep.grid["timesteps"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    colors = plt.get_cmap("tab10").colors  # one colour per (neuron, V0); line style per schedule
    styles = {"pipelined": "-", "layerwise": "--"}
    markers = {"if": "o", "dual-threshold": "s"}
    for i, (n, v) in enumerate(itertools.product(rep.grid["neuron"], rep.grid["v0"])):
        for s in rep.grid["schedule"]:
            acc = [rep.lookup(n, v, s, t).accuracy for t in Ts]
            ax.plot(Ts, acc, color=colors[i % len(colors)], ls=styles.get(s, "-"), marker=markers.get(n, "o"),
                    ms=4, label=f"{n}, V0 {v}, {s}")
    if rep.ann_float_accuracy is not None:
        ax.axhline(rep.ann_float_accuracy, color="k", lw=1.2, label="float ANN")
    if rep.ann_int_accuracy is not None:
        ax.axhline(rep.ann_int_accuracy, color="k", lw=1, ls="--", label="integer ANN")
    ax.axvline(rep.levels, color="grey", lw=0.8, ls=":", label=f"T = L = {rep.levels}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(t) for t in Ts])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{os.path.basename(rep.model)} ({'/'.join(rep.quantizers)}, L = {rep.levels}, {rep.samples} samples)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
